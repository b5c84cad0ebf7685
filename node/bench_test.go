package node

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/internal/cputime"
	"github.com/convergenode/convergenode/replica"
)

// The node benchmarks run real libp2p hosts on loopback (TCP and QUIC,
// Noise/TLS, gossipsub, sync streams) with Pebble stores in a temporary
// directory. Run them with
//
//	go test -run '^$' -bench BenchmarkNode -benchtime 1x ./node
//
// Results and the machine they ran on are in docs/benchmarks.md.

// rowCounter counts rows inserted into a document (across all changes).
func rowCounter(d *Doc) *atomic.Int64 {
	var n atomic.Int64
	d.Subscribe(func(ev crdt.ChangeEvent) {
		for _, r := range ev.Rows {
			if r.Kind == crdt.RowInserted {
				n.Add(1)
			}
		}
	})
	return &n
}

func benchNodes(b *testing.B, n int) []*Node {
	dir := b.TempDir()
	return testNodes(b, n, "bench", func(i int, c *Config) {
		if !benchMem {
			c.DataDir = filepath.Join(dir, fmt.Sprint(i))
		}
		listenOn(c, benchTransport)
	})
}

// listenOn restricts c to loopback on one transport ("tcp" or "quic");
// "" keeps both, as a node listens.
func listenOn(c *Config, transport string) {
	switch transport {
	case "tcp":
		c.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	case "quic":
		c.Listen = []string{"/ip4/127.0.0.1/udp/0/quic-v1"}
	}
}

func waitMesh(b *testing.B, nodes []*Node) {
	waitFor(b, 20*time.Second, "gossip meshes", func() bool {
		for _, n := range nodes {
			if len(n.ps.ListPeers(topicName("bench", topicChanges))) < len(nodes)-1 {
				return false
			}
		}
		return true
	})
}

// benchWriters is the number of concurrent writers per node in
// BenchmarkNodeConverge8x12500 (-writers): each Insert waits for its own
// ack, so more writers means bigger group commits (fewer signatures).
var benchWriters = 128

// benchRate is the total write rate of BenchmarkNodeLatency10x1000 (-rate).
var benchRate = 1000

// benchMem runs the multi-node benchmarks on in-memory stores (-mem).
var benchMem bool

// benchTransport restricts the multi-node benchmarks to one transport
// (-transport tcp|quic); default both, as a node listens.
var benchTransport string

func init() {
	flag.IntVar(&benchRate, "rate", benchRate, "changes per second in all in BenchmarkNodeLatency10x1000")
	flag.IntVar(&meshD, "mesh-d", meshD, "gossipsub mesh degree D (0: Config.GossipD)")
	flag.BoolVar(&gateOnAll, "gate-all", gateOnAll, "group commit waits for every persister batch")
	flag.BoolVar(&benchMem, "mem", false, "in-memory stores in the multi-node benchmarks")
	flag.StringVar(&benchTransport, "transport", "", "tcp or quic: listen on one transport only in the multi-node benchmarks (default both)")
	flag.IntVar(&benchWriters, "writers", benchWriters, "concurrent writers per node in BenchmarkNodeConverge8x12500")
}

// BenchmarkNodeConverge8x12500: 8 nodes each write 12,500 single-op
// inserts (100,000 ops in all) from benchWriters concurrent writers per
// node; the time runs until every node has applied all 100,000 rows.
func BenchmarkNodeConverge8x12500(b *testing.B) {
	const nodesN, perNode = 8, 12500
	writers := benchWriters
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		nodes := benchNodes(b, nodesN)
		waitMesh(b, nodes)
		docs := make([]*Doc, nodesN)
		counts := make([]*atomic.Int64, nodesN)
		for j, n := range nodes {
			docs[j] = mustDoc(b, n, "bench")
			counts[j] = rowCounter(docs[j])
		}
		b.StartTimer()
		t0 := time.Now()
		var wg sync.WaitGroup
		for j, d := range docs {
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := w; k < perNode; k += writers {
						if err := d.Insert(context.Background(), "t", fmt.Sprintf("n%d-%d", j, k), Cols{"v": k}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
		}
		wg.Wait()
		written := time.Since(t0)
		waitFor(b, 120*time.Second, "all nodes have all ops", func() bool {
			for _, c := range counts {
				if c.Load() < nodesN*perNode {
					return false
				}
			}
			return true
		})
		total := time.Since(t0)
		b.StopTimer()
		b.ReportMetric(total.Seconds(), "s-to-converge")
		b.ReportMetric(written.Seconds(), "s-writes-acked")
		b.ReportMetric(float64(nodesN*perNode)/total.Seconds(), "ops/s")
		b.ReportMetric(float64(docs[0].Len()), "changes")
		for _, n := range nodes {
			n.Close()
		}
	}
}

// BenchmarkNodeConverge8x12500Tx100: the same 100,000 ops, each node
// writing its 12,500 in transactions of 100 ops (125 changes per node, 4
// concurrent writers): the bulk-load path.
func BenchmarkNodeConverge8x12500Tx100(b *testing.B) {
	const nodesN, perNode, perTx, writers = 8, 12500, 100, 4
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		nodes := benchNodes(b, nodesN)
		waitMesh(b, nodes)
		docs := make([]*Doc, nodesN)
		counts := make([]*atomic.Int64, nodesN)
		for j, n := range nodes {
			docs[j] = mustDoc(b, n, "bench")
			counts[j] = rowCounter(docs[j])
		}
		b.StartTimer()
		t0 := time.Now()
		var wg sync.WaitGroup
		for j, d := range docs {
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := w * perTx; k < perNode; k += writers * perTx {
						err := d.Change(context.Background(), func(tx *Tx) error {
							for r := k; r < min(perNode, k+perTx); r++ {
								tx.Insert("t", fmt.Sprintf("n%d-%d", j, r), Cols{"v": r})
							}
							return nil
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
		}
		wg.Wait()
		waitFor(b, 120*time.Second, "all nodes have all ops", func() bool {
			for _, c := range counts {
				if c.Load() < nodesN*perNode {
					return false
				}
			}
			return true
		})
		total := time.Since(t0)
		b.StopTimer()
		b.ReportMetric(total.Seconds(), "s-to-converge")
		b.ReportMetric(float64(nodesN*perNode)/total.Seconds(), "ops/s")
		b.ReportMetric(float64(docs[0].Len()), "changes")
		for _, n := range nodes {
			n.Close()
		}
	}
}

// BenchmarkNodeCatchUp100k: one node holds 100,000 ops (in 1,000-op
// transactions: 100 changes); a fresh node connects and the time runs
// until it has applied all 100,000 rows.
func BenchmarkNodeCatchUp100k(b *testing.B) {
	benchCatchUp(b, 100_000, 1000)
}

// BenchmarkNodeCatchUp100kSmallChanges is the same with 10-op changes
// (10,000 changes: signatures and DAG size dominate).
func BenchmarkNodeCatchUp100kSmallChanges(b *testing.B) {
	benchCatchUp(b, 100_000, 10)
}

func benchCatchUp(b *testing.B, ops, perChange int) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		c := DefaultTestConfig()
		c.Docs, c.DataDir = []string{"bench"}, filepath.Join(dir, "src")
		src, err := New(context.Background(), c)
		if err != nil {
			b.Fatal(err)
		}
		sd := mustDoc(b, src, "bench")
		fillDoc(b, sd, ops, perChange)
		c2 := DefaultTestConfig()
		c2.Docs, c2.DataDir = []string{"bench"}, filepath.Join(dir, "fresh")
		fresh, err := New(context.Background(), c2)
		if err != nil {
			b.Fatal(err)
		}
		fd := mustDoc(b, fresh, "bench")
		count := rowCounter(fd)
		b.StartTimer()
		t0 := time.Now()
		connect(b, fresh, src)
		waitFor(b, 120*time.Second, "catch-up", func() bool { return count.Load() >= int64(ops) })
		el := time.Since(t0)
		b.StopTimer()
		b.ReportMetric(el.Seconds(), "s-to-catch-up")
		b.ReportMetric(float64(ops)/el.Seconds(), "ops/s")
		b.ReportMetric(float64(fd.Len()), "changes")
		fresh.Close()
		src.Close()
	}
}

// fillDoc writes ops rows in transactions of perChange ops.
func fillDoc(b testing.TB, d *Doc, ops, perChange int) {
	for k := 0; k < ops; k += perChange {
		err := d.Change(context.Background(), func(tx *Tx) error {
			for j := k; j < min(ops, k+perChange); j++ {
				tx.Insert("t", fmt.Sprintf("r%07d", j), Cols{"v": j, "s": "some text in a row"})
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// percentileMs is the p-th percentile of want latencies of which sorted
// holds those that arrived: the missing ones count as slower than any
// (+Inf when the percentile falls among them).
func percentileMs(sorted []time.Duration, want int, p float64) float64 {
	i := int(float64(want-1) * p)
	if i >= len(sorted) {
		return math.Inf(1)
	}
	return float64(sorted[i].Microseconds()) / 1000
}

// reportLatency reports the latency benchmarks' metrics: lat holds the
// write-to-applied latencies of the want deliveries that arrived, pub the
// publish-to-applied ones of the pubWant deliveries of acknowledged
// writes. Both are sorted here.
func reportLatency(b *testing.B, lat []time.Duration, want int, pub []time.Duration, pubWant int) {
	slices.Sort(lat)
	slices.Sort(pub)
	b.ReportMetric(percentileMs(lat, want, 0.50), "p50-ms")
	b.ReportMetric(percentileMs(lat, want, 0.99), "p99-ms")
	if pubWant > 0 {
		b.ReportMetric(percentileMs(pub, pubWant, 0.50), "pub-p50-ms")
		b.ReportMetric(percentileMs(pub, pubWant, 0.99), "pub-p99-ms")
	}
	b.ReportMetric(percentileMs(lat, want, 1), "max-ms")
	b.ReportMetric(float64(len(lat)), "deliveries")
	b.ReportMetric(float64(max(0, want-len(lat))), "missing")
}

// BenchmarkNodeLatency10x1000: 10 nodes, each writing 100 single-op
// changes per second (1,000 changes/s in all) for 5 s, every change
// applied on each other node (same process, same clock). Two latencies:
//
//   - p50-ms, p99-ms (write to applied): from just before Insert on the
//     writer, so including the group-commit wait, signing and the fsync;
//   - pub-p50-ms, pub-p99-ms (publish to applied): from Insert returning
//     on the writer. The node acknowledges a write once it is durable and
//     hands it to gossipsub at that moment (the publisher goroutine), so
//     this is the time from publication to every other node applying it.
//     A reader may apply a change just before the writer's Insert returns;
//     such a delivery counts as 0.
func BenchmarkNodeLatency10x1000(b *testing.B) {
	const nodesN, dur = 10, 5 * time.Second
	perSecond := benchRate / nodesN
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		var tr *latencyTracer
		if benchTrace {
			tr = startLatencyTrace()
		}
		nodes := benchNodes(b, nodesN)
		if tr != nil {
			tr.addNodes(nodes)
		}
		waitMesh(b, nodes)
		var mu sync.Mutex
		var lat []time.Duration
		type arrival struct {
			key string
			at  time.Time
		}
		var arrivals []arrival          // every delivery (row key, applied at)
		acked := map[string]time.Time{} // row key -> Insert returned at
		docs := make([]*Doc, nodesN)
		for j, n := range nodes {
			docs[j] = mustDoc(b, n, "bench")
			self := docs[j]
			self.Subscribe(func(ev crdt.ChangeEvent) {
				now := time.Now()
				if ev.Change.Author == crdt.Author(self.n.cfg.Key[32:]) {
					return // our own write
				}
				for _, r := range ev.Rows {
					for _, c := range r.Cols {
						if c.Name == "at" {
							ns, _ := c.Value.AsInt()
							mu.Lock()
							lat = append(lat, now.Sub(time.Unix(0, ns)))
							arrivals = append(arrivals, arrival{r.Key, now})
							mu.Unlock()
							if tr != nil {
								tr.delivered(self.n, ev, time.Unix(0, ns), now)
							}
						}
					}
				}
			})
		}
		b.StartTimer()
		cpu0 := cputime.Process()
		var wg sync.WaitGroup
		var issued atomic.Int64
		for j, d := range docs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(time.Second / time.Duration(perSecond))
				defer tick.Stop()
				end := time.Now().Add(dur)
				for k := 0; time.Now().Before(end); k++ {
					<-tick.C
					issued.Add(1)
					go func() { // a slow fsync must not slow the send rate
						key := fmt.Sprintf("n%d-%d", j, k)
						if d.Insert(context.Background(), "t", key, Cols{"at": time.Now().UnixNano()}) == nil {
							at := time.Now()
							mu.Lock()
							acked[key] = at
							mu.Unlock()
						}
					}()
				}
			}()
		}
		wg.Wait()
		// Wait for every delivery: one that gossip lost and reconciliation
		// repaired is part of the tail. A delivery still missing after
		// 30 s counts as slower than any in the percentiles.
		want := int(issued.Load()) * (nodesN - 1)
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			n := len(lat)
			mu.Unlock()
			if n >= want {
				break
			}
		}
		b.StopTimer()
		cpu := cputime.Process() - cpu0
		mu.Lock()
		var pub []time.Duration
		for _, a := range arrivals {
			if t, ok := acked[a.key]; ok {
				pub = append(pub, max(0, a.at.Sub(t)))
			}
		}
		reportLatency(b, lat, want, pub, len(acked)*(nodesN-1))
		b.ReportMetric(float64(issued.Load())/dur.Seconds(), "changes/s")
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(max(1, issued.Load())), "cpu-ms/change")
		mu.Unlock()
		for _, n := range nodes {
			n.Close()
		}
		if tr != nil {
			tr.stop()
			tr.report(os.Stdout)
		}
	}
}

// BenchmarkNodeRestart1M: a Pebble store holding 1,000,000 ops (1,000
// changes of 1,000 ops); the time runs from New until the document
// serves reads. snapshot: the store also holds a snapshot covering the
// whole log (as a clean Close or the periodic snapshot leaves it), so the
// changes are added to the graph without applying their ops; replay: no
// snapshot (Config.SnapshotEvery < 0), every op is applied through the
// gate (signatures verified).
func BenchmarkNodeRestart1M(b *testing.B) {
	for _, snap := range []bool{true, false} {
		b.Run(snapName(snap), func(b *testing.B) { benchRestart(b, 1_000_000, 1000, false, snap) })
	}
}

// BenchmarkNodeRestart1MTrustLog is the same with Config.TrustLog (the
// CLI's default): signatures of the local log are not re-checked.
func BenchmarkNodeRestart1MTrustLog(b *testing.B) {
	for _, snap := range []bool{true, false} {
		b.Run(snapName(snap), func(b *testing.B) { benchRestart(b, 1_000_000, 1000, true, snap) })
	}
}

// BenchmarkNodeRestart100kChanges: 100,000 single-op changes (signature
// checks dominate without TrustLog).
func BenchmarkNodeRestart100kChanges(b *testing.B) {
	for _, trust := range []bool{false, true} {
		for _, snap := range []bool{true, false} {
			b.Run(fmt.Sprintf("trust=%v/%s", trust, snapName(snap)), func(b *testing.B) { benchRestart(b, 100_000, 1, trust, snap) })
		}
	}
}

func snapName(snap bool) string {
	if snap {
		return "snapshot"
	}
	return "replay"
}

func benchRestart(b *testing.B, ops, perChange int, trust, snap bool) {
	dir := b.TempDir()
	key, _ := GenerateKey()
	c := DefaultTestConfig()
	c.Key, c.Listen, c.Docs, c.DataDir = key, nil, []string{"bench"}, filepath.Join(dir, "data")
	c.TrustLog = trust
	c.SnapshotEvery = -1 // the store keeps what the benchmark put there
	writeLog(b, c.DataDir, key, "bench", ops, perChange)
	if snap {
		writeSnapshot(b, c.DataDir, "bench")
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0, cpu0 := time.Now(), cputime.Process()
		n, err := New(context.Background(), c)
		if err != nil {
			b.Fatal(err)
		}
		d := mustDoc(b, n, "bench")
		if _, ok := d.Get("t", fmt.Sprintf("r%07d", ops-1)); !ok {
			b.Fatal("last row missing after restart")
		}
		el, cpu := time.Since(t0), cputime.Process()-cpu0
		b.StopTimer()
		// The process's CPU time (all threads, GC included) is reported
		// too: on a shared, loaded machine the wall time includes waiting
		// for a core.
		b.ReportMetric(el.Seconds(), "s-to-serve-reads")
		b.ReportMetric(cpu.Seconds(), "cpu-s-to-serve-reads")
		n.Close()
		b.StartTimer()
	}
}

// writeSnapshot stores the snapshot of docID's whole log in the Pebble
// store in dir.
func writeSnapshot(b testing.TB, dir, docID string) {
	st, err := OpenPebble(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var envs [][]byte
	if err := st.Load(docID, func(env []byte) error { envs = append(envs, append([]byte(nil), env...)); return nil }); err != nil {
		b.Fatal(err)
	}
	rc := replica.DefaultConfig()
	rc.Doc, rc.TrustLog = docID, true
	rc.Key, _ = GenerateKey()
	r, err := replica.New(rc)
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Restore(envs); err != nil {
		b.Fatal(err)
	}
	if err := st.SaveSnapshot(docID, r.Snapshot()); err != nil {
		b.Fatal(err)
	}
}

// writeLog writes the log a node would have written after ops local
// writes in changes of perChange ops: signed envelopes, in order, straight
// into a Pebble store (faster than going through a node's fsyncs).
func writeLog(b testing.TB, dir string, key ed25519.PrivateKey, docID string, ops, perChange int) {
	st, err := OpenPebble(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	doc := crdt.NewDoc(crdt.DocOptions{ID: docID, Author: crdt.Author(key.Public().(ed25519.PublicKey))})
	var batch [][]byte
	for k := 0; k < ops; k += perChange {
		var cops []crdt.Op
		for j := k; j < min(ops, k+perChange); j++ {
			cops = append(cops, crdt.Insert("t", fmt.Sprintf("r%07d", j), map[string]crdt.Value{"v": crdt.Int(int64(j)), "s": crdt.String("some text in a row")}))
		}
		ch, err := doc.Prepare(cops)
		if err != nil {
			b.Fatal(err)
		}
		env, err := bft.Sign(key, ch)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := doc.Apply(env.ID, ch); err != nil {
			b.Fatal(err)
		}
		batch = append(batch, env.Encode())
		if len(batch) == 1000 {
			if err := st.Append(docID, batch, false); err != nil {
				b.Fatal(err)
			}
			batch = nil
		}
	}
	if err := st.Append(docID, batch, true); err != nil {
		b.Fatal(err)
	}
}
