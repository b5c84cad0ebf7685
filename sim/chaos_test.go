package sim

import (
	"flag"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	flagSeeds = flag.Int("sim.seeds", 200, "number of chaos seeds TestChaos runs")
	flagFirst = flag.Uint64("sim.first", 1, "first chaos seed")
	flagSeed  = flag.Int64("sim.seed", -1, "run only this chaos seed (replay a failure)")
)

// TestChaos runs -sim.seeds chaos configurations (16–64 nodes, random
// topologies, links, faults and Byzantine mixes) and checks every
// invariant. A failure prints the command that replays it.
func TestChaos(t *testing.T) {
	seeds := make([]uint64, 0, *flagSeeds)
	if *flagSeed >= 0 {
		seeds = append(seeds, uint64(*flagSeed))
	} else {
		for i := 0; i < *flagSeeds; i++ {
			seeds = append(seeds, *flagFirst+uint64(i))
		}
	}
	if testing.Short() && len(seeds) > 20 {
		seeds = seeds[:20]
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	// The simulator is single-threaded; runs of different seeds are
	// independent, so two workers use both cores.
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= len(seeds) {
					return
				}
				seed := seeds[k]
				cfg := ChaosConfig(seed)
				r, err := Run(cfg)
				mu.Lock()
				if err != nil || !r.OK() {
					failed++
					t.Errorf("chaos seed %d failed (%s)\n  %v %v\n  replay: go test ./sim -run 'TestChaos$' -sim.seed=%d -v",
						seed, cfg.Describe(), err, r.Violations, seed)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d chaos seeds, %d failed, %v", len(seeds), failed, time.Since(start).Round(time.Millisecond))
}
