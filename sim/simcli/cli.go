// Package simcli is the command-line front end of the simulator: the
// "convergenode sim" subcommand calls [CLI].
package simcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/convergenode/convergenode/internal/thp"
	"github.com/convergenode/convergenode/replica"
	"github.com/convergenode/convergenode/sim"
	"github.com/schollz/progressbar/v3"
)

// Usage is the help text of the sim subcommand.
const Usage = `usage: convergenode sim [flags]

Runs the deterministic simulator: the real replica code in every node, over
a chosen topology, link model, faults and Byzantine peers. The same flags
and seed always give the same result (see the trace hash).

examples:
  convergenode sim --topology gossip --nodes 1000 --fanout 6 --seed 7
  convergenode sim --nodes 200 --compare star,gossip,gossipsub,mesh --seeds 5 --svg out/
  convergenode sim --topology partition --nodes 50 --json
  convergenode sim --scenario sim/testdata/partition.txt
  convergenode sim --chaos-seed 142

flags:
`

type options struct {
	topology, compare, latency, byzantine, csvPath, svgDir, scenario string
	nodes, fanout, hops, degree, changes, writers, crash, seeds      int
	seed                                                             uint64
	chaosSeed                                                        int64
	rate, ephemeral, loss, dup, reorder                              float64
	duration, jitter, settle, syncEvery, partAt, partFor, tick       time.Duration
	bandwidth                                                        int64
	jsonOut, regions, burst, progress, quiet, hugePages              bool
}

// hugePagesFrom is the run size from which the heap gets huge pages
// unless --huge-pages says otherwise. On the 2-core test machine (a VM,
// where the first touch of each 2 MiB page costs the kernel milliseconds)
// they made 10,000 × 100 3% slower and 100,000 × 100 16% faster.
const hugePagesFrom = 50_000

// heapPerNode is about the most heap a run holds per node, by which the
// CLI tells internal/thp how much heap to map ahead: the 100,000 × 100 run
// peaks near 58 KB a node without a memory limit (twice its live heap,
// GOGC=100).
const heapPerNode = 64 << 10

// CLI runs the sim subcommand with args (without the program and
// subcommand names), writing results to stdout and a progress bar on long
// runs to stderr.
func CLI(ctx context.Context, args []string, stdout io.Writer) error {
	var o options
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprint(stdout, Usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.topology, "topology", "gossip", "topology: "+strings.Join(topologyNames(), ", "))
	fs.IntVar(&o.nodes, "nodes", 100, "number of nodes")
	fs.IntVar(&o.fanout, "fanout", 6, "gossip fanout")
	fs.IntVar(&o.hops, "hops", 10, "gossip hop limit")
	fs.IntVar(&o.degree, "degree", 0, "connections per node for random graphs (0 = default)")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed")
	fs.IntVar(&o.seeds, "seeds", 1, "run each configuration with this many seeds (seed, seed+1, ...) and report medians and means")
	fs.Float64Var(&o.rate, "rate", 1, "durable writes per writer per second")
	fs.IntVar(&o.changes, "changes", 0, "total writes, spread over the writers and --duration (overrides --rate)")
	fs.IntVar(&o.writers, "writers", 0, "number of writing nodes (0 = all honest nodes)")
	fs.DurationVar(&o.duration, "duration", 2*time.Second, "how long writes go on (simulated time)")
	fs.Float64Var(&o.ephemeral, "ephemeral", 0, "fraction of writes that are presence updates")
	fs.StringVar(&o.latency, "latency", "20ms", "one-way latency: 20ms, uniform(10ms,50ms) or lognormal(30ms,0.5)")
	fs.DurationVar(&o.jitter, "jitter", 5*time.Millisecond, "extra uniform delay per message")
	fs.Float64Var(&o.loss, "loss", 0, "gossip loss probability (streams retransmit)")
	fs.BoolVar(&o.burst, "burst", false, "bursty (Gilbert–Elliott) loss on top of --loss")
	fs.Float64Var(&o.dup, "dup", 0, "duplication probability")
	fs.Float64Var(&o.reorder, "reorder", 0, "reordering probability")
	fs.Int64Var(&o.bandwidth, "bandwidth", 0, "uplink bytes per second per node (0 = unlimited)")
	fs.BoolVar(&o.regions, "regions", false, "place nodes in three regions (us, eu, ap) with a WAN latency matrix")
	fs.StringVar(&o.byzantine, "byzantine", "", "Byzantine nodes: NODE:behaviour+behaviour,... (behaviours: "+strings.Join(sim.BehaviourNames(), ", ")+", all)")
	fs.DurationVar(&o.partAt, "partition-at", 0, "split the network in halves at this time")
	fs.DurationVar(&o.partFor, "partition-for", 2*time.Second, "how long the --partition-at split lasts")
	fs.IntVar(&o.crash, "crash", 0, "crash this many nodes at 1s and restart them from their logs at 2s")
	fs.DurationVar(&o.syncEvery, "sync", 0, "replica reconciliation interval (0 = the replica default)")
	fs.DurationVar(&o.tick, "tick", 0, "node tick period (0 = 50ms)")
	fs.DurationVar(&o.settle, "settle", 0, "how long to wait for convergence after the last write and fault (0 = 60s)")
	fs.StringVar(&o.compare, "compare", "", "comma-separated topologies to run on the same workload; prints a table")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report(s) as JSON")
	fs.StringVar(&o.csvPath, "csv", "", "write a summary CSV to this file (and the inconsistency series to FILE.series.csv)")
	fs.StringVar(&o.svgDir, "svg", "", "write SVG charts to this directory")
	fs.StringVar(&o.scenario, "scenario", "", "run a scenario file (sim/testdata format) and print the transcript")
	fs.Int64Var(&o.chaosSeed, "chaos-seed", -1, "run the chaos configuration of this seed (as TestChaos does)")
	fs.BoolVar(&o.progress, "progress", false, "show a progress bar (default: on for 1000+ nodes)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	fs.BoolVar(&o.hugePages, "huge-pages", false, "ask Linux to back the heap with transparent huge pages: fewer TLB misses and page faults, the same results (default: on from 50,000 nodes, where it pays; see docs/benchmarks.md)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("sim: unexpected arguments %q", fs.Args())
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "huge-pages" })
	if !set {
		o.hugePages = o.nodes >= hugePagesFrom
	}
	if o.hugePages {
		defer thp.Start(20*time.Millisecond, uint64(max(o.nodes, 0))*heapPerNode)()
	}
	if o.scenario != "" {
		return sim.RunScenarioFile(o.scenario, stdout)
	}
	var cfgs []sim.Config
	if o.chaosSeed >= 0 {
		cfgs = append(cfgs, sim.ChaosConfig(uint64(o.chaosSeed)))
		fmt.Fprintln(stdout, cfgs[0].Describe())
	} else {
		base, err := o.config()
		if err != nil {
			return err
		}
		topos := []string{o.topology}
		if o.compare != "" {
			topos = strings.Split(o.compare, ",")
		}
		for _, t := range topos {
			c := base
			c.Topology = strings.TrimSpace(t)
			cfgs = append(cfgs, c)
		}
	}
	var reports []sim.Report
	for _, cfg := range cfgs {
		var runs []sim.Report
		for k := 0; k < max(1, o.seeds); k++ {
			c := cfg
			c.Seed = cfg.Seed + uint64(k)
			r, err := run(ctx, c, o)
			if err != nil {
				return err
			}
			runs = append(runs, r)
		}
		if len(runs) == 1 {
			reports = append(reports, runs[0])
		} else {
			reports = append(reports, sim.Aggregate(runs))
		}
	}
	switch {
	case o.jsonOut:
		if err := sim.WriteJSON(stdout, reports...); err != nil {
			return err
		}
	case len(reports) > 1:
		if err := sim.WriteTable(stdout, reports...); err != nil {
			return err
		}
	default:
		fmt.Fprint(stdout, reports[0].Summary())
	}
	if o.csvPath != "" {
		if err := writeFile(o.csvPath, func(w io.Writer) error { return sim.WriteCSV(w, reports...) }); err != nil {
			return err
		}
		series := strings.TrimSuffix(o.csvPath, ".csv") + ".series.csv"
		if err := writeFile(series, func(w io.Writer) error { return sim.WriteSeriesCSV(w, reports...) }); err != nil {
			return err
		}
		if !o.jsonOut {
			fmt.Fprintf(stdout, "wrote %s and %s\n", o.csvPath, series)
		}
	}
	if o.svgDir != "" {
		files, err := sim.WriteCharts(o.svgDir, reports...)
		if err != nil {
			return err
		}
		if !o.jsonOut {
			fmt.Fprintf(stdout, "wrote %s\n", strings.Join(files, ", "))
		}
	}
	for _, r := range reports {
		if !r.OK() {
			return fmt.Errorf("sim: %s: %d invariant violations", r.Topology, len(r.Violations))
		}
	}
	return nil
}

func topologyNames() []string {
	return []string{"star", "gossip", "mesh", "partition", "filtered", "ring", "tree", "regular", "smallworld", "gossipsub", "flood"}
}

func writeFile(path string, fn func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// config builds the simulation configuration from the flags.
func (o *options) config() (sim.Config, error) {
	cfg := sim.Config{Seed: o.seed, Nodes: o.nodes, Topology: o.topology, Settle: o.settle, TickEvery: o.tick}
	cfg.Params.Fanout, cfg.Params.MaxHops, cfg.Params.Degree = o.fanout, o.hops, o.degree
	lat, err := sim.ParseLatency(o.latency)
	if err != nil {
		return cfg, err
	}
	cfg.Link = sim.Link{Latency: lat, Jitter: o.jitter, Loss: o.loss, Dup: o.dup, Reorder: o.reorder, Bandwidth: o.bandwidth}
	if o.burst {
		cfg.Link.Burst = &sim.Burst{PBad: 0.05, PGood: 0.3, LossBad: 0.7}
	}
	if o.regions {
		cfg.Regions = sim.DefaultRegions()
	}
	cfg.Workload = sim.Workload{Rate: o.rate, Changes: o.changes, Writers: o.writers, Duration: o.duration, Ephemeral: o.ephemeral}
	if o.byzantine != "" {
		for _, spec := range strings.Split(o.byzantine, ",") {
			node, beh, ok := strings.Cut(spec, ":")
			if !ok {
				return cfg, fmt.Errorf("sim: bad --byzantine %q: want NODE:behaviour+behaviour", spec)
			}
			n, err := strconv.Atoi(node)
			if err != nil {
				return cfg, fmt.Errorf("sim: bad --byzantine node %q", node)
			}
			b, err := sim.ParseBehaviour(beh)
			if err != nil {
				return cfg, err
			}
			cfg.Byzantine = append(cfg.Byzantine, sim.Byzantine{Node: n, Behaviours: b})
		}
	}
	if o.partAt > 0 {
		half := make([]int, 0, o.nodes/2)
		for i := 0; i < o.nodes/2; i++ {
			half = append(half, i)
		}
		cfg.Faults = append(cfg.Faults, sim.Fault{Kind: sim.FaultPartition, At: o.partAt, For: o.partFor, Nodes: half})
	}
	if o.crash > 0 {
		var ns []int
		for i := 0; i < o.crash && i < o.nodes; i++ {
			ns = append(ns, o.nodes-1-i)
		}
		cfg.Faults = append(cfg.Faults, sim.Fault{Kind: sim.FaultCrash, At: time.Second, For: time.Second, Nodes: ns})
	}
	if o.syncEvery != 0 {
		d := o.syncEvery
		cfg.Replica = func(rc *replica.Config) { rc.SyncInterval = d }
	}
	if o.nodes >= 5000 {
		// Hashing every node's state every 100 ms would dominate.
		cfg.SampleEvery = time.Second
	}
	return cfg, nil
}

// run runs one configuration with an optional progress bar.
func run(ctx context.Context, cfg sim.Config, o options) (sim.Report, error) {
	show := !o.quiet && (o.progress || cfg.Nodes >= 1000)
	var bar *progressbar.ProgressBar
	if show {
		bar = progressbar.NewOptions64(1000,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription(fmt.Sprintf("%s, %d nodes", cfg.Topology, cfg.Nodes)),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	cfg.Cancelled = func() bool { return ctx.Err() != nil }
	if bar != nil {
		settling := false
		cfg.Progress = func(now, quiet time.Duration) {
			if quiet <= 0 {
				return
			}
			if now > quiet {
				// Writes and faults are over: the bar tracks settling.
				if !settling {
					settling = true
					bar.Describe(fmt.Sprintf("%s, %d nodes, converging", cfg.Topology, cfg.Nodes))
				}
				bar.ChangeMax64(int64(now/time.Millisecond) + 1)
			} else {
				bar.ChangeMax64(int64(quiet / time.Millisecond))
			}
			_ = bar.Set64(int64(now / time.Millisecond))
		}
	}
	r, err := sim.Run(cfg)
	if bar != nil {
		_ = bar.Finish()
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return r, err
}
