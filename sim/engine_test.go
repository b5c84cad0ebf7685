package sim

import (
	"crypto/ed25519"
	"encoding/json"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/internal/testhook"
	"github.com/convergenode/convergenode/replica"
)

func TestQueueOrder(t *testing.T) {
	var q queue
	seq := uint64(0)
	for _, at := range []int64{5, 3, 9, 3, 1, 5, 5} {
		seq++
		q.push(event{at: at, aux: int32(seq)})
	}
	var got [][2]int64
	for q.Len() > 0 {
		e := q.pop()
		got = append(got, [2]int64{e.at, int64(e.aux)})
	}
	want := [][2]int64{{1, 5}, {3, 2}, {3, 4}, {5, 1}, {5, 6}, {5, 7}, {9, 3}}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pop order %v, want %v", got, want)
		}
	}
}

func mustRun(t *testing.T, cfg Config) Report {
	t.Helper()
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("seed %d %s: violations: %v", cfg.Seed, cfg.Topology, r.Violations)
	}
	return r
}

// TestDeterminism: the same seed gives a byte-identical trace hash across
// runs and with GOMAXPROCS=1 and 2; another seed gives another trace.
func TestDeterminism(t *testing.T) {
	cfg := Config{
		Seed: 7, Nodes: 24, Topology: "gossip",
		Link:     Link{Latency: Latency{Kind: DistLogNormal, Base: 20 * time.Millisecond, Sigma: 0.5}, Jitter: 3 * time.Millisecond, Loss: 0.1, Dup: 0.05, Reorder: 0.1, Bandwidth: 1 << 20},
		Workload: Workload{Rate: 2, Ephemeral: 0.2},
		Faults: []Fault{
			{Kind: FaultPartition, At: 500 * time.Millisecond, For: time.Second, Nodes: []int{0, 1, 2, 3}},
			{Kind: FaultCrash, At: 700 * time.Millisecond, For: 800 * time.Millisecond, Nodes: []int{5}},
		},
		Byzantine: []Byzantine{{Node: 9, Behaviours: BehaviourEquivocate | BehaviourForge | BehaviourTamper}},
	}
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	a := mustRun(t, cfg)
	runtime.GOMAXPROCS(2)
	b := mustRun(t, cfg)
	c := mustRun(t, cfg)
	if a.TraceHash != b.TraceHash || b.TraceHash != c.TraceHash || a.Events != b.Events {
		t.Fatalf("trace %s/%d vs %s/%d vs %s", a.TraceHash, a.Events, b.TraceHash, b.Events, c.TraceHash)
	}
	cfg.Seed = 8
	d := mustRun(t, cfg)
	if d.TraceHash == a.TraceHash {
		t.Fatal("different seeds gave the same trace")
	}
	t.Logf("trace %s, %d events", a.TraceHash, a.Events)
}

// TestTopologiesConverge: every topology converges with full delivery.
func TestTopologiesConverge(t *testing.T) {
	for _, topo := range []string{"star", "gossip", "mesh", "ring", "tree", "regular", "smallworld", "gossipsub", "partition", "filtered"} {
		t.Run(topo, func(t *testing.T) {
			r := mustRun(t, Config{Seed: 1, Nodes: 20, Topology: topo, Workload: Workload{Rate: 2}})
			if !r.Converged || r.Delivery != 1 {
				t.Fatalf("converged=%v delivery=%v", r.Converged, r.Delivery)
			}
		})
	}
}

// TestMeshCostsMoreThanStar: on one workload, full-mesh flooding sends more
// messages than a relay star.
func TestMeshCostsMoreThanStar(t *testing.T) {
	wl := Workload{Changes: 40}
	star := mustRun(t, Config{Seed: 3, Nodes: 20, Topology: "star", Workload: wl})
	mesh := mustRun(t, Config{Seed: 3, Nodes: 20, Topology: "mesh", Workload: wl})
	if mesh.Messages <= star.Messages {
		t.Fatalf("mesh sent %d messages, star %d", mesh.Messages, star.Messages)
	}
	t.Logf("messages: star %d, mesh %d", star.Messages, mesh.Messages)
}

// TestGossipLoss: gossip plus reconciliation delivers every change at 20%
// and 50% loss.
func TestGossipLoss(t *testing.T) {
	for _, loss := range []float64{0.2, 0.5} {
		r := mustRun(t, Config{Seed: 4, Nodes: 30, Topology: "gossip", Link: Link{Latency: Latency{Base: 20 * time.Millisecond}, Loss: loss}, Workload: Workload{Rate: 2}})
		if !r.Converged || r.Delivery != 1 {
			t.Fatalf("loss %v: converged=%v delivery=%v", loss, r.Converged, r.Delivery)
		}
		t.Logf("loss %.0f%%: delivery %.3f, %d via reconciliation, converged %v after the last write", loss*100, r.Delivery, r.ViaSync, r.ConvergenceTime)
	}
}

// TestPartitionConverges: the seed's partition scenario (a star split in
// halves, then reconnected) converges after the reconnect.
func TestPartitionConverges(t *testing.T) {
	s, err := New(Config{Seed: 5, Nodes: 16, Topology: "partition", Workload: Workload{Rate: 2, Duration: 3 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	w := s.Scenario().Partition
	s.RunUntil(w.Heal - time.Millisecond)
	if pairs, _, _ := s.inconsistency(); pairs == 0 {
		t.Fatal("no divergence during the partition")
	}
	if !s.RunToConvergence() {
		t.Fatal("did not converge after the reconnect")
	}
	if r := s.Finish(true); !r.OK() {
		t.Fatal(r.Violations)
	}
}

// TestFilteredConverges: in the filtered star, the subscribers of each
// namespace agree on its presence entries, and nobody else holds them.
func TestFilteredConverges(t *testing.T) {
	s, err := New(Config{Seed: 6, Nodes: 13, Topology: "filtered", Workload: Workload{Rate: 4, Ephemeral: 1, Duration: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	s.RunFor(3 * time.Second)
	sc := s.Scenario()
	for _, ns := range []string{"a", "b", "c"} {
		var want [32]byte
		first := -1
		for i := 0; i < s.Len(); i++ {
			if !sc.Subscribed(i, ns) {
				continue
			}
			h := s.Node(i).PresenceHash(ns)
			if first < 0 {
				want, first = h, i
			} else if h != want {
				t.Fatalf("namespace %s: node %d and node %d disagree", ns, first, i)
			}
		}
		if first < 0 {
			t.Fatalf("no subscriber of %s", ns)
		}
		// The others hold none of it but their own writes: not from
		// gossip (the hub filters) and not from the presence snapshot a
		// new peer gets.
		for i := 0; i < s.Len(); i++ {
			if sc.Subscribed(i, ns) {
				continue
			}
			r := s.Node(i).(*ReplicaNode).R
			for _, e := range r.Presence().All(ns) {
				if e.Author != r.Author() {
					t.Fatalf("node %d does not follow %s but holds %s's entry %q", i, ns, e.Author.Short(), e.Key)
				}
			}
		}
	}
	if r := s.Finish(true); !r.OK() {
		t.Fatal(r.Violations)
	}
}

// refHeap is the binary heap ordered by (at, aux) that the radix queue
// must match exactly.
type refHeap []event

func (h *refHeap) push(e event) {
	*h = append(*h, e)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !less(&s[i], &s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *refHeap) pop() event {
	s := *h
	top, n := s[0], len(s)-1
	s[0] = s[n]
	s = s[:n]
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && less(&s[r], &s[l]) {
			m = r
		}
		if !less(&s[m], &s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

func less(a, b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.aux < b.aux
}

// The queue pops exactly what an (at, aux) heap pops (aux numbers the
// pushes), for any monotone schedule: many ties, times close together and
// far apart, and pushes after a peek that moved on to a later time
// (RunUntil peeks, stops, and the engine then schedules from now).
func TestQueueMatchesHeap(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		var q queue
		var h refHeap
		var seq int32
		now := int64(0)
		spans := []int64{1, 8, 1000, 1 << 20, 1 << 40, 3 << 30}
		for step := 0; step < 3000; step++ {
			if len(h) > 0 && rng.IntN(8) == 0 {
				if p := q.peek(); p.at != h[0].at || p.aux != h[0].aux {
					t.Fatalf("seed %d: peek (%d,%d), want (%d,%d)", seed, p.at, p.aux, h[0].at, h[0].aux)
				}
			}
			// Odd seeds push more than they pop, even seeds drain the
			// queue often (so peeks move on to later buckets).
			if len(h) == 0 || rng.IntN(3) > int(seed%2) {
				burst := rng.IntN(4)
				if step%500 == 0 && seed%4 < 2 {
					burst = 3072 // large buckets, emptied and refilled
				}
				for k := burst; k >= 0; k-- {
					seq++
					e := event{at: now + rng.Int64N(spans[rng.IntN(len(spans))]), aux: seq, node: seq}
					q.push(e)
					h.push(e)
				}
				continue
			}
			if q.Len() != len(h) {
				t.Fatalf("seed %d: Len %d, want %d", seed, q.Len(), len(h))
			}
			if p := q.peek(); p.at != h[0].at || p.aux != h[0].aux {
				t.Fatalf("seed %d: peek (%d,%d), want (%d,%d)", seed, p.at, p.aux, h[0].at, h[0].aux)
			}
			got, want := q.pop(), h.pop()
			if got.at != want.at || got.aux != want.aux || got.node != want.node {
				t.Fatalf("seed %d step %d: pop (%d,%d), want (%d,%d)", seed, step, got.at, got.aux, want.at, want.aux)
			}
			now = got.at
		}
		for len(h) > 0 {
			got, want := q.pop(), h.pop()
			if got.at != want.at || got.aux != want.aux {
				t.Fatalf("seed %d drain: pop (%d,%d), want (%d,%d)", seed, got.at, got.aux, want.at, want.aux)
			}
		}
		if q.Len() != 0 {
			t.Fatalf("seed %d: %d left", seed, q.Len())
		}
	}
}

// TestQuietTicksChangeNothing: skipping the ticks a replica says would find
// nothing to do (the replica's quiet-tick fast path, and the simulator not
// scheduling those ticks at all) changes nothing but the number of events:
// the trace (every message, write and fault, at the same virtual time, in
// the same order) and the whole report are those of running every tick in
// full, on runs with faults, clock skew, restarts, presence, Byzantine
// peers and long idle stretches (the chaos mixes).
func TestQuietTicksChangeNothing(t *testing.T) {
	defer testhook.FullTicks.Store(false)
	cfgs := []Config{{Seed: 3, Nodes: 40, Topology: "gossip", Workload: Workload{Changes: 30, Ephemeral: 0.3}}}
	for seed := uint64(1); seed <= 12; seed++ {
		cfgs = append(cfgs, ChaosConfig(seed))
	}
	// Long idle stretches (a few writes over 40 s, periodic syncs between
	// them, presence entries expiring), on skewed clocks.
	cfgs = append(cfgs, Config{Seed: 5, Nodes: 12, Topology: "ring",
		Workload: Workload{Changes: 6, Duration: 40 * time.Second, Ephemeral: 0.5},
		Faults: []Fault{
			{Kind: FaultSkew, At: time.Second, Nodes: []int{1, 2, 3}, Skew: 3 * time.Second},
			{Kind: FaultSkew, At: time.Second, Nodes: []int{4, 5}, Skew: -3 * time.Second},
			{Kind: FaultSkew, At: 17300 * time.Millisecond, Nodes: []int{6, 7, 8}, Skew: 9 * time.Second},
			{Kind: FaultSkew, At: 21700 * time.Millisecond, Nodes: []int{0, 9}, Skew: 7 * time.Second},
			{Kind: FaultSkew, At: 29100 * time.Millisecond, Nodes: []int{10, 11}, Skew: 11 * time.Second},
			{Kind: FaultCrash, At: 24100 * time.Millisecond, For: 1530 * time.Millisecond, Nodes: []int{9}},
			{Kind: FaultCrash, At: 31700 * time.Millisecond, For: 2270 * time.Millisecond, Nodes: []int{2, 5}},
		}})
	for _, cfg := range cfgs {
		testhook.FullTicks.Store(false)
		a := mustRun(t, cfg)
		testhook.FullTicks.Store(true)
		b := mustRun(t, cfg)
		ja, jb := reportSansEvents(t, a), reportSansEvents(t, b)
		if ja != jb {
			t.Errorf("%s: quiet ticks (%d events) and full ticks (%d events) differ:\n%s\n---\n%s",
				cfg.Describe(), a.Events, b.Events, ja, jb)
		}
		if a.Events > b.Events+b.Events/10 {
			t.Errorf("%s: %d events with quiet ticks, %d with full ticks", cfg.Describe(), a.Events, b.Events)
		}
	}
}

// reportSansEvents returns r as JSON without the event count.
func reportSansEvents(t *testing.T, r Report) string {
	t.Helper()
	r.Events = 0
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lossyNode is a node that lost one change: Has denies it and Heads show
// another state, as a replica that dropped a change after applying it
// would.
type lossyNode struct {
	Node
	lost  crdt.ID
	heads []crdt.ID
}

func (n lossyNode) Has(id crdt.ID) bool { return id != n.lost && n.Node.Has(id) }
func (n lossyNode) AppendHeads(dst []crdt.ID) []crdt.ID {
	return append(dst, n.heads...)
}

// TestNoLossCheck: the end-of-run check of lost writes names every honest
// node that lacks an honest change, each once, also when it asks only one
// node per group of equal heads: two nodes that lost the same change (the
// same heads) and a third that lost another are all reported.
func TestNoLossCheck(t *testing.T) {
	s, err := New(Config{Seed: 3, Nodes: 12, Topology: "gossip", Workload: Workload{Rate: 1, Duration: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	s.RunToConvergence()
	var ids []crdt.ID
	for id, ci := range s.met.changes {
		if ci.honest {
			ids = append(ids, id)
		}
	}
	if len(ids) < 2 {
		t.Fatalf("%d honest changes, want at least 2", len(ids))
	}
	crdt.SortIDs(ids)
	for _, x := range []struct {
		node int
		lost crdt.ID
	}{{2, ids[0]}, {7, ids[0]}, {5, ids[1]}} {
		p := s.peers[x.node]
		s.setNode(p, lossyNode{Node: p.node, lost: x.lost, heads: []crdt.ID{x.lost}})
	}
	r := s.Finish(false)
	var got []string
	for _, v := range r.Violations {
		if v.Invariant == InvNoLoss {
			got = append(got, v.Detail)
		}
	}
	want := []string{
		"node 2 lacks 1 honest changes (first " + ids[0].Short() + ")",
		"node 5 lacks 1 honest changes (first " + ids[1].Short() + ")",
		"node 7 lacks 1 honest changes (first " + ids[0].Short() + ")",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("no-loss violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// wrongNode is a node that misreports one aspect of its state.
type wrongNode struct {
	Node
	hash      *[32]byte // StateHash, if set
	footprint int       // Footprint, if above 0
	extra     int       // added to Len
}

func (n wrongNode) StateHash() [32]byte {
	if n.hash != nil {
		return *n.hash
	}
	return n.Node.StateHash()
}

func (n wrongNode) Footprint() int {
	if n.footprint > 0 {
		return n.footprint
	}
	return n.Node.Footprint()
}

func (n wrongNode) Len() int { return n.Node.Len() + n.extra }

// TestInvariantsFire breaks each invariant on purpose, in a converged run,
// and checks that the checker reports exactly the broken one, naming the
// node: a chaos run with no violations means something only if the
// checkers can see one.
func TestInvariantsFire(t *testing.T) {
	converged := func(t *testing.T) *Sim {
		s, err := New(Config{Seed: 5, Nodes: 12, Topology: "gossip", Workload: Workload{Rate: 1, Duration: time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		s.RunToConvergence()
		return s
	}
	wrap := func(s *Sim, i int, f func(Node) Node) {
		p := s.peers[i]
		s.setNode(p, f(p.node))
		p.dirty, p.hashDirty = true, true
	}
	anyID := func(s *Sim) crdt.ID {
		var ids []crdt.ID
		for id := range s.met.changes {
			ids = append(ids, id)
		}
		return crdt.SortIDs(ids)[0]
	}
	for _, tc := range []struct {
		name    string
		inv     string
		want    string // a substring of the detail
		breakIt func(s *Sim)
		final   bool // whether checkFinal is told the run did not converge
	}{
		{"same heads, other state", InvSameState, "nodes 0 and 3 have the same heads", func(s *Sim) {
			wrap(s, 3, func(n Node) Node { return wrongNode{Node: n, hash: &[32]byte{1}} })
		}, false},
		{"buffer over the limit", InvMemory, "node 6 holds 65537 buffered items", func(s *Sim) {
			wrap(s, 6, func(n Node) Node { return wrongNode{Node: n, footprint: 1<<16 + 1} })
		}, false},
		{"more changes than made", InvMemory, "node 8 holds", func(s *Sim) {
			wrap(s, 8, func(n Node) Node { return wrongNode{Node: n, extra: 1} })
		}, false},
		{"no convergence", InvConvergence, "inconsistent pairs", func(s *Sim) {}, true},
		{"invalid change applied", InvValidOnly, "node 2 applied invalid change", func(s *Sim) {
			id := anyID(s)
			s.inv.invalid[id] = "forged"
			s.inv.onApplied(s.peers[2], Applied{ID: id})
		}, false},
		{"proof against an honest author, known to one node", InvEvidence, "node 1 has no proof against equivocator", func(s *Sim) {
			s.inv.onAlert(s.peers[0], Alert{Kind: AlertEquivocation, Author: crdt.Author(s.peers[4].key.Public().(ed25519.PublicKey))})
		}, false},
		{"replay differs from the live node", InvRestart, "node 0: replay of its log", func(s *Sim) {
			factory := s.cfg.Factory
			s.cfg.Factory = func(cfg NodeConfig) (Node, error) {
				n, err := factory(cfg)
				if err != nil || cfg.Index != 0 {
					return n, err
				}
				return wrongNode{Node: n, hash: &[32]byte{2}}, nil
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := converged(t)
			if len(s.inv.violations) != 0 {
				t.Fatalf("violations before breaking anything: %v", s.inv.violations)
			}
			tc.breakIt(s)
			s.inv.checkFinal(!tc.final, true)
			var hit bool
			for _, v := range s.inv.violations {
				if v.Invariant != tc.inv {
					t.Errorf("unexpected violation %v", v)
				}
				hit = hit || strings.Contains(v.Detail, tc.want)
			}
			if !hit {
				t.Fatalf("no %s violation with %q; got %v", tc.inv, tc.want, s.inv.violations)
			}
		})
	}
}

// TestSizeHintsChangeNothing runs chaos mixes (restarts, floods, forks)
// and a rate workload with the replicas' size hints (NodeConfig.Expect)
// and without, and requires the same report, trace included.
func TestSizeHintsChangeNothing(t *testing.T) {
	cfgs := []Config{{Seed: 2, Nodes: 30, Topology: "gossip", Workload: Workload{Rate: 2, Duration: 3 * time.Second, Rows: 5}}}
	for seed := uint64(20); seed <= 27; seed++ {
		cfgs = append(cfgs, ChaosConfig(seed))
	}
	for _, cfg := range cfgs {
		if e := expectOf(func() Config { c := cfg; _ = c.validate(); return c }()); e.Changes == 0 || e.Rows == 0 {
			t.Fatalf("%s: no hint to test: %+v", cfg.Describe(), e)
		}
		a := mustRun(t, cfg)
		tune := cfg.Replica
		cfg.Factory = ReplicaFactory(func(rc *replica.Config) {
			if tune != nil {
				tune(rc)
			}
			rc.ExpectChanges, rc.ExpectAuthors, rc.ExpectRows = 0, 0, 0
		})
		b := mustRun(t, cfg)
		if ja, jb := reportSansEvents(t, a), reportSansEvents(t, b); ja != jb || a.Events != b.Events {
			t.Errorf("%s: with and without size hints differ:\n%s\n---\n%s", cfg.Describe(), ja, jb)
		}
	}
}

// TestRunUntilThenSchedule: after RunUntil, which peeks at the next event
// and stops before it, something scheduled from now (what a write or a
// fault made between runs sends) fires when it is due, not at that next
// event (the queue once clamped such pushes to the time its peek reached).
func TestRunUntilThenSchedule(t *testing.T) {
	s, err := New(Config{Seed: 1, Nodes: 2, Topology: "mesh"})
	if err != nil {
		t.Fatal(err)
	}
	// Stop where the next event is at least 5ms away.
	end := int64(time.Second)
	for s.RunUntil(time.Duration(end)); s.q.peek().at < end+int64(5*time.Millisecond); s.RunUntil(time.Duration(end)) {
		end = s.q.peek().at
	}
	fired := int64(-1)
	s.after(time.Millisecond, func() { fired = s.now })
	s.RunUntil(time.Duration(end) + 2*time.Millisecond)
	if want := end + int64(time.Millisecond); fired != want {
		t.Fatalf("fired at %v, want %v", time.Duration(fired), time.Duration(want))
	}
}

// TestFinishKeepsReportLatencies: Finish sorts the delivery latencies in
// place and shares them with its report; deliveries after it (here: the
// second half of the workload) must leave that report as it was, and a
// later Finish counts them too.
func TestFinishKeepsReportLatencies(t *testing.T) {
	s, err := New(Config{Seed: 3, Nodes: 24, Topology: "gossip", Workload: Workload{Changes: 12}})
	if err != nil {
		t.Fatal(err)
	}
	s.RunFor(time.Second) // the writes go on for 2 s
	r1 := s.Finish(false)
	if len(r1.Latencies) == 0 {
		t.Fatal("no latencies")
	}
	want := append([]time.Duration(nil), r1.Latencies...)
	s.RunToConvergence()
	r2 := s.Finish(false)
	for i := range want {
		if r1.Latencies[i] != want[i] {
			t.Fatalf("latency %d of the first report changed after it: %v, was %v", i, r1.Latencies[i], want[i])
		}
	}
	if len(r2.Latencies) <= len(want) {
		t.Fatalf("the second report has %d latencies, want more than %d", len(r2.Latencies), len(want))
	}
	for i := 1; i < len(r2.Latencies); i++ {
		if r2.Latencies[i] < r2.Latencies[i-1] {
			t.Fatal("the second report's latencies are not sorted")
		}
	}
}

// TestPrefetchChangesNothing: the engine's prefetch (loading the next
// events' node state ahead) only warms the caches: with and without it,
// the report, trace included, is the same, on the chaos mixes (Byzantine
// nodes whose gossip the prefetch parses) and a plain gossip run.
func TestPrefetchChangesNothing(t *testing.T) {
	defer func() { prefetchOff = false }()
	cfgs := []Config{{Seed: 4, Nodes: 200, Topology: "gossip", Workload: Workload{Changes: 60, Ephemeral: 0.2}}}
	for seed := uint64(30); seed <= 37; seed++ {
		cfgs = append(cfgs, ChaosConfig(seed))
	}
	for _, cfg := range cfgs {
		prefetchOff = false
		a := mustRun(t, cfg)
		prefetchOff = true
		b := mustRun(t, cfg)
		if ja, jb := reportSansEvents(t, a), reportSansEvents(t, b); ja != jb || a.Events != b.Events {
			t.Errorf("%s: with and without prefetch differ:\n%s\n---\n%s", cfg.Describe(), ja, jb)
		}
	}
}

// TestQueueAhead: ahead(k) is the event the k-th next pop returns, for
// every k the window holds, through pushes that land among the window's
// events (ties included) and pushes behind it.
func TestQueueAhead(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		var q queue
		var h refHeap
		var seq int32
		now := int64(0)
		for step := 0; step < 2000; step++ {
			if len(h) == 0 || rng.IntN(2) == 0 {
				seq++
				// Small spans: most pushes fall among the window's events.
				e := event{at: now + rng.Int64N([]int64{1, 4, 50, 1 << 20}[rng.IntN(4)]), aux: seq}
				q.push(e)
				h.push(e)
				continue
			}
			q.peek() // fills the window
			var next refHeap
			next = append(next, h...)
			for k := 0; ; k++ {
				a := q.ahead(k)
				if a == nil {
					if k < min(winLen, len(h)) {
						t.Fatalf("seed %d: ahead(%d) nil with %d queued", seed, k, len(h))
					}
					break
				}
				want := next.pop()
				if a.at != want.at || a.aux != want.aux {
					t.Fatalf("seed %d step %d: ahead(%d) = (%d,%d), want (%d,%d)", seed, step, k, a.at, a.aux, want.at, want.aux)
				}
			}
			now = q.pop().at
			h.pop()
		}
	}
}
