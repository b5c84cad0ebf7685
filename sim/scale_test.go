package sim

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// TestScale measures wall time and peak heap of gossip runs with 100
// changes at growing node counts, prints a table and writes a chart:
//
//	SIM_SCALE=100,1000,3000,10000 SIM_SCALE_SVG=../docs/sim-scale.svg go test ./sim -run TestScale -v -timeout 1h
//
// SIM_SCALE_HEAPPROFILE=file writes a heap profile (go tool pprof
// -sample_index=inuse_space) at each run's peak heap; the last run's stays.
func TestScale(t *testing.T) {
	spec := os.Getenv("SIM_SCALE")
	if spec == "" {
		t.Skip("set SIM_SCALE=100,1000,... to run")
	}
	changes := 100
	if v := os.Getenv("SIM_SCALE_CHANGES"); v != "" {
		changes, _ = strconv.Atoi(v)
	}
	type point struct {
		nodes     int
		wall      time.Duration
		heap      uint64
		simTime   time.Duration
		events    uint64
		converged bool
	}
	var pts []point
	heapProfile := os.Getenv("SIM_SCALE_HEAPPROFILE")
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		var peak uint64
		var ms runtime.MemStats
		lastCheck := time.Duration(-1)
		cfg := Config{Seed: 1, Nodes: n, Topology: "gossip", Workload: Workload{Changes: changes}, SampleEvery: time.Second}
		cfg.Progress = func(now, _ time.Duration) {
			if now-lastCheck >= time.Second {
				lastCheck = now
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak && heapProfile != "" {
					writeHeapProfile(t, heapProfile)
				}
				peak = max(peak, ms.HeapInuse)
			}
		}
		start := time.Now()
		r, err := Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := point{n, time.Since(start), peak, r.SimTime, r.Events, r.Converged}
		pts = append(pts, p)
		t.Logf("%6d nodes x %d changes: wall %8.2fs, peak heap %6d MiB, simulated %v, %d events, converged %v, delivery %.3f",
			n, changes, p.wall.Seconds(), p.heap>>20, p.simTime, p.events, p.converged, r.Delivery)
	}
	svg := os.Getenv("SIM_SCALE_SVG")
	if svg == "" {
		return
	}
	pl := plot.New()
	pl.Title.Text = fmt.Sprintf("Simulator scale: gossip, %d changes, 2 shared cores", changes)
	pl.X.Label.Text = "nodes"
	pl.Y.Label.Text = "wall seconds  |  peak heap GiB"
	pl.X.Scale = plot.LogScale{}
	pl.X.Tick.Marker = plot.LogTicks{Prec: -1}
	wall := make(plotter.XYs, len(pts))
	heap := make(plotter.XYs, len(pts))
	for i, p := range pts {
		wall[i] = plotter.XY{X: float64(p.nodes), Y: p.wall.Seconds()}
		heap[i] = plotter.XY{X: float64(p.nodes), Y: float64(p.heap) / (1 << 30)}
	}
	if err := plotutil.AddLinePoints(pl, "wall s", wall, "peak heap GiB", heap); err != nil {
		t.Fatal(err)
	}
	pl.Legend.Top = true
	pl.Legend.Left = true
	if err := pl.Save(7*vg.Inch, 4*vg.Inch, svg); err != nil {
		t.Fatal(err)
	}
}

func writeHeapProfile(t *testing.T, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Fatal(err)
	}
}

// TestHeapConverged measures the live heap of a converged gossip run with
// 100 changes (every replica holds every change), after two collections:
// a like-for-like figure for comparing memory changes, which the peak
// heap of TestScale is not (the peak falls wherever the collector does).
//
//	SIM_HEAP_NODES=10000 [SIM_HEAP_PROFILE=/tmp/h.prof] go test ./sim -run 'TestHeapConverged$' -v
func TestHeapConverged(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SIM_HEAP_NODES"))
	if n == 0 {
		t.Skip("set SIM_HEAP_NODES to run")
	}
	s, err := New(Config{Seed: 1, Nodes: n, Topology: "gossip", Workload: Workload{Changes: 100}})
	if err != nil {
		t.Fatal(err)
	}
	if !s.RunToConvergence() {
		t.Fatal("did not converge")
	}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%d nodes converged: live heap %d MiB in %d objects (%.0f B per node)",
		n, ms.HeapAlloc>>20, ms.HeapObjects, float64(ms.HeapAlloc)/float64(n))
	if p := os.Getenv("SIM_HEAP_PROFILE"); p != "" {
		writeHeapProfile(t, p)
	}
	runtime.KeepAlive(s)
}
