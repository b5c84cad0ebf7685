package node

import (
	"time"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/ephemeral"
	"github.com/convergenode/convergenode/replica"
)

// replicaCore drives replica.Replica: the node's only protocol logic.
var replicaCore = coreFuncs{
	newEngine: newReplicaEngine,
	validate: func(doc string, t topicKind, data []byte, c checkCaches) verdict {
		switch replica.ValidateGossipShared(doc, replicaTopic(t), data, c.sigs, c.envs) {
		case replica.Accept:
			return verdictAccept
		case replica.Reject:
			return verdictReject
		}
		return verdictIgnore
	},
	msgID: func(t topicKind, data []byte) string {
		if t != topicChanges {
			return ""
		}
		return replica.GossipID(data)
	},
}

func replicaTopic(t topicKind) replica.Topic {
	switch t {
	case topicChanges:
		return replica.TopicChanges
	case topicEphemeral:
		return replica.TopicEphemeral
	}
	return replica.TopicEvidence
}

func nodeTopic(t replica.Topic) topicKind {
	switch t {
	case replica.TopicChanges:
		return topicChanges
	case replica.TopicEphemeral:
		return topicEphemeral
	}
	return topicEvidence
}

// replicaEngine adapts *replica.Replica to engine.
type replicaEngine struct{ r *replica.Replica }

func newReplicaEngine(doc string, cfg *Config, c checkCaches) (engine, error) {
	rc := replica.DefaultConfig()
	if cfg.Replica != nil {
		rc = *cfg.Replica
	}
	rc.Doc = doc
	rc.Key = cfg.Key
	rc.TrustLog = rc.TrustLog || cfg.TrustLog
	rc.SigCache, rc.EnvCache = c.sigs, c.envs
	// The node acks a write once its change is durable, so it packs the
	// group at the next Ready rather than waiting for a Tick.
	rc.Flush = replica.FlushOnReady
	r, err := replica.New(rc)
	if err != nil {
		return nil, err
	}
	return &replicaEngine{r: r}, nil
}

func (e *replicaEngine) Restore(envs [][]byte) error      { return e.r.Restore(envs) }
func (e *replicaEngine) Step(from string, b []byte) error { return e.r.Step(replica.PeerID(from), b) }
func (e *replicaEngine) Tick(now time.Time)               { e.r.Tick(now) }
func (e *replicaEngine) Propose(ops ...crdt.Op) error     { return e.r.Propose(ops...) }
func (e *replicaEngine) SetPresence(ns, key string, v crdt.Value) error {
	return e.r.SetPresence(ns, key, v)
}
func (e *replicaEngine) PeerUp(p string) { e.r.PeerUp(replica.PeerID(p)) }
func (e *replicaEngine) PeerDown(p string) {
	e.r.PeerDown(replica.PeerID(p))
	// The peer's key is its presence author: its cursors go now, not at
	// their TTL. If it is still reachable through others, its next
	// heartbeat brings them back.
	if a, ok := peerAuthor(p); ok {
		e.r.PeerLeft(a)
	}
}
func (e *replicaEngine) HasReady() bool { return e.r.HasReady() }
func (e *replicaEngine) Advance()       { e.r.Advance() }
func (e *replicaEngine) Doc() *crdt.Doc { return e.r.Doc() }
func (e *replicaEngine) Envelope(id crdt.ID) ([]byte, bool) {
	return e.r.Envelope(id)
}

func (e *replicaEngine) Presence() []PresenceEntry {
	st := e.r.Presence()
	var out []PresenceEntry
	for _, ns := range st.Namespaces() {
		for _, en := range st.All(ns) {
			out = append(out, PresenceEntry{
				Namespace: en.Namespace, Key: en.Key, Value: en.Value,
				Author: en.Author.String(), Updated: time.UnixMilli(en.Time.Wall),
			})
		}
	}
	return out
}

func (e *replicaEngine) Ready() ready {
	rd := e.r.Ready()
	out := ready{Persist: rd.Persist, Applied: rd.Applied}
	for _, o := range rd.Broadcast {
		out.Broadcast = append(out.Broadcast, outgoing{Topic: nodeTopic(o.Topic), Data: o.Data})
	}
	for _, s := range rd.Send {
		out.Send = append(out.Send, direct{To: string(s.To), Data: s.Data})
	}
	for _, ev := range rd.Presence {
		out.Presence = append(out.Presence, PresenceEvent{
			PresenceEntry: PresenceEntry{
				Namespace: ev.Namespace, Key: ev.Key, Value: ev.Value,
				Author: ev.Author.String(), Updated: time.UnixMilli(ev.Time.Wall),
			},
			Removed: ev.Kind != ephemeral.EventSet,
		})
	}
	for _, a := range rd.Alerts {
		na := Alert{Kind: a.Kind.String(), Peer: string(a.Peer), Reason: a.Reason, Penalize: a.Penalize}
		if a.Kind == replica.AlertEquivocation {
			na.Author = a.Author.String()
		}
		for _, id := range a.IDs {
			na.Changes = append(na.Changes, id.String())
		}
		out.Alerts = append(out.Alerts, na)
	}
	return out
}
