package replica_test

import (
	"slices"
	"testing"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/replica"
	"github.com/convergenode/convergenode/replica/replicatest"
)

// A validator and a replica sharing one SigCache verify each gossiped
// change once; the verdicts are those of ValidateGossip.
// fiveChanges makes a replica write five changes and returns it, their
// gossip messages and its log.
func fiveChanges(t *testing.T) (src *replica.Replica, msgs, log [][]byte) {
	t.Helper()
	src = newTestReplica(t, 0, nil)
	for i := range 5 {
		_ = src.Propose(ins("r", int64(i)))
		src.Tick(replicatest.Epoch.Add(time.Duration(i+1) * time.Millisecond))
		rd := src.Ready()
		for _, o := range rd.Broadcast {
			if o.Topic == replica.TopicChanges {
				msgs = append(msgs, o.Data)
			}
		}
		log = append(log, rd.Persist...)
		src.Advance()
	}
	if len(msgs) != 5 {
		t.Fatalf("%d change broadcasts, want 5", len(msgs))
	}
	return src, msgs, log
}

func TestSigCacheSharedWithValidator(t *testing.T) {
	src, msgs, log := fiveChanges(t)
	cache := bft.NewSigCache(64)
	dst := newTestReplica(t, 1, func(c *replica.Config) { c.SigCache = cache })
	for i, m := range msgs {
		if v := replica.ValidateGossipCached("doc", replica.TopicChanges, m, cache); v != replica.Accept {
			t.Fatalf("change %d: %v", i, v)
		}
		if err := dst.Step("p", m); err != nil {
			t.Fatal(err)
		}
		if s := cache.Stats(); s.Misses != uint64(i+1) || s.Hits != uint64(i+1) {
			t.Fatalf("after change %d: %+v, want one miss (validator) and one hit (Step) each", i, s)
		}
	}
	if dst.Doc().StateHash() != src.Doc().StateHash() {
		t.Fatal("states differ")
	}
	// Tampered copies: the same verdict as without a cache, never a hit.
	flip := func(b []byte, i int) []byte { c := slices.Clone(b); c[i] ^= 1; return c }
	before := cache.Stats()
	for _, m := range [][]byte{flip(msgs[0], len(msgs[0])-1), flip(msgs[0], len(msgs[0])-80)} {
		if v, w := replica.ValidateGossipCached("doc", replica.TopicChanges, m, cache), replica.ValidateGossip("doc", replica.TopicChanges, m); v != replica.Reject || w != replica.Reject {
			t.Fatalf("tampered: %v (uncached %v), want Reject", v, w)
		}
	}
	if s := cache.Stats(); s.Hits != before.Hits {
		t.Fatalf("tampered copy hit the cache: %+v", s)
	}
	// Restore through the shared cache: every signature is cached already.
	before = cache.Stats()
	re := newTestReplica(t, 2, func(c *replica.Config) { c.SigCache = cache })
	if err := re.Restore(log); err != nil {
		t.Fatal(err)
	}
	if s := cache.Stats(); s.Misses != before.Misses || s.Hits != before.Hits+5 {
		t.Fatalf("restore: %+v, want 5 hits and no miss after %+v", s, before)
	}
	if re.Doc().StateHash() != src.Doc().StateHash() {
		t.Fatal("restored state differs")
	}
	// A nil cache (the default) still verifies.
	plain := newTestReplica(t, 3, nil)
	if err := plain.Restore(log); err != nil || plain.Doc().StateHash() != src.Doc().StateHash() {
		t.Fatalf("restore without cache: %v", err)
	}
}

// A validator and a replica sharing an EnvCache decode each gossiped
// change once: Step takes the validator's envelope. Tampered copies get
// ValidateGossip's verdict and never the cached envelope.
func TestEnvCacheSharedWithValidator(t *testing.T) {
	src, msgs, _ := fiveChanges(t)
	sigs, envs := bft.NewSigCache(64), bft.NewEnvCache(64)
	dst := newTestReplica(t, 1, func(c *replica.Config) { c.SigCache, c.EnvCache = sigs, envs })
	for i, m := range msgs {
		if v := replica.ValidateGossipShared("doc", replica.TopicChanges, m, sigs, envs); v != replica.Accept {
			t.Fatalf("change %d: %v", i, v)
		}
		if err := dst.Step("p", m); err != nil {
			t.Fatal(err)
		}
		if s := envs.Stats(); s.Misses != uint64(i+1) || s.Hits != uint64(i+1) {
			t.Fatalf("after change %d: %+v, want one miss (validator) and one hit (Step) each", i, s)
		}
	}
	if dst.Doc().StateHash() != src.Doc().StateHash() {
		t.Fatal("states differ")
	}
	flip := func(b []byte, i int) []byte { c := slices.Clone(b); c[i] ^= 1; return c }
	before := envs.Stats()
	for _, m := range [][]byte{flip(msgs[0], len(msgs[0])-1), flip(msgs[0], len(msgs[0])-80)} {
		if v := replica.ValidateGossipShared("doc", replica.TopicChanges, m, sigs, envs); v != replica.Reject {
			t.Fatalf("tampered: %v, want Reject", v)
		}
	}
	if s := envs.Stats(); s.Hits != before.Hits {
		t.Fatalf("tampered copy hit the cache: %+v", s)
	}
	if v := replica.ValidateGossipShared("other", replica.TopicChanges, msgs[0], sigs, envs); v != replica.Reject {
		t.Fatalf("change of another document: %v, want Reject", v)
	}
}
