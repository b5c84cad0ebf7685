package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/replica"
)

// The gossipsub validator and the replica share the node's caches: a
// gossiped change is decoded, hashed and verified by the validator, and
// Step takes the checked envelope from the envelope cache. (With two nodes
// pubsub validates each message once, so a hit can only be Step's.)
func TestCachesSharedByValidatorAndReplica(t *testing.T) {
	nodes := testNodes(t, 2, "d", nil)
	a, b := mustDoc(t, nodes[0], "d"), mustDoc(t, nodes[1], "d")
	if nodes[0].caches.sigs == nil || nodes[0].caches.sigs == nodes[1].caches.sigs {
		t.Fatal("want one signature cache per node")
	}
	if nodes[0].caches.envs == nil || nodes[0].caches.envs == nodes[1].caches.envs {
		t.Fatal("want one envelope cache per node")
	}
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; nodes[1].caches.envs.Stats().Hits == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no envelope cache hit on the receiver: %+v", nodes[1].caches.envs.Stats())
		}
		if err := a.Insert(ctx, "t", fmt.Sprintf("r%d", i), Cols{"v": i}); err != nil {
			t.Fatal(err)
		}
		n := a.Len()
		waitFor(t, 20*time.Second, "delivery", func() bool { return b.Len() == n })
	}
	if s := nodes[0].caches.sigs.Stats(); s.Hits != 0 {
		t.Fatalf("writer hit its signature cache: %+v (its own changes are not verified)", s)
	}
	if s := nodes[0].caches.envs.Stats(); s.Hits != 0 || s.Misses != 0 {
		t.Fatalf("writer used its envelope cache: %+v (its own changes are not checked)", s)
	}
}

// Caches set in Config.Replica are the node's caches (validators included).
func TestCachesFromReplicaConfig(t *testing.T) {
	sigs, envs := bft.NewSigCache(128), bft.NewEnvCache(128)
	nodes := testNodes(t, 1, "d", func(_ int, cfg *Config) {
		rc := replica.DefaultConfig()
		rc.SigCache, rc.EnvCache = sigs, envs
		cfg.Replica = &rc
	})
	if nodes[0].caches.sigs != sigs {
		t.Fatal("Config.Replica.SigCache not used")
	}
	if nodes[0].caches.envs != envs {
		t.Fatal("Config.Replica.EnvCache not used")
	}
}
