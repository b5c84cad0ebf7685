package sim

import (
	"testing"
	"time"

	"github.com/convergenode/convergenode/replica"
)

// TestRegossipSparse: on a lossy ring and tree (flooding, default 10 s
// sync interval) a lost gossip message used to be repaired one sync
// interval per hop; with changes learned by reconciliation re-gossiped,
// the honest nodes converge several times sooner, for a few percent more
// messages.
func TestRegossipSparse(t *testing.T) {
	for _, topo := range []string{"ring", "tree"} {
		var conv [2]time.Duration
		var msgs [2]int64
		for k, rate := range []int{-1, 0} { // disabled, default
			for seed := uint64(1); seed <= 3; seed++ {
				cfg := Config{
					Seed: seed, Nodes: 40, Topology: topo,
					Link:     Link{Latency: Latency{Base: 20 * time.Millisecond}, Jitter: 5 * time.Millisecond, Loss: 0.1},
					Workload: Workload{Rate: 0.5},
					Replica:  func(rc *replica.Config) { rc.RegossipRate = rate },
					Settle:   5 * time.Minute,
				}
				r := mustRun(t, cfg)
				if !r.Converged {
					t.Fatalf("%s seed %d regossip=%v: did not converge", topo, seed, rate >= 0)
				}
				conv[k] += r.ConvergenceTime
				msgs[k] += r.Messages
			}
		}
		t.Logf("%s: convergence (sum of 3 seeds) %v without re-gossip, %v with; messages %d, %d",
			topo, conv[0], conv[1], msgs[0], msgs[1])
		if conv[1]*2 > conv[0] {
			t.Errorf("%s: re-gossip converged in %v, not twice as fast as %v without", topo, conv[1], conv[0])
		}
		if msgs[1] > msgs[0]*3/2 {
			t.Errorf("%s: re-gossip sent %d messages, over 1.5x the %d without", topo, msgs[1], msgs[0])
		}
	}
}
