package bft

import (
	"fmt"

	"github.com/convergenode/convergenode/crdt"
)

// RestoreGate returns the gate for doc, whose changes were applied (or
// loaded from a snapshot, [crdt.Doc.LoadSnapshot]) without a gate, from a
// durable log the caller trusts: envs are those changes in a causal order
// (parents first), each with its signature. Unlike [NewGate], which
// indexes a document's changes as unsigned, RestoreGate indexes them as
// [Gate.Receive] would have accepted them, in envs' order: the equivocation
// proofs among them are made again (and returned), and a later change that
// conflicts with one of them yields a proof, exactly as on a gate that
// received the whole log. Changes of doc missing from envs are indexed as
// unsigned, as NewGate does. It does not verify the envelopes; with
// verify, it checks each one's ID and signature first (through
// cfg.SigCache) and fails on the first bad one.
func RestoreGate(cfg GateConfig, doc *crdt.Doc, envs []*Envelope, verify bool) (*Gate, []*EquivocationProof, error) {
	g := newGate(cfg, doc)
	seen := make(map[crdt.ID]bool, len(envs))
	var proofs []*EquivocationProof
	for _, env := range envs {
		c, ok := g.graph.Get(env.ID)
		if !ok || env.Change == nil || seen[env.ID] {
			return nil, nil, fmt.Errorf("bft: restore gate: change %s is not in the document or repeated", env.ID.Short())
		}
		if verify {
			if rej := env.verifyIDSig(g.cfg.SigCache); rej != nil {
				return nil, nil, fmt.Errorf("bft: restore gate: %w", rej)
			}
		}
		seen[env.ID] = true
		if p := g.index(env.ID, c, env, nil); p != nil {
			proofs = append(proofs, p)
		}
	}
	if len(seen) < g.graph.Len() {
		for _, id := range g.graph.Topo() {
			if !seen[id] {
				c, _ := g.graph.Get(id)
				g.index(id, c, nil, nil)
			}
		}
	}
	return g, proofs, nil
}
