package chaos

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// long reports whether the long suite runs (make chaos sets
// CONVERGENODE_CHAOS_LONG=1).
func long() bool { return os.Getenv("CONVERGENODE_CHAOS_LONG") != "" }

// TestLongChaos is the long suite: bigger clusters, every attack and every
// fault for a minute each. Run with CONVERGENODE_CHAOS_LONG=1 (make chaos).
func TestLongChaos(t *testing.T) {
	if !long() {
		t.Skip("set CONVERGENODE_CHAOS_LONG=1 (make chaos)")
	}
	for _, cfg := range []Config{
		// The example run.
		{Nodes: 12, Byzantine: 3, Faults: []string{FaultPartition, FaultChurn}, Duration: 60 * time.Second, Seed: 5},
		// Every attack at once, every fault.
		{Nodes: 18, Byzantine: len(Attacks), Faults: Faults, Duration: 60 * time.Second, Seed: 7},
		// A sparse random graph with liars and censors among the links.
		{Nodes: 20, Byzantine: 4, Degree: 4, Attacks: []Attack{AttackCensor, AttackLie, AttackForge, AttackFloodInvalid},
			Faults: []string{FaultCut, FaultChurn, FaultLatency}, Duration: 45 * time.Second, Seed: 9},
	} {
		t.Run(fmt.Sprintf("nodes=%d,byz=%d,seed=%d", cfg.Nodes, cfg.Byzantine, cfg.Seed), func(t *testing.T) {
			r, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + r.Text())
			if !r.OK {
				t.Fatal("invariants failed")
			}
		})
	}
}
