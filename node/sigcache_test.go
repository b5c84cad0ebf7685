package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/replica"
)

// The gossipsub validator and the replica share the node's signature
// cache: a gossiped change is verified by the validator and found in the
// cache by Step. (With two nodes pubsub validates each message once, so a
// hit can only be Step's.)
func TestSigCacheSharedByValidatorAndReplica(t *testing.T) {
	nodes := testNodes(t, 2, "d", nil)
	a, b := mustDoc(t, nodes[0], "d"), mustDoc(t, nodes[1], "d")
	if nodes[0].sigs == nil || nodes[0].sigs == nodes[1].sigs {
		t.Fatal("want one cache per node")
	}
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; nodes[1].sigs.Stats().Hits == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no cache hit on the receiver: %+v", nodes[1].sigs.Stats())
		}
		if err := a.Insert(ctx, "t", fmt.Sprintf("r%d", i), Cols{"v": i}); err != nil {
			t.Fatal(err)
		}
		n := a.Len()
		waitFor(t, 20*time.Second, "delivery", func() bool { return b.Len() == n })
	}
	if s := nodes[0].sigs.Stats(); s.Hits != 0 {
		t.Fatalf("writer hit its cache: %+v (its own changes are not verified)", s)
	}
}

// A cache set in Config.Replica is the node's cache (validators included).
func TestSigCacheFromReplicaConfig(t *testing.T) {
	c := bft.NewSigCache(128)
	nodes := testNodes(t, 1, "d", func(_ int, cfg *Config) {
		rc := replica.DefaultConfig()
		rc.SigCache = c
		cfg.Replica = &rc
	})
	if nodes[0].sigs != c {
		t.Fatal("Config.Replica.SigCache not used")
	}
}
