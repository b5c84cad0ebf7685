package sim

import (
	"runtime"
	"testing"
	"time"
)

func TestQueueOrder(t *testing.T) {
	var q queue
	seq := uint64(0)
	for _, at := range []int64{5, 3, 9, 3, 1, 5, 5} {
		seq++
		q.push(event{at: at, seq: seq})
	}
	var got [][2]int64
	for q.Len() > 0 {
		e := q.pop()
		got = append(got, [2]int64{e.at, int64(e.seq)})
	}
	want := [][2]int64{{1, 5}, {3, 2}, {3, 4}, {5, 1}, {5, 6}, {5, 7}, {9, 3}}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pop order %v, want %v", got, want)
		}
	}
}

func TestFakeEngine(t *testing.T) {
	for _, topo := range []string{"star", "gossip", "mesh", "ring", "tree", "regular", "smallworld", "gossipsub", "partition"} {
		t.Run(topo, func(t *testing.T) {
			r, err := Run(fakeConfig(Config{Seed: 1, Nodes: 20, Topology: topo, Workload: Workload{Rate: 2}}))
			if err != nil {
				t.Fatal(err)
			}
			if !r.OK() || !r.Converged || r.Delivery != 1 {
				t.Fatalf("%s: converged=%v delivery=%v violations=%v", topo, r.Converged, r.Delivery, r.Violations)
			}
		})
	}
}

func TestFakeDeterminism(t *testing.T) {
	cfg := fakeConfig(Config{Seed: 7, Nodes: 30, Topology: "gossip", Link: Link{Latency: Latency{Kind: DistLogNormal, Base: 20 * time.Millisecond, Sigma: 0.5}, Loss: 0.2, Dup: 0.05, Reorder: 0.1}, Workload: Workload{Rate: 3}})
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	a, _ := Run(cfg)
	runtime.GOMAXPROCS(2)
	b, _ := Run(cfg)
	if a.TraceHash != b.TraceHash || a.Events != b.Events {
		t.Fatalf("trace %s/%d vs %s/%d", a.TraceHash, a.Events, b.TraceHash, b.Events)
	}
	cfg.Seed = 8
	c, _ := Run(cfg)
	if c.TraceHash == a.TraceHash {
		t.Fatal("different seeds gave the same trace")
	}
}
