package replica_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/ephemeral"
	"github.com/convergenode/convergenode/internal/testhook"
	"github.com/convergenode/convergenode/replica"
	"github.com/convergenode/convergenode/replica/replicatest"
)

// tick is the test's tick interval; not a divisor of a second, so that a
// Tick the fast path wrongly skips is not hidden by one that replay-state
// pruning (once a second) runs anyway.
const tick = 70 * time.Millisecond

// tickUntil ticks r alone (no other input) for d and returns when found
// first saw what it looks for in the Ready output.
func tickUntil(r *replica.Replica, d time.Duration, found func(replica.Ready) bool) time.Duration {
	for el := tick; el <= d; el += tick {
		r.Tick(replicatest.Epoch.Add(el))
		if found(r.Ready()) {
			return el
		}
	}
	return 0
}

// quietTimeout opens a session with a peer that never answers and returns
// when the replica, driven by Tick alone, timed it out.
func quietTimeout(t *testing.T) time.Duration {
	a := newTestReplica(t, 0, nil)
	a.PeerUp("b")
	a.Ready()
	return tickUntil(a, 20*time.Second, func(rd replica.Ready) bool {
		for _, al := range rd.Alerts {
			if al.Kind == replica.AlertNonService && al.Reason == "sync-timeout" {
				return true
			}
		}
		return false
	})
}

// quietExpiry gives the replica a presence entry from another replica and
// returns when, driven by Tick alone, it expired the entry.
func quietExpiry(t *testing.T) time.Duration {
	a := newTestReplica(t, 0, nil)
	b := newTestReplica(t, 1, nil)
	if err := b.SetPresence("cursor", "k", crdt.Int(1)); err != nil {
		t.Fatal(err)
	}
	b.Tick(replicatest.Epoch)
	for _, out := range b.Ready().Broadcast {
		if err := a.Step("b", out.Data); err != nil {
			t.Fatal(err)
		}
	}
	a.Ready()
	return tickUntil(a, 40*time.Second, func(rd replica.Ready) bool {
		for _, ev := range rd.Presence {
			if ev.Kind == ephemeral.EventExpire {
				return true
			}
		}
		return false
	})
}

// quietHeartbeat has the replica write a presence entry and returns when,
// driven by Tick alone, it sent the entry again (the heartbeat).
func quietHeartbeat(t *testing.T) time.Duration {
	a := newTestReplica(t, 0, nil)
	if err := a.SetPresence("cursor", "k", crdt.Int(1)); err != nil {
		t.Fatal(err)
	}
	a.Tick(replicatest.Epoch)
	if len(a.Ready().Broadcast) != 1 {
		t.Fatal("presence write not broadcast")
	}
	return tickUntil(a, 40*time.Second, func(rd replica.Ready) bool {
		for _, out := range rd.Broadcast {
			if out.Topic == replica.TopicEphemeral {
				return true
			}
		}
		return false
	})
}

// TestQuietTicksKeepTimers: with the quiet-tick fast path (and Tick leaving
// an idle presence store alone), a replica with no input still times out a
// session whose peer went silent, expires presence entries and sends its
// own presence heartbeat, at the same tick as when every Tick runs in full.
func TestQuietTicksKeepTimers(t *testing.T) {
	defer testhook.FullTicks.Store(false)
	var got [2]string
	for i, full := range []bool{false, true} {
		testhook.FullTicks.Store(full)
		timeout, expiry, heartbeat := quietTimeout(t), quietExpiry(t), quietHeartbeat(t)
		def := replica.DefaultConfig()
		if timeout <= def.SyncTimeout || timeout > def.SyncTimeout+tick {
			t.Errorf("full ticks %v: session timed out after %v, want within a tick after %v", full, timeout, def.SyncTimeout)
		}
		ttl := 30 * time.Second // ephemeral's default TTL
		if expiry < ttl || expiry > ttl+tick {
			t.Errorf("full ticks %v: presence expired after %v, want within a tick after %v", full, expiry, ttl)
		}
		if hb := ephemeral.DefaultConfig().Heartbeat; heartbeat < hb || heartbeat > hb+tick {
			t.Errorf("full ticks %v: heartbeat after %v, want within a tick after %v", full, heartbeat, hb)
		}
		got[i] = fmt.Sprint(timeout, expiry, heartbeat)
	}
	if got[0] != got[1] {
		t.Errorf("quiet ticks: timeout, expiry, heartbeat %s; full ticks: %s", got[0], got[1])
	}
}
