package replica_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/replica"
	"github.com/convergenode/convergenode/replica/replicatest"
)

// regossiped returns the changes v published on the changes topic.
func regossiped(t *testing.T, rd replica.Ready) []crdt.ID {
	t.Helper()
	var out []crdt.ID
	for _, b := range rd.Broadcast {
		if b.Topic != replica.TopicChanges {
			continue
		}
		m, err := replica.DecodeMessage(b.Data)
		if err != nil || m.Type != replica.MsgChange {
			t.Fatalf("bad broadcast %v", err)
		}
		id, _ := bft.PeekID(m.Items[0])
		out = append(out, id)
	}
	return out
}

// TestRegossipSynced: a change that reaches a replica by reconciliation
// is published again once applied, as the author's own gossip message
// (same bytes, same GossipID), also when it first waited in the causal
// buffer for a parent; a change that came by gossip is not (pubsub
// forwards it). A replica catching up after being away re-gossips
// nothing until a session completes, and RegossipRate caps the rest.
// (RegossipDelay is off here; see TestRegossipDelay.)
func TestRegossipSynced(t *testing.T) {
	now := replicatest.Epoch
	w := newTestReplica(t, 1, nil)
	ids, envs := chainFrom(t, w, 8, &now)
	gossipMsg := func(id crdt.ID) []byte {
		return replica.MustEncode(&replica.Message{Type: replica.MsgChange, Items: [][]byte{envs[id]}})
	}
	stream := func(v *replica.Replica, session uint64, heads []crdt.ID, items ...crdt.ID) replica.Ready {
		t.Helper()
		_ = v.Step("q", replica.MustEncode(&replica.Message{Type: replica.MsgHello, Session: session, IDs: heads}))
		var its [][]byte
		for _, id := range items {
			its = append(its, envs[id])
		}
		_ = v.Step("q", replica.MustEncode(&replica.Message{Type: replica.MsgChanges, Session: session, Last: true, Items: its}))
		rd := v.Ready()
		v.Advance()
		return rd
	}

	v := newTestReplica(t, 0, func(c *replica.Config) { c.RegossipRate, c.RegossipDelay = 2, -1 })
	// The first session brings ids[0] while v catches up: not re-gossiped.
	q := &scriptedPeer{heads: ids[:1], holds: envs}
	v.PeerUp("q")
	q.pump(t, v, &now)
	if !q.done || !v.Doc().Graph().Has(ids[0]) {
		t.Fatal("first session did not complete")
	}
	if s := v.Stats(); s.Regossiped != 0 {
		t.Fatalf("re-gossiped %d changes while catching up", s.Regossiped)
	}

	// Caught up: ids[1] by sync is re-gossiped, byte for byte.
	rd := stream(v, 101, ids[1:2], ids[1])
	got := regossiped(t, rd)
	if len(got) != 1 || got[0] != ids[1] || !bytes.Equal(rd.Broadcast[0].Data, gossipMsg(ids[1])) ||
		replica.GossipID(rd.Broadcast[0].Data) != replica.GossipID(gossipMsg(ids[1])) {
		t.Fatalf("want ids[1] re-gossiped as the author's message, got %v", got)
	}

	// ids[3] by sync waits for ids[2], which comes by gossip: only ids[3]
	// is re-gossiped, when it is applied.
	now = now.Add(2 * time.Second) // refill the budget
	v.Tick(now)
	v.Ready()
	rd = stream(v, 103, ids[3:4], ids[3])
	if got := regossiped(t, rd); len(got) != 0 {
		t.Fatalf("re-gossiped a change still in the causal buffer: %v", got)
	}
	_ = v.Step("q", gossipMsg(ids[2]))
	rd = v.Ready()
	if got := regossiped(t, rd); len(got) != 1 || got[0] != ids[3] {
		t.Fatalf("want only ids[3] re-gossiped once released, got %v", got)
	}

	// Four more by sync within one tick: the budget of 2 (one was spent
	// on ids[3]) lets one through.
	rd = stream(v, 105, ids[7:8], ids[4], ids[5], ids[6], ids[7])
	if got := regossiped(t, rd); len(got) != 1 || got[0] != ids[4] {
		t.Fatalf("want one re-gossip within RegossipRate, got %v", got)
	}
	if s := v.Stats(); s.Regossiped != 3 || s.RegossipCapped != 3 {
		t.Fatalf("stats: regossiped %d capped %d, want 3 and 3", s.Regossiped, s.RegossipCapped)
	}

	// Back from having no peer: catching up again.
	v.PeerDown("q")
	v.PeerUp("q")
	v.Ready()
	w2 := newTestReplica(t, 2, nil)
	ids2, envs2 := chainFrom(t, w2, 1, &now)
	envs[ids2[0]] = envs2[ids2[0]]
	rd = stream(v, 107, ids2, ids2[0])
	if got := regossiped(t, rd); len(got) != 0 || !v.Doc().Graph().Has(ids2[0]) {
		t.Fatalf("re-gossiped %v after coming back from no peers", got)
	}
}

// TestRegossipDelay: a change learned by reconciliation is re-gossiped
// after a random delay below RegossipDelay, at a Tick, unless it arrives
// by gossip meanwhile (someone else re-gossiped it).
func TestRegossipDelay(t *testing.T) {
	now := replicatest.Epoch
	w := newTestReplica(t, 1, nil)
	ids, envs := chainFrom(t, w, 3, &now)
	v := newTestReplica(t, 0, func(c *replica.Config) { c.RegossipDelay = time.Second })
	q := &scriptedPeer{}
	v.PeerUp("q")
	q.pump(t, v, &now) // an empty first session: v is caught up
	if !q.done {
		t.Fatal("first session did not complete")
	}
	_ = v.Step("q", replica.MustEncode(&replica.Message{Type: replica.MsgHello, Session: 9, IDs: ids[1:2]}))
	_ = v.Step("q", replica.MustEncode(&replica.Message{Type: replica.MsgChanges, Session: 9, Last: true, Items: [][]byte{envs[ids[0]], envs[ids[1]]}}))
	if got := regossiped(t, v.Ready()); len(got) != 0 {
		t.Fatalf("re-gossiped %v before the delay", got)
	}
	// ids[0] arrives by gossip before its delay is over: suppressed.
	_ = v.Step("q", replica.MustEncode(&replica.Message{Type: replica.MsgChange, Items: [][]byte{envs[ids[0]]}}))
	var got []crdt.ID
	for range 25 { // 1.25 s in 50 ms ticks
		now = now.Add(50 * time.Millisecond)
		v.Tick(now)
		got = append(got, regossiped(t, v.Ready())...)
	}
	if len(got) != 1 || got[0] != ids[1] {
		t.Fatalf("want only ids[1] re-gossiped within the delay, got %v", got)
	}
	if s := v.Stats(); s.Regossiped != 1 || s.RegossipHeard != 1 {
		t.Fatalf("stats: regossiped %d heard %d, want 1 and 1", s.Regossiped, s.RegossipHeard)
	}
	if f := v.Footprint(); f.Tracked != 0 {
		t.Fatalf("re-gossip state left behind: %+v", f)
	}
}
