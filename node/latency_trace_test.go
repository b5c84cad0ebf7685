package node

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"github.com/libp2p/go-libp2p/core/peer"
)

// benchTrace makes BenchmarkNodeLatency10x1000 record when every change
// reaches each traceStage on every node and print where the latency goes
// (-trace).
var benchTrace bool

func init() {
	flag.BoolVar(&benchTrace, "trace", false, "BenchmarkNodeLatency10x1000 prints the latency per stage")
}

// latencyTracer collects the stage times of the latency benchmark.
type latencyTracer struct {
	mu      sync.Mutex
	nodes   map[*Node]int
	authors map[crdt.Author]int
	peers   map[peer.ID]int
	at      map[traceKey]*[numTraceStages]time.Time
	deliv   []traceDelivery
}

type traceKey struct {
	node, to int // to: the peer of traceSendQueued and traceSendWritten, else -1
	id       crdt.ID
}

type traceDelivery struct {
	writer, reader int
	id             crdt.ID
	at, cb         time.Time
}

// startLatencyTrace installs traceHook (before the nodes start).
func startLatencyTrace() *latencyTracer {
	t := &latencyTracer{nodes: map[*Node]int{}, authors: map[crdt.Author]int{}, peers: map[peer.ID]int{}, at: map[traceKey]*[numTraceStages]time.Time{}}
	traceHook = t.record
	return t
}

func (t *latencyTracer) stop() { traceHook = nil }

// addNodes names the nodes 0..n-1.
func (t *latencyTracer) addNodes(nodes []*Node) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, n := range nodes {
		t.nodes[n] = i
		t.authors[crdt.Author(n.cfg.Key[32:])] = i
		t.peers[n.host.ID()] = i
	}
}

func (t *latencyTracer) record(n *Node, s traceStage, id crdt.ID, to peer.ID, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.nodes[n]
	if !ok {
		return
	}
	k := traceKey{i, -1, id}
	if to != "" {
		if k.to, ok = t.peers[to]; !ok {
			return
		}
	}
	e := t.at[k]
	if e == nil {
		e = new([numTraceStages]time.Time)
		t.at[k] = e
	}
	if e[s].IsZero() { // the first copy counts
		e[s] = at
	}
}

// delivered records one delivery seen by the benchmark's subscriber.
func (t *latencyTracer) delivered(reader *Node, ev crdt.ChangeEvent, at, cb time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.nodes[reader]
	w, ok2 := t.authors[ev.Change.Author]
	if ok && ok2 {
		t.deliv = append(t.deliv, traceDelivery{writer: w, reader: r, id: ev.ID, at: at, cb: cb})
	}
}

// report prints, for each step between two stages, its percentiles over
// the deliveries, and its mean over the slowest 1 % of deliveries.
func (t *latencyTracer) report(w io.Writer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	type seg struct {
		name  string
		durs  []time.Duration
		slow  time.Duration
		nslow int
	}
	// The path, in order: writer stages, then the reader's.
	names := []string{"insert->taken"}
	for s := traceTaken + 1; s <= numTraceStages; s++ {
		to := "subscriber"
		if s < numTraceStages {
			to = s.String()
		}
		names = append(names, (s-1).String()+"->"+to)
	}
	segs := make([]seg, len(names))
	for i := range segs {
		segs[i].name = names[i]
	}
	total := make([]time.Duration, len(t.deliv))
	for i, d := range t.deliv {
		total[i] = d.cb.Sub(d.at)
	}
	sorted := slices.Clone(total)
	slices.Sort(sorted)
	cut := time.Duration(1 << 62)
	if len(sorted) > 0 {
		cut = sorted[len(sorted)*99/100]
	}
	missing := 0
	for i, d := range t.deliv {
		wr, rd := t.at[traceKey{d.writer, -1, d.id}], t.at[traceKey{d.reader, -1, d.id}]
		wp := t.at[traceKey{d.writer, d.reader, d.id}]
		if wr == nil || rd == nil {
			missing++
			continue
		}
		// points[k] is the time at the start of segment k.
		points := []time.Time{d.at}
		for s := traceTaken; s < numTraceStages; s++ {
			switch {
			case s < traceSendQueued:
				points = append(points, wr[s])
			case s < traceRecvRPC:
				var z time.Time
				if wp != nil {
					z = wp[s]
				}
				points = append(points, z)
			default:
				points = append(points, rd[s])
			}
		}
		points = append(points, d.cb)
		// A stage that was skipped (a change fetched by sync stream has
		// no gossip stages) takes the time of the next one recorded.
		for k := len(points) - 2; k >= 0; k-- {
			if points[k].IsZero() {
				points[k] = points[k+1]
			}
		}
		slow := total[i] >= cut
		for k := range segs {
			dd := points[k+1].Sub(points[k])
			segs[k].durs = append(segs[k].durs, dd)
			if slow {
				segs[k].slow += dd
				segs[k].nslow++
			}
		}
	}
	fmt.Fprintf(w, "latency trace: %d deliveries (%d without stage times), total p50 %v p99 %v\n",
		len(t.deliv), missing, pctDur(sorted, 0.5), pctDur(sorted, 0.99))
	var b strings.Builder
	fmt.Fprintf(&b, "%-24s %9s %9s %9s %9s %12s\n", "step", "mean", "p50", "p90", "p99", "mean-slow1%")
	for _, s := range segs {
		sort.Slice(s.durs, func(i, j int) bool { return s.durs[i] < s.durs[j] })
		var sum time.Duration
		for _, d := range s.durs {
			sum += d
		}
		mean, ms := time.Duration(0), time.Duration(0)
		if len(s.durs) > 0 {
			mean = sum / time.Duration(len(s.durs))
		}
		if s.nslow > 0 {
			ms = s.slow / time.Duration(s.nslow)
		}
		fmt.Fprintf(&b, "%-24s %9s %9s %9s %9s %12s\n", s.name, ms3(mean), ms3(pctDur(s.durs, 0.5)), ms3(pctDur(s.durs, 0.9)), ms3(pctDur(s.durs, 0.99)), ms3(ms))
	}
	fmt.Fprint(w, b.String())
	g := &traceGossip
	fmt.Fprintf(w, "gossipsub, all nodes: %d RPCs out (%d messages, %d bytes, %d IHAVE IDs, %d IWANT IDs), %d RPCs in, %d duplicate messages, %d RPCs dropped (queue full)\n",
		g.rpcsOut.Load(), g.msgsOut.Load(), g.bytesOut.Load(), g.ihaveIDs.Load(), g.iwantIDs.Load(), g.rpcsIn.Load(), g.dups.Load(), g.dropped.Load())
}

func pctDur(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[int(float64(len(d)-1)*p)]
}

func ms3(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }
