package sim

import (
	"crypto/ed25519"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/ephemeral"
	"github.com/convergenode/convergenode/replica"
	"lukechampine.com/blake3"
)

// ReplicaNode adapts a replica.Replica to the simulator's Node interface.
type ReplicaNode struct {
	R      *replica.Replica
	author crdt.Author
	out    *Ready // Ready's result, reused: the simulator drops it before the next call
}

var _ Node = (*ReplicaNode)(nil)

// NewReplicaNode is the default Factory: a replica with the default
// configuration, restored from cfg.Log when it is not nil.
func NewReplicaNode(cfg NodeConfig) (Node, error) {
	return newReplicaNode(cfg, nil)
}

// ReplicaFactory returns a Factory that lets tune adjust each replica's
// configuration (after Doc, Key and Rand are set).
func ReplicaFactory(tune func(*replica.Config)) Factory {
	return func(cfg NodeConfig) (Node, error) { return newReplicaNode(cfg, tune) }
}

func newReplicaNode(cfg NodeConfig, tune func(*replica.Config)) (*ReplicaNode, error) {
	rc := replica.DefaultConfig()
	rc.Doc = cfg.Doc
	rc.Key = cfg.Key
	rc.Rand = cfg.Rand
	rc.SigCache = cfg.SigCache
	rc.EnvCache = cfg.EnvCache
	rc.Ephemeral.Namespaces = cfg.Namespaces
	rc.NoEventRows = true // the simulator reads only the IDs
	rc.ExpectChanges = cfg.Expect.Changes
	rc.ExpectAuthors = cfg.Expect.Authors
	rc.ExpectRows = cfg.Expect.Rows
	if tune != nil {
		tune(&rc)
	}
	r, err := replica.New(rc)
	if err != nil {
		return nil, err
	}
	n := &ReplicaNode{R: r, author: bft.AuthorOf(cfg.Key.Public().(ed25519.PublicKey)), out: cfg.ready}
	if n.out == nil {
		n.out = new(Ready)
	}
	if cfg.Log != nil {
		if err := r.Restore(cfg.Log); err != nil {
			return nil, err
		}
	}
	r.Tick(cfg.Now)
	return n, nil
}

// Step implements Node.
func (n *ReplicaNode) Step(from string, msg []byte) error {
	return n.R.Step(replica.PeerID(from), msg)
}

// Tick implements Node.
func (n *ReplicaNode) Tick(now time.Time) { n.R.Tick(now) }

// QuietUntil implements Quieter.
func (n *ReplicaNode) QuietUntil() time.Time { return n.R.QuietUntil() }

// Propose implements Node.
func (n *ReplicaNode) Propose(ops ...crdt.Op) error { return n.R.Propose(ops...) }

// SetPresence implements Node.
func (n *ReplicaNode) SetPresence(ns, key string, v crdt.Value) error {
	return n.R.SetPresence(ns, key, v)
}

// PeerUp implements Node.
func (n *ReplicaNode) PeerUp(p string) { n.R.PeerUp(replica.PeerID(p)) }

// PeerDown implements Node.
func (n *ReplicaNode) PeerDown(p string) { n.R.PeerDown(replica.PeerID(p)) }

// HasReady implements Node.
func (n *ReplicaNode) HasReady() bool { return n.R.HasReady() }

func simTopic(t replica.Topic) Topic {
	switch t {
	case replica.TopicEphemeral:
		return TopicEphemeral
	case replica.TopicEvidence:
		return TopicEvidence
	}
	return TopicChanges
}

func replicaTopic(t Topic) replica.Topic {
	switch t {
	case TopicEphemeral:
		return replica.TopicEphemeral
	case TopicEvidence:
		return replica.TopicEvidence
	}
	return replica.TopicChanges
}

// Ready implements Node.
func (n *ReplicaNode) Ready() Ready {
	rd := n.R.Ready()
	out := n.out
	clear(out.Persist)
	clear(out.Broadcast)
	clear(out.Send)
	clear(out.Applied)
	clear(out.Alerts)
	*out = Ready{Persist: append(out.Persist[:0], rd.Persist...), Broadcast: out.Broadcast[:0], Send: out.Send[:0], Applied: out.Applied[:0], Alerts: out.Alerts[:0]}
	for _, b := range rd.Broadcast {
		out.Broadcast = append(out.Broadcast, Outgoing{Topic: simTopic(b.Topic), Data: b.Data})
	}
	for _, d := range rd.Send {
		out.Send = append(out.Send, Direct{To: string(d.To), Data: d.Data})
	}
	for _, ev := range rd.Applied {
		a := Applied{ID: ev.ID}
		if ev.Change != nil {
			a.Author = ev.Change.Author
			a.Local = a.Author == n.author
		}
		out.Applied = append(out.Applied, a)
	}
	for _, al := range rd.Alerts {
		switch al.Kind {
		case replica.AlertEquivocation:
			out.Alerts = append(out.Alerts, Alert{Kind: AlertEquivocation, Author: al.Author, Reason: al.Reason})
		case replica.AlertPenalty, replica.AlertNonService:
			if al.Penalize {
				out.Alerts = append(out.Alerts, Alert{Kind: AlertPenalty, Peer: string(al.Peer), Reason: al.Reason})
			}
		}
	}
	// Everything is copied to out: the replica may reuse rd's slices.
	n.R.Recycle(rd)
	return *out
}

// Advance implements Node.
func (n *ReplicaNode) Advance() { n.R.Advance() }

// StateHash implements Node.
func (n *ReplicaNode) StateHash() [32]byte { return n.R.Doc().StateHash() }

// AppendHeads implements Node.
func (n *ReplicaNode) AppendHeads(dst []crdt.ID) []crdt.ID {
	return n.R.Doc().Graph().AppendHeads(dst)
}

// Has implements Node.
func (n *ReplicaNode) Has(id crdt.ID) bool { return n.R.Doc().Graph().Has(id) }

// Len implements Node.
func (n *ReplicaNode) Len() int { return n.R.Doc().Graph().Len() }

// PresenceHash implements Node.
func (n *ReplicaNode) PresenceHash(ns string) [32]byte {
	h := blake3.New(32, nil)
	for _, e := range n.R.Presence().All(ns) {
		h.Write([]byte(e.Key))
		h.Write([]byte{0})
		h.Write(e.Author[:])
		h.Write([]byte(e.Value.String()))
		h.Write([]byte{0})
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Footprint implements Node.
func (n *ReplicaNode) Footprint() int {
	f := n.R.Footprint()
	return f.Sessions + f.QueuedIDs + f.Tracked + f.PendingOps + f.Buffered
}

// batchItems returns the number of envelopes in a reconciliation batch
// (MsgChanges), 0 for any other message.
func batchItems(data []byte) int {
	if replica.PeekType(data) != replica.MsgChanges {
		return 0
	}
	m, err := replica.DecodeMessage(data)
	if err != nil {
		return 0
	}
	return len(m.Items)
}

// cachedValidator is the replica's stateless gossip validator, checking
// signatures through cache.
func cachedValidator(cache *bft.SigCache) Validator {
	return func(doc string, topic Topic, data []byte) Verdict {
		return verdictOf(replica.ValidateGossipCached(doc, replicaTopic(topic), data, cache))
	}
}

func verdictOf(v replica.Verdict) Verdict {
	switch v {
	case replica.Accept:
		return Accept
	case replica.Ignore:
		return Ignore
	}
	return Reject
}

// defaultNamespace returns the namespace of an ephemeral gossip message
// when all its updates share one ("" otherwise).
func defaultNamespace(data []byte) string {
	m, err := replica.DecodeMessage(data)
	if err != nil || len(m.Items) != 1 {
		return ""
	}
	b, err := ephemeral.DecodeBatch(m.Items[0])
	if err != nil || len(b.Updates) == 0 {
		return ""
	}
	ns := b.Updates[0].Namespace
	for _, u := range b.Updates[1:] {
		if u.Namespace != ns {
			return ""
		}
	}
	return ns
}
