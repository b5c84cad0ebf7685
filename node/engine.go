package node

import (
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
)

// topicKind names one of a document's three gossip topics.
type topicKind uint8

const (
	topicChanges topicKind = iota
	topicEphemeral
	topicEvidence
	numTopics
)

func (k topicKind) String() string {
	return [...]string{"changes", "ephemeral", "evidence"}[k]
}

// verdict is the stateless gossip check's outcome.
type verdict uint8

const (
	verdictAccept verdict = iota
	verdictReject         // stage-1 failure: the sender is penalised
	verdictIgnore         // not for us or not checkable statelessly: dropped, no penalty
)

// engine is the protocol core the node drives for one document:
// replica.Replica behind a thin adapter (replica.go). The node makes no
// protocol decision of its own; it moves bytes between the engine, the
// network and the disk.
//
// An engine is not safe for concurrent use: the document's loop goroutine
// calls the mutating methods, and readers hold the document's lock.
type engine interface {
	Restore(envs [][]byte) error
	Step(from string, msg []byte) error
	Tick(now time.Time)
	Propose(ops ...crdt.Op) error
	SetPresence(ns, key string, v crdt.Value) error
	PeerUp(p string)
	PeerDown(p string)
	HasReady() bool
	Ready() ready
	Advance()
	Doc() *crdt.Doc
	Presence() []PresenceEntry
	// Envelope returns the encoded envelope of a change the engine holds.
	Envelope(id crdt.ID) ([]byte, bool)
}

// ready is the engine's output, acted on in field order.
type ready struct {
	Persist   [][]byte // durable before anything else in this ready is sent
	Broadcast []outgoing
	Send      []direct
	Applied   []crdt.ChangeEvent
	Presence  []PresenceEvent
	Alerts    []Alert
}

type outgoing struct {
	Topic topicKind
	Data  []byte
}

type direct struct {
	To   string // peer ID
	Data []byte
}

// PresenceEntry is one live ephemeral value of a document.
type PresenceEntry struct {
	Namespace string     `json:"namespace"`
	Key       string     `json:"key"`
	Value     crdt.Value `json:"value"`
	Author    string     `json:"author"` // hex public key
	Updated   time.Time  `json:"updated"`
}

// PresenceEvent reports a change to a document's ephemeral state.
type PresenceEvent struct {
	PresenceEntry
	Removed bool `json:"removed"` // expired or the author left
}

// Alert is raised by the protocol core: equivocation proofs and peer
// penalties.
type Alert struct {
	Doc      string    `json:"doc"`
	Kind     string    `json:"kind"`             // equivocation, penalty, non-service, dropped, storage
	Peer     string    `json:"peer,omitempty"`   // peer ID the alert is about
	Author   string    `json:"author,omitempty"` // hex public key (equivocation)
	Reason   string    `json:"reason"`
	Penalize bool      `json:"penalize"`
	Changes  []string  `json:"changes,omitempty"` // change IDs concerned (a few)
	Detail   string    `json:"detail,omitempty"`
	Time     time.Time `json:"time"`
}

// checkCaches are a node's stage-1 caches, shared by its validators and
// its engines: sigs (verified signatures) so that a gossiped change is
// verified once, envs (checked envelopes) so that it is decoded and hashed
// once. Nil fields cache nothing.
type checkCaches struct {
	sigs *bft.SigCache
	envs *bft.EnvCache
}

// coreFuncs are the engine's stateless entry points. c are the node's
// caches, shared by its validators and its engines.
type coreFuncs struct {
	newEngine func(doc string, cfg *Config, c checkCaches) (engine, error)
	validate  func(doc string, t topicKind, data []byte, c checkCaches) verdict
	msgID     func(t topicKind, data []byte) string
}
