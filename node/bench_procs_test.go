package node

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/internal/cputime"
)

// BenchmarkNodeLatency10x1000Procs is BenchmarkNodeLatency10x1000 with
// one operating-system process per node, as nodes are deployed: the test
// binary re-executes itself ten times (latChildEnv), each child runs one
// node on loopback with its own Go runtime and garbage collector, and the
// parent only coordinates. Each node writes 500 single-op changes at 100
// per second (1,000 changes/s in all); every child records when each of
// its writes was acknowledged and when it applied each of the others'.
// All processes read the same wall clock. The metrics are those of the
// in-process benchmark; cpu-ms/change sums the children's CPU time from
// the first write to the last delivery. The benchmark's own time per
// iteration is the whole run: starting the processes, joining, writing.
func BenchmarkNodeLatency10x1000Procs(b *testing.B) {
	const nodesN, dur = 10, 5 * time.Second
	perNode := benchRate / nodesN * int(dur/time.Second)
	for i := 0; i < b.N; i++ {
		res := runLatencyProcs(b, latChildConfig{
			Nodes:     nodesN,
			Writes:    perNode,
			Rate:      benchRate / nodesN,
			Transport: benchTransport,
			Mem:       benchMem,
			MeshD:     meshD,
		}, b.TempDir())
		var lat, pub []time.Duration
		acked := map[string]int64{}
		var cpu time.Duration
		for _, r := range res {
			for k, at := range r.Acked {
				acked[k] = at
			}
			cpu += time.Duration(r.CPUNanos)
		}
		for _, r := range res {
			for _, a := range r.Arrivals {
				lat = append(lat, time.Duration(a.Applied-a.Written))
				if t, ok := acked[a.Key]; ok {
					pub = append(pub, max(0, time.Duration(a.Applied-t)))
				}
			}
		}
		reportLatency(b, lat, nodesN*perNode*(nodesN-1), pub, len(acked)*(nodesN-1))
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(max(1, len(acked))), "cpu-ms/change")
	}
}

// TestNodeProcesses runs three node processes on loopback through the
// benchmark's harness: each writes 20 changes, and every node must apply
// every other node's changes.
func TestNodeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	const nodesN, writes = 3, 20
	res := runLatencyProcs(t, latChildConfig{Nodes: nodesN, Writes: writes, Rate: 100, Mem: true, WaitDelivered: 20 * time.Second}, t.TempDir())
	for i, r := range res {
		if len(r.Acked) != writes {
			t.Errorf("node %d: %d writes acknowledged, want %d", i, len(r.Acked), writes)
		}
		got := map[string]bool{}
		for _, a := range r.Arrivals {
			got[a.Key] = true
			if a.Applied < a.Written {
				t.Errorf("node %d: %s applied before it was written", i, a.Key)
			}
		}
		for j := range nodesN {
			for k := range writes {
				if key := fmt.Sprintf("n%d-%d", j, k); j != i && !got[key] {
					t.Errorf("node %d never applied %s", i, key)
				}
			}
		}
	}
}

// latChildEnv carries a latChildConfig (JSON) to a child process of
// BenchmarkNodeLatency10x1000Procs; TestMain runs latChild when it is set.
const latChildEnv = "CONVERGENODE_LATENCY_CHILD"

type latChildConfig struct {
	Index, Nodes  int
	Writes, Rate  int // changes this node writes, per second
	Dir           string
	Transport     string
	Mem           bool
	MeshD         int
	WaitDelivered time.Duration // at most, after the last write
}

// latResult is what a child reports (as JSON, in Dir/result.json).
type latResult struct {
	Acked    map[string]int64 // own writes: row key -> acknowledged at (Unix ns)
	Arrivals []latArrival     // others' writes as applied here
	CPUNanos int64            // this process's CPU time from start to done
}

type latArrival struct {
	Key              string
	Written, Applied int64 // Unix ns: before the writer's Insert; applied here
}

// runLatencyProcs starts the children, joins them, starts the writes on
// all at once and returns their results. The protocol on each child's
// stdin and stdout is one line per step: child "addr <AddrInfo JSON>";
// parent "peers <[]AddrInfo JSON>"; child "ready"; parent "go <Unix ns>";
// child "done"; the parent then closes stdin and the child exits.
func runLatencyProcs(b testing.TB, cfg latChildConfig, dir string) []latResult {
	b.Helper()
	if cfg.WaitDelivered == 0 {
		cfg.WaitDelivered = 30 * time.Second
	}
	type child struct {
		cmd  *exec.Cmd
		in   io.WriteCloser
		out  *bufio.Scanner
		errs *strings.Builder
		dir  string
	}
	children := make([]*child, cfg.Nodes)
	defer func() {
		for _, c := range children {
			if c != nil && c.cmd.ProcessState == nil {
				c.cmd.Process.Kill()
				c.cmd.Wait()
			}
		}
	}()
	expect := func(c *child, prefix string) string {
		b.Helper()
		if !c.out.Scan() || !strings.HasPrefix(c.out.Text(), prefix) {
			b.Fatalf("latency child in %s: want %q, got %q; stderr: %s", c.dir, prefix, c.out.Text(), c.errs)
		}
		return strings.TrimPrefix(c.out.Text(), prefix)
	}
	addrs := make([]peer.AddrInfo, cfg.Nodes)
	for i := range children {
		cc := cfg
		cc.Index, cc.Dir = i, filepath.Join(dir, fmt.Sprint(i))
		if err := os.MkdirAll(cc.Dir, 0o700); err != nil {
			b.Fatal(err)
		}
		js, _ := json.Marshal(cc)
		c := &child{cmd: exec.Command(os.Args[0], "-test.run=^$"), errs: &strings.Builder{}, dir: cc.Dir}
		c.cmd.Env = append(os.Environ(), latChildEnv+"="+string(js))
		c.cmd.Stderr = c.errs
		var err error
		if c.in, err = c.cmd.StdinPipe(); err != nil {
			b.Fatal(err)
		}
		out, err := c.cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		c.out = bufio.NewScanner(out)
		if err := c.cmd.Start(); err != nil {
			b.Fatal(err)
		}
		children[i] = c
		if err := json.Unmarshal([]byte(expect(c, "addr ")), &addrs[i]); err != nil {
			b.Fatal(err)
		}
	}
	peers, _ := json.Marshal(addrs)
	for _, c := range children {
		fmt.Fprintf(c.in, "peers %s\n", peers)
	}
	for _, c := range children {
		expect(c, "ready")
	}
	start := time.Now().Add(100 * time.Millisecond)
	for _, c := range children {
		fmt.Fprintf(c.in, "go %d\n", start.UnixNano())
	}
	for _, c := range children {
		expect(c, "done")
	}
	res := make([]latResult, cfg.Nodes)
	for i, c := range children {
		c.in.Close()
		if err := c.cmd.Wait(); err != nil {
			b.Fatalf("latency child %d: %v; stderr: %s", i, err, c.errs)
		}
		js, err := os.ReadFile(filepath.Join(c.dir, "result.json"))
		if err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(js, &res[i]); err != nil {
			b.Fatal(err)
		}
	}
	return res
}

// latChild runs one node of BenchmarkNodeLatency10x1000Procs; it returns
// the process's exit code.
func latChild(js string) int {
	if err := runLatChild(js); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

func runLatChild(js string) error {
	var cfg latChildConfig
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		return err
	}
	meshD = cfg.MeshD
	c := DefaultTestConfig()
	c.Docs = []string{"bench"}
	c.Logger = dbgLogger
	if !cfg.Mem {
		c.DataDir = filepath.Join(cfg.Dir, "data")
	}
	listenOn(&c, cfg.Transport)
	ctx := context.Background()
	n, err := New(ctx, c)
	if err != nil {
		return err
	}
	defer n.Close()
	d, err := n.Doc(ctx, "bench")
	if err != nil {
		return err
	}
	var mu sync.Mutex
	res := latResult{Acked: map[string]int64{}}
	self := crdt.Author(n.cfg.Key[32:])
	d.Subscribe(func(ev crdt.ChangeEvent) {
		now := time.Now().UnixNano()
		if ev.Change.Author == self {
			return
		}
		for _, r := range ev.Rows {
			for _, col := range r.Cols {
				if col.Name == "at" {
					ns, _ := col.Value.AsInt()
					mu.Lock()
					res.Arrivals = append(res.Arrivals, latArrival{Key: r.Key, Written: ns, Applied: now})
					mu.Unlock()
				}
			}
		}
	})

	ai, _ := json.Marshal(peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()})
	fmt.Printf("addr %s\n", ai)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(nil, 1<<20)
	line := func(prefix string) (string, error) {
		if !in.Scan() || !strings.HasPrefix(in.Text(), prefix) {
			return "", fmt.Errorf("latency child %d: want %q from the parent, got %q", cfg.Index, prefix, in.Text())
		}
		return strings.TrimPrefix(in.Text(), prefix), nil
	}
	s, err := line("peers ")
	if err != nil {
		return err
	}
	var peers []peer.AddrInfo
	if err := json.Unmarshal([]byte(s), &peers); err != nil {
		return err
	}
	for j := cfg.Index + 1; j < len(peers); j++ { // each pair once
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := n.Connect(cctx, peers[j])
		cancel()
		if err != nil {
			return err
		}
	}
	for deadline := time.Now().Add(20 * time.Second); len(n.ps.ListPeers(topicName("bench", topicChanges))) < cfg.Nodes-1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("latency child %d: gossip mesh not formed", cfg.Index)
		}
	}
	fmt.Println("ready")
	if s, err = line("go "); err != nil {
		return err
	}
	var startNs int64
	if _, err := fmt.Sscan(s, &startNs); err != nil {
		return err
	}
	time.Sleep(time.Until(time.Unix(0, startNs)))
	cpu0 := cputime.Process()
	tick := time.NewTicker(time.Second / time.Duration(cfg.Rate))
	var wg sync.WaitGroup
	for k := 0; k < cfg.Writes; k++ {
		<-tick.C
		wg.Add(1)
		go func() { // a slow fsync must not slow the send rate
			defer wg.Done()
			key := fmt.Sprintf("n%d-%d", cfg.Index, k)
			if d.Insert(ctx, "t", key, Cols{"at": time.Now().UnixNano()}) == nil {
				at := time.Now().UnixNano()
				mu.Lock()
				res.Acked[key] = at
				mu.Unlock()
			}
		}()
	}
	tick.Stop()
	wg.Wait()
	want := cfg.Writes * (cfg.Nodes - 1) // every node writes as many
	for deadline := time.Now().Add(cfg.WaitDelivered); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		got := len(res.Arrivals)
		mu.Unlock()
		if got >= want {
			break
		}
	}
	mu.Lock()
	res.CPUNanos = int64(cputime.Process() - cpu0)
	out, err := json.Marshal(&res)
	mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "result.json"), out, 0o600); err != nil {
		return err
	}
	fmt.Println("done")
	io.Copy(io.Discard, os.Stdin) // keep serving the others until the parent closes stdin
	return nil
}
