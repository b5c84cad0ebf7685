package replica_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/replica"
	"github.com/convergenode/convergenode/replica/replicatest"
)

var benchEpoch = replicatest.Epoch

func newBenchReplica(tb testing.TB, i int, seed uint64) *replica.Replica {
	tb.Helper()
	c := replica.DefaultConfig()
	c.Doc = "bench"
	c.Key = replicatest.KeyFor(i)
	c.Rand = rand.New(rand.NewPCG(seed, uint64(i)))
	// The wire has no clock: lift the serve budget so streams never wait
	// for a Tick (the benchmarks measure protocol and CPU cost).
	c.ServeRate, c.ServeBurst = 1<<40, 1<<40
	if fp := os.Getenv("REPLICA_BENCH_FP"); fp != "" {
		c.BloomFPRate, _ = strconv.ParseFloat(fp, 64)
	}
	r, err := replica.New(c)
	if err != nil {
		tb.Fatal(err)
	}
	r.Tick(benchEpoch)
	return r
}

// wire is a direct, lossless, in-order connection between two replicas,
// delivered in waves: every message sent in wave k is delivered in wave
// k+1 (one wave = one one-way network latency).
type wire struct {
	r        [2]*replica.Replica
	ids      [2]replica.PeerID
	inflight [][3]any // to index, from id, data
	msgs     int
	bytes    int
	waves    int
}

func newWire(a, b *replica.Replica) *wire {
	return &wire{r: [2]*replica.Replica{a, b}, ids: [2]replica.PeerID{"a", "b"}}
}

func (w *wire) drain(i int) {
	r := w.r[i]
	for r.HasReady() {
		rd := r.Ready()
		for _, d := range rd.Send {
			w.msgs++
			w.bytes += len(d.Data)
			w.inflight = append(w.inflight, [3]any{1 - i, w.ids[i], d.Data})
		}
		// Broadcasts are not part of reconciliation; the benchmarks
		// measure the sync stream only.
		r.Advance()
	}
}

// run delivers waves until nothing is in flight or done() holds after a
// wave. It returns the number of waves.
func (w *wire) run(done func() bool) int {
	w.drain(0)
	w.drain(1)
	waves := 0
	for len(w.inflight) > 0 {
		batch := w.inflight
		w.inflight = nil
		waves++
		for _, m := range batch {
			to := m[0].(int)
			_ = w.r[to].Step(m[1].(replica.PeerID), m[2].([]byte))
			w.drain(to)
		}
		if done != nil && done() {
			break
		}
	}
	w.waves += waves
	return waves
}

func sameHeads(a, b *replica.Replica) bool { return a.Doc().Heads().Equal(b.Doc().Heads()) }

// history100k is 100,000 ops by 4 authors, one op per change, merged into
// one replica's durable log; built once.
var history100k = sync.OnceValue(func() [][]byte {
	var all [][]byte
	for a := 0; a < 4; a++ {
		r := newBenchReplica(nil2tb{}, a, 1)
		for k := 0; k < 25_000; k++ {
			if err := r.Propose(crdt.Insert("t", "r"+strconv.Itoa(k%1000), map[string]crdt.Value{
				"author": crdt.Int(int64(a)), "n": crdt.Int(int64(k))})); err != nil {
				panic(err)
			}
			r.Tick(benchEpoch)
		}
		all = append(all, r.Ready().Persist...)
	}
	return all
})

// nil2tb lets the once-built fixture use newBenchReplica outside a test.
type nil2tb struct{ testing.TB }

func (nil2tb) Helper()           {}
func (nil2tb) Fatal(args ...any) { panic(fmt.Sprint(args...)) }

// BenchmarkCatchUp100k: an empty replica catches up on 100,000 ops (4
// authors, one op per change) from one that holds them, over a direct
// in-memory stream. Reports wall time, messages and bytes on the wire per
// op; the time includes verifying every signature.
func BenchmarkCatchUp100k(b *testing.B) {
	hist := history100k()
	src := newBenchReplica(b, 9, 1)
	if err := src.Restore(hist); err != nil {
		b.Fatal(err)
	}
	const ops = 100_000
	if src.Doc().Graph().Len() != ops {
		b.Fatalf("source holds %d changes", src.Doc().Graph().Len())
	}
	// The floor: decoding and verifying every signature once, timed in the
	// same process (and under the same load) as the catch-up.
	t0 := time.Now()
	for _, raw := range hist {
		env, err := bft.DecodeEnvelope(raw)
		if err != nil || !bft.Verify(env.Change.Author, env.ID, &env.Sig) {
			b.Fatal("bad fixture envelope")
		}
	}
	verifyMs := float64(time.Since(t0).Milliseconds())
	b.ResetTimer()
	var msgs, bytes, waves int
	for range b.N {
		dst := newBenchReplica(b, 10, 2)
		w := newWire(src, dst)
		// Only the newcomer opens the session (as on a join).
		dst.PeerUp("a")
		w.run(func() bool { return dst.Doc().Graph().Len() == ops })
		src.PeerDown("b")
		if dst.Doc().Graph().Len() != ops || dst.Doc().StateHash() != src.Doc().StateHash() {
			b.Fatalf("catch-up incomplete: %d changes", dst.Doc().Graph().Len())
		}
		msgs, bytes, waves = w.msgs, w.bytes, w.waves
	}
	b.ReportMetric(float64(msgs), "msgs")
	b.ReportMetric(float64(bytes)/ops, "wire-B/op")
	b.ReportMetric(float64(waves), "waves")
	perCatchup := float64(b.Elapsed().Milliseconds()) / float64(b.N)
	b.ReportMetric(perCatchup, "ms/catchup")
	b.ReportMetric(verifyMs, "verify-only-ms")
	b.ReportMetric(perCatchup/verifyMs, "x-verify")
}

// BenchmarkReconcileRoundTrips: two replicas share a history; then each
// writes 0.5% new changes that the other misses (1% of all changes
// differ), and one reconciliation runs. Reports the round trips (the
// hello exchange plus the needs rounds of either side; target <= 1.1 on
// average), the
// one-way waves until both hold everything, and wire bytes per session.
// Sub-benchmarks: after a previous sync (Bloom filter of the changes since
// it) and at first contact (filter of the whole history).
func BenchmarkReconcileRoundTrips(b *testing.B) {
	for _, first := range []bool{false, true} {
		name := "after-sync"
		if first {
			name = "first-contact"
		}
		b.Run(name, func(b *testing.B) { benchRoundTrips(b, first) })
	}
}

func benchRoundTrips(b *testing.B, firstContact bool) {
	const base = 10_000
	a, c := newBenchReplica(b, 0, 3), newBenchReplica(b, 1, 4)
	hist := history100k()[:base]
	if err := a.Restore(hist); err != nil {
		b.Fatal(err)
	}
	if err := c.Restore(hist); err != nil {
		b.Fatal(err)
	}
	w := newWire(a, c)
	if !firstContact {
		a.PeerUp("b")
		c.PeerUp("a")
		w.run(nil)
	}
	b.ResetTimer()
	var rounds, sessions, waves, bytes int
	for i := range b.N {
		per := a.Doc().Graph().Len() / 200
		for _, r := range []*replica.Replica{a, c} {
			for k := 0; k < per; k++ {
				_ = r.Propose(crdt.Update("t", "x"+strconv.Itoa(k), "v", crdt.Int(int64(i))))
				r.Tick(benchEpoch.Add(time.Duration(i) * time.Second))
			}
			r.Ready() // drop the broadcasts: the other side misses them
			r.Advance()
		}
		if firstContact {
			b.StopTimer()
			// Forget the last sync: a fresh pair would have none.
			a, c = freshPeerState(b, a, c)
			w = newWire(a, c)
			b.StartTimer()
		}
		before, beforeC := a.Stats(), c.Stats()
		m0, b0 := w.msgs, w.bytes
		a.Tick(benchEpoch.Add(time.Duration(i)*time.Second + time.Millisecond))
		a.PeerUp("b")
		waves += w.run(func() bool { return sameHeads(a, c) })
		w.run(nil) // the trailing acks
		if !sameHeads(a, c) {
			b.Fatal("not reconciled")
		}
		st := a.Stats()
		// One round trip for the hello exchange, one per needs round of
		// either side.
		rounds += 1 + int(st.NeedsRounds-before.NeedsRounds) + int(c.Stats().NeedsRounds-beforeC.NeedsRounds)
		sessions += int(st.SessionsDone - before.SessionsDone)
		bytes += w.bytes - b0
		_ = m0
		a.PeerDown("b")
		c.PeerDown("a")
	}
	if sessions == 0 {
		b.Fatal("no session completed")
	}
	b.ReportMetric(float64(rounds)/float64(b.N), "roundtrips/sync")
	b.ReportMetric(float64(waves)/float64(b.N), "waves/sync")
	b.ReportMetric(float64(bytes)/float64(b.N), "wire-B/sync")
}

// freshPeerState rebuilds a and c from their logs so that neither
// remembers a previous sync (first contact).
func freshPeerState(b *testing.B, a, c *replica.Replica) (*replica.Replica, *replica.Replica) {
	out := make([]*replica.Replica, 2)
	for k, r := range []*replica.Replica{a, c} {
		var log [][]byte
		for _, id := range r.Doc().Graph().Topo() {
			env, _ := r.Envelope(id)
			log = append(log, env)
		}
		n := newBenchReplica(b, k, uint64(5+k))
		if err := n.Restore(log); err != nil {
			b.Fatal(err)
		}
		out[k] = n
	}
	return out[0], out[1]
}

// BenchmarkGroupCommit: local writes on one replica with no peers, one
// Propose per op, a Tick every 1000 ops (so 1000 ops make one signed
// change), the Ready drained as a driver would (without disk). Reports
// ops/s on one core; target >= 200,000.
func BenchmarkGroupCommit(b *testing.B) {
	r := newBenchReplica(b, 0, 1)
	ops := make([]crdt.Op, 1000)
	for k := range ops {
		ops[k] = crdt.Update("t", "r"+strconv.Itoa(k%100), "c"+strconv.Itoa(k%7), crdt.Int(int64(k)))
	}
	b.ResetTimer()
	now := benchEpoch
	for i := range b.N {
		if err := r.Propose(ops[i%len(ops)]); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			now = now.Add(time.Millisecond)
			r.Tick(now)
			r.Ready()
			r.Advance()
		}
	}
	r.Tick(now.Add(time.Millisecond))
	r.Ready()
	r.Advance()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkRestore100k: replaying a 100,000-change durable log (shuffled)
// into a new replica, verifying every signature (default) or trusting the
// log (Config.TrustLog).
func BenchmarkRestore100k(b *testing.B) {
	hist := slices.Clone(history100k())
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(hist), func(i, j int) { hist[i], hist[j] = hist[j], hist[i] })
	for _, trust := range []bool{false, true} {
		b.Run(fmt.Sprintf("trust=%v", trust), func(b *testing.B) {
			for range b.N {
				c := replica.DefaultConfig()
				c.Doc, c.Key, c.TrustLog = "bench", replicatest.KeyFor(11), trust
				r, err := replica.New(c)
				if err != nil {
					b.Fatal(err)
				}
				if err := r.Restore(hist); err != nil {
					b.Fatal(err)
				}
				if r.Doc().Graph().Len() != len(hist) {
					b.Fatal("incomplete restore")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/restore")
		})
	}
}
