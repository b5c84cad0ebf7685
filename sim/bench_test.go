package sim

import (
	"testing"
	"time"
)

// BenchmarkRun measures a whole run: 100 nodes, gossip, 100 changes, to
// convergence (wall time per simulated run).
func BenchmarkRun(b *testing.B) {
	for _, topo := range []string{"star", "gossip", "mesh"} {
		b.Run(topo, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r, err := Run(Config{Seed: uint64(i + 1), Nodes: 100, Topology: topo, Workload: Workload{Changes: 100}})
				if err != nil || !r.Converged {
					b.Fatal(err, r.Violations)
				}
				b.ReportMetric(float64(r.Events), "events/run")
				b.ReportMetric(r.SimTime.Seconds(), "sim-s/run")
			}
		})
	}
}

// BenchmarkQueue measures the event queue alone.
func BenchmarkQueue(b *testing.B) {
	var q queue
	at := int64(0)
	for i := 0; i < 1024; i++ {
		q.push(event{at: int64(i) * int64(time.Millisecond), aux: int32(i)})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := q.pop()
		at = e.at + int64(time.Second)
		q.push(event{at: at, aux: int32(i)})
	}
}
