package replica_test

import (
	"testing"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/ephemeral"
	"github.com/convergenode/convergenode/replica/replicatest"
)

// TestPeerLeft: when a peer leaves, its presence entries go at once (an
// EventRemove in the next Ready), its old batches are refused as replays,
// and its next heartbeat brings it back.
func TestPeerLeft(t *testing.T) {
	a, b := newTestReplica(t, 0, nil), newTestReplica(t, 1, nil)
	if err := a.SetPresence("cursor", "x", crdt.Int(7)); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPresence("cursor", "mine", crdt.Int(1)); err != nil {
		t.Fatal(err)
	}
	now := replicatest.Epoch.Add(time.Second)
	a.Tick(now)
	old := a.Ready().Broadcast
	b.Tick(now)
	b.Ready()
	for _, o := range old {
		if err := b.Step("a", o.Data); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.Ready().Presence; len(got) != 1 || got[0].Kind != ephemeral.EventSet {
		t.Fatalf("presence events = %v", got)
	}

	b.PeerLeft(a.Author())
	b.PeerLeft(b.Author()) // never removes its own
	got := b.Ready().Presence
	if len(got) != 1 || got[0].Kind != ephemeral.EventRemove || got[0].Key != "x" || got[0].Author != a.Author() {
		t.Fatalf("after PeerLeft: presence events = %v", got)
	}
	if _, ok := b.Presence().Get("cursor", b.Author(), "mine"); !ok {
		t.Fatal("PeerLeft of its own author removed the replica's entry")
	}
	for _, o := range old { // a replay of what it sent before leaving
		_ = b.Step("a", o.Data)
	}
	if got := b.Ready().Presence; len(got) != 0 {
		t.Fatalf("a replayed batch brought the peer back: %v", got)
	}

	if err := a.SetPresence("cursor", "x", crdt.Int(8)); err != nil {
		t.Fatal(err)
	}
	a.Tick(now.Add(time.Second))
	for _, o := range a.Ready().Broadcast {
		_ = b.Step("a", o.Data)
	}
	if got := b.Ready().Presence; len(got) != 1 || got[0].Kind != ephemeral.EventSet {
		t.Fatalf("after the peer came back: presence events = %v", got)
	}
}
