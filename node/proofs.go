package node

import (
	"encoding/base64"
	"net/http"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
)

// Proof is an equivocation proof as the API and CLI show it: the author
// that signed two conflicting changes, the IDs of the two changes, and the
// encoded proof (bft.DecodeProof), which anyone can check without trusting
// this node.
type Proof struct {
	Doc     string    `json:"doc"`
	Author  string    `json:"author"`  // hex public key
	Changes [2]string `json:"changes"` // hex change IDs
	Proof   string    `json:"proof"`   // base64 of bft.EquivocationProof.Encode
}

// proofEngine is implemented by engines that keep equivocation proofs.
type proofEngine interface {
	Proofs() []*bft.EquivocationProof
	Equivocators() []crdt.Author
}

func (e *replicaEngine) Proofs() []*bft.EquivocationProof { return e.r.Proofs() }
func (e *replicaEngine) Equivocators() []crdt.Author      { return e.r.Equivocators() }

// Proofs returns every equivocation proof the document holds: found by its
// own gate, received as evidence from peers, or found again in the log on
// restart. Unlike Node.Alerts, which keeps only the most recent alerts,
// proofs are never dropped.
func (d *Doc) Proofs() []Proof {
	d.mu.Lock()
	pe, ok := d.e.(proofEngine)
	var ps []*bft.EquivocationProof
	if ok {
		ps = pe.Proofs()
	}
	d.mu.Unlock()
	out := make([]Proof, 0, len(ps))
	for _, p := range ps {
		out = append(out, Proof{
			Doc:     d.id,
			Author:  p.Author().String(),
			Changes: [2]string{p.A.ID.String(), p.B.ID.String()},
			Proof:   base64.StdEncoding.EncodeToString(p.Encode()),
		})
	}
	return out
}

// Equivocators returns the authors the document holds a proof against,
// sorted.
func (d *Doc) Equivocators() []crdt.Author {
	d.mu.Lock()
	defer d.mu.Unlock()
	if pe, ok := d.e.(proofEngine); ok {
		return pe.Equivocators()
	}
	return nil
}

func (n *Node) apiProofs(w http.ResponseWriter, r *http.Request) error {
	d, err := n.reqDoc(r)
	if err != nil {
		return err
	}
	return writeJSON(w, d.Proofs())
}
