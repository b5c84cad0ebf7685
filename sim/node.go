package sim

import (
	"crypto/ed25519"
	"math/rand/v2"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
)

// Topic is a gossip topic of a document. The values mirror replica.Topic.
type Topic uint8

// The topics.
const (
	TopicChanges   Topic = 0
	TopicEphemeral Topic = 1
	TopicEvidence  Topic = 2
)

func (t Topic) String() string {
	switch t {
	case TopicChanges:
		return "changes"
	case TopicEphemeral:
		return "ephemeral"
	case TopicEvidence:
		return "evidence"
	}
	return "topic?"
}

// Verdict is a gossip validator's answer; the values mirror replica.Verdict.
type Verdict uint8

// The verdicts.
const (
	Accept Verdict = iota // deliver and forward
	Reject                // drop and penalise the sender
	Ignore                // drop quietly
)

// Node is what the simulator drives in every simulated peer: the protocol
// core of one document (replica.Replica behind an adapter). All methods are
// called from the simulator's single goroutine.
type Node interface {
	// Step hands the node one wire message from a peer.
	Step(from string, msg []byte) error
	// Tick advances the node's clock.
	Tick(now time.Time)
	// Propose makes a local durable write.
	Propose(ops ...crdt.Op) error
	// SetPresence makes a local ephemeral write.
	SetPresence(ns, key string, v crdt.Value) error
	// PeerUp and PeerDown report connection changes.
	PeerUp(p string)
	PeerDown(p string)
	// HasReady, Ready and Advance follow the replica's driver loop. The
	// slices of a Ready may be reused by the next call to Ready.
	HasReady() bool
	Ready() Ready
	Advance()

	// Inspection, for invariants and metrics.

	// StateHash is the hash of the materialised durable state.
	StateHash() [32]byte
	// AppendHeads appends the node's current heads, sorted, to dst and
	// returns the extended slice (the simulator reads them after every
	// change a node applies, into one buffer).
	AppendHeads(dst []crdt.ID) []crdt.ID
	// Has reports whether the change is in the node's DAG.
	Has(id crdt.ID) bool
	// Len is the number of changes in the node's DAG.
	Len() int
	// PresenceHash hashes the live ephemeral entries of one namespace.
	PresenceHash(ns string) [32]byte
	// Footprint estimates the node's held items beyond its DAG (causal
	// buffer entries, pending fetches, sessions): what a flood could grow.
	Footprint() int
}

// Quieter is implemented by nodes that can tell when their Tick has
// nothing to do. The simulator then skips the ticks before QuietUntil (in
// node time), and before any other input to the node it calls Tick once
// with the time of the last tick it skipped, so the node's clock reads as
// if it had ticked all along.
type Quieter interface {
	QuietUntil() time.Time
}

// Ready is one batch of node output, in the order the driver must act on
// it: persist, then publish and send, then deliver events.
type Ready struct {
	Persist   [][]byte   // encoded envelopes to make durable first
	Broadcast []Outgoing // gossip on a topic
	Send      []Direct   // reliable stream to one peer
	Applied   []Applied  // changes applied to the document
	Alerts    []Alert    // equivocation proofs and penalties
}

// Outgoing is one gossip publication.
type Outgoing struct {
	Topic Topic
	Data  []byte
}

// Direct is one message on a reliable stream to one peer.
type Direct struct {
	To   string
	Data []byte
}

// Applied describes one applied change.
type Applied struct {
	ID     crdt.ID
	Author crdt.Author
	Local  bool // the node's own write
}

// AlertKind classifies an Alert.
type AlertKind uint8

// The alert kinds.
const (
	AlertEquivocation AlertKind = 1 // a proof that Author equivocated
	AlertPenalty      AlertKind = 2 // Peer sent something penalisable
)

// Alert is an equivocation proof or a penalty raised by a node.
type Alert struct {
	Kind   AlertKind
	Author crdt.Author // AlertEquivocation
	Peer   string      // AlertPenalty
	Reason string
}

// NodeConfig is what a Factory gets to build one node.
type NodeConfig struct {
	Index int
	Peer  string // the node's peer ID in the simulation
	Doc   string
	Key   ed25519.PrivateKey
	Rand  *rand.Rand
	// Log is the node's durable log when it restarts (nil on first start):
	// the factory must Restore it.
	Log [][]byte
	// Now is the node's clock at construction.
	Now time.Time
	// SigCache is the simulation's shared signature cache (nil: none).
	// Its contents never change a result, only the wall-clock cost.
	SigCache *bft.SigCache
	// EnvCache is the simulation's shared envelope cache (nil: none),
	// for replica.Config.EnvCache. It never changes a result either.
	EnvCache *bft.EnvCache
	// Namespaces are the presence namespaces the node follows in a
	// filtered topology, for ephemeral.Config.Namespaces (nil: all).
	Namespaces []string
	// Expect is the workload's size, for replica.Config.ExpectChanges
	// and the other size hints: the factory may size the node's state for
	// it up front. It never changes a result.
	Expect Expect

	// ready is the simulation's one Ready buffer, which the default
	// factory's nodes share (nil: the node has its own): the simulator
	// is done with one node's Ready before it asks another, and a shared
	// buffer is warm in the cache where 10,000 separate ones are not.
	ready *Ready
}

// Expect is what the workload is expected to leave on every node: about
// Changes durable changes from Authors writers, on Rows rows of one table.
// Byzantine floods and restarts can add more; the figures are hints.
type Expect struct {
	Changes, Authors, Rows int
}

// Factory builds a node. The default is the replica adapter.
type Factory func(cfg NodeConfig) (Node, error)

// Validator is the stateless gossip validator (replica.ValidateGossip).
// Results are cached by message, so it must be a pure function of its
// arguments.
type Validator func(docID string, topic Topic, data []byte) Verdict
