package replica_test

import (
	"testing"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/replica"
	"github.com/convergenode/convergenode/replica/replicatest"
)

// TestPrefetchChangesNothing: a replica that runs every Prefetch stage
// before each input (gossiped changes, one not yet in the envelope cache,
// a duplicate, a malformed message, a tick) ends in the state, with the
// stats and the Ready output, of one that does not, and the envelope cache
// it shares counts no lookup.
func TestPrefetchChangesNothing(t *testing.T) {
	w := newTestReplica(t, 1, nil)
	var msgs [][]byte
	for i := range 20 {
		if err := w.Propose(ins(string(rune('a'+i%7)), int64(i))); err != nil {
			t.Fatal(err)
		}
		w.Tick(replicatest.Epoch.Add(time.Duration(i+1) * time.Millisecond))
		for _, b := range w.Ready().Broadcast {
			msgs = append(msgs, b.Data)
		}
	}
	msgs = append(msgs, msgs[3], []byte{replica.WireVersion, byte(replica.MsgChange), 9}, nil)
	// The changes reach the replicas out of order, so some wait for parents.
	msgs[2], msgs[9] = msgs[9], msgs[2]

	cache := bft.NewEnvCache(64)
	mk := func() *replica.Replica {
		return newTestReplica(t, 2, func(c *replica.Config) { c.EnvCache = cache })
	}
	plain, warmed := mk(), mk()
	for i, m := range msgs {
		_ = plain.Step("w", m)
		before := cache.Stats()
		for st := range replica.PrefetchStages {
			warmed.Prefetch(st, m)
		}
		if after := cache.Stats(); after != before {
			t.Fatalf("message %d: Prefetch changed the envelope cache's stats: %+v, then %+v", i, before, after)
		}
		_ = warmed.Step("w", m)
		now := replicatest.Epoch.Add(time.Duration(i+1) * 10 * time.Millisecond)
		plain.Tick(now)
		warmed.Prefetch(0, nil)
		warmed.Tick(now)
		a, b := plain.Ready(), warmed.Ready()
		if len(a.Persist) != len(b.Persist) || len(a.Applied) != len(b.Applied) || len(a.Send) != len(b.Send) ||
			len(a.Broadcast) != len(b.Broadcast) || len(a.Alerts) != len(b.Alerts) {
			t.Fatalf("message %d: Ready differs: %+v\n%+v", i, a, b)
		}
	}
	if plain.Doc().StateHash() != warmed.Doc().StateHash() || plain.Stats() != warmed.Stats() {
		t.Fatalf("states differ: %+v\n%+v", plain.Stats(), warmed.Stats())
	}
	if plain.Doc().Graph().Len() != 20 {
		t.Fatalf("%d changes applied, want 20", plain.Doc().Graph().Len())
	}
}
