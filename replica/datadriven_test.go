package replica_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/replica"
	"github.com/convergenode/convergenode/replica/replicatest"
)

// TestScenarios runs the scenario files in testdata/. Each file drives a
// replicatest.Network with commands and compares the printed state; run
// with -rewrite to regenerate the expected output.
//
//	net nodes=N [seed=S] [loss=P] [dup=P] [sync-interval=D]
//	write node=I [n=K] [each] [drop] [table=T] [row=R]
//	    K ops at node I (default 1), as one group commit (or one change
//	    each with "each"), flushed at once; "drop" loses their broadcasts
//	run for=D                 advance the clock, delivering and ticking
//	converge [max=D]          run until every honest replica agrees
//	state                     per node: changes, heads, state hash, proofs
//	partition                 input: one group of node numbers per line
//	heal                      restore every link
//	add-node                  a newcomer joins and syncs
//	equivocate node=I a=(..) b=(..)   node I's author forks: one side to a, one to b
//	alerts                    alerts raised since the last "alerts"
//	stats                     network traffic since the last "stats"
//	set loss=P | dup=P        change the network's fault rates
//	presence node=I ns=N key=K value=V   a presence write
//	presence-state            every honest node's presence entries
//	crash node=I / restart node=I        stop a node; bring it back from its log
//	add-liar [flood]          a Byzantine peer that lies in reconciliation
//	footprint                 every honest node's per-peer protocol state
func TestScenarios(t *testing.T) {
	// Only the .txt scenario files: testdata/fuzz holds fuzz corpora.
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files: %v", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			var h scenario
			datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
				return h.run(t, d)
			})
		})
	}
}

type scenario struct {
	n          *replicatest.Network
	alertsSeen map[int]int
	last       replicatest.Stats
	seq        int
}

func argInt(t *testing.T, d *datadriven.TestData, key string, def int) int {
	if !d.HasArg(key) {
		return def
	}
	var v int
	d.ScanArgs(t, key, &v)
	return v
}

func argDur(t *testing.T, d *datadriven.TestData, key string, def time.Duration) time.Duration {
	if !d.HasArg(key) {
		return def
	}
	var s string
	d.ScanArgs(t, key, &s)
	v, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s: %v", d.Pos, err)
	}
	return v
}

func argFloat(t *testing.T, d *datadriven.TestData, key string, def float64) float64 {
	if !d.HasArg(key) {
		return def
	}
	var s string
	d.ScanArgs(t, key, &s)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%s: %v", d.Pos, err)
	}
	return v
}

func argNodes(t *testing.T, d *datadriven.TestData, key string) []int {
	a, ok := d.Arg(key)
	if !ok {
		t.Fatalf("%s: missing %s", d.Pos, key)
	}
	var out []int
	for _, v := range a.Vals {
		i, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			t.Fatalf("%s: %v", d.Pos, err)
		}
		out = append(out, i-1)
	}
	return out
}

func (h *scenario) run(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "net":
		opts := replicatest.Options{
			Seed:  uint64(argInt(t, d, "seed", 1)),
			Nodes: argInt(t, d, "nodes", 2),
			Loss:  argFloat(t, d, "loss", 0),
			Dup:   argFloat(t, d, "dup", 0),
		}
		if iv := argDur(t, d, "sync-interval", 0); iv != 0 {
			opts.Config = func(_ int, c *replica.Config) { c.SyncInterval = iv }
		}
		n, err := replicatest.New(opts)
		if err != nil {
			t.Fatal(err)
		}
		h.n, h.alertsSeen, h.last, h.seq = n, map[int]int{}, replicatest.Stats{}, 0
		var b strings.Builder
		for _, nd := range n.Nodes {
			fmt.Fprintf(&b, "%s author=%s\n", nd.ID, nd.R.Author().Short())
		}
		return b.String()
	case "write":
		i := argInt(t, d, "node", 1) - 1
		k := argInt(t, d, "n", 1)
		table, row := "t", ""
		if d.HasArg("table") {
			d.ScanArgs(t, "table", &table)
		}
		if d.HasArg("row") {
			d.ScanArgs(t, "row", &row)
		}
		drop := d.HasArg("drop")
		each := d.HasArg("each")
		nd := h.n.Nodes[i]
		if drop {
			h.n.DropBroadcastsFrom(i, true)
		}
		before := nd.R.Stats().LocalChanges
		for j := 0; j < k; j++ {
			h.seq++
			r := row
			if r == "" {
				r = fmt.Sprintf("r%d", h.seq%50)
			}
			op := crdt.Insert(table, r, map[string]crdt.Value{"c" + strconv.Itoa(i+1): crdt.Int(int64(h.seq))})
			if err := h.n.Write(i, op); err != nil {
				t.Fatal(err)
			}
			if each {
				h.n.Flush(i)
			}
		}
		h.n.Flush(i)
		if drop {
			h.n.DropBroadcastsFrom(i, false)
		}
		return fmt.Sprintf("%s: %d ops in %d changes\n", nd.ID, k, nd.R.Stats().LocalChanges-before)
	case "run":
		h.n.RunFor(argDur(t, d, "for", time.Second))
		return ""
	case "converge":
		took, ok := h.n.RunUntilConverged(argDur(t, d, "max", time.Minute))
		if !ok {
			return fmt.Sprintf("NOT converged after %v\n", took)
		}
		return fmt.Sprintf("converged after %v\n", took)
	case "state":
		var b strings.Builder
		for _, nd := range h.n.Nodes {
			if nd.R == nil {
				fmt.Fprintf(&b, "%s: byzantine\n", nd.ID)
				continue
			}
			doc := nd.R.Doc()
			hash := doc.StateHash()
			rows := 0
			for _, tb := range doc.Tables() {
				rows += len(doc.Scan(tb))
			}
			fmt.Fprintf(&b, "%s: changes=%d heads=%d rows=%d hash=%x proofs=%d log=%d\n",
				nd.ID, doc.Graph().Len(), len(doc.Heads()), rows, hash[:4], len(nd.R.Proofs()), len(nd.Log))
		}
		if h.n.Converged() {
			b.WriteString("converged\n")
		} else {
			b.WriteString("diverged\n")
		}
		return b.String()
	case "partition":
		var groups [][]int
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			var g []int
			for _, f := range strings.Fields(line) {
				v, err := strconv.Atoi(f)
				if err != nil {
					t.Fatal(err)
				}
				g = append(g, v-1)
			}
			groups = append(groups, g)
		}
		h.n.Partition(groups...)
		return ""
	case "heal":
		h.n.Heal()
		return ""
	case "add-node":
		nd, err := h.n.AddNode(true)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%s author=%s joined\n", nd.ID, nd.R.Author().Short())
	case "equivocate":
		i := argInt(t, d, "node", 1) - 1
		a, b := argNodes(t, d, "a"), argNodes(t, d, "b")
		x, y, err := h.n.Equivocate(i, a, b)
		if err != nil {
			t.Fatal(err)
		}
		ids := []crdt.ID{x, y}
		slices.SortFunc(ids, crdt.ID.Compare)
		return fmt.Sprintf("forks %s %s\n", ids[0].Short(), ids[1].Short())
	case "alerts":
		// Identical alerts are folded into one line with a count.
		var b strings.Builder
		for i, nd := range h.n.Nodes {
			var order []string
			count := map[string]int{}
			for _, a := range nd.Alerts[h.alertsSeen[i]:] {
				s := a.String()
				if count[s] == 0 {
					order = append(order, s)
				}
				count[s]++
			}
			for _, s := range order {
				if count[s] > 1 {
					fmt.Fprintf(&b, "%s: %s (x%d)\n", nd.ID, s, count[s])
				} else {
					fmt.Fprintf(&b, "%s: %s\n", nd.ID, s)
				}
			}
			h.alertsSeen[i] = len(nd.Alerts)
		}
		if b.Len() == 0 {
			return "none\n"
		}
		return b.String()
	case "stats":
		s := h.n.Stats
		var b strings.Builder
		fmt.Fprintf(&b, "msgs=%d bytes=%d lost=%d dup=%d\n", s.Msgs-h.last.Msgs, s.Bytes-h.last.Bytes,
			s.Lost-h.last.Lost, s.Duplicated-h.last.Duplicated)
		var types []replica.MsgType
		for ty := range s.ByType {
			types = append(types, ty)
		}
		slices.Sort(types)
		for _, ty := range types {
			if c := s.ByType[ty] - h.last.ByType[ty]; c > 0 {
				fmt.Fprintf(&b, "  %s: %d msgs, %d bytes\n", ty, c, s.BytesByType[ty]-h.last.BytesByType[ty])
			}
		}
		h.last = snapshotStats(s)
		return b.String()
	case "presence":
		i := argInt(t, d, "node", 1) - 1
		var ns, key, val string
		d.ScanArgs(t, "ns", &ns)
		d.ScanArgs(t, "key", &key)
		d.ScanArgs(t, "value", &val)
		if err := h.n.Nodes[i].R.SetPresence(ns, key, crdt.String(val)); err != nil {
			return "error: " + err.Error() + "\n"
		}
		return ""
	case "presence-state":
		var b strings.Builder
		for _, nd := range h.n.Honest() {
			st := nd.R.Presence()
			fmt.Fprintf(&b, "%s:", nd.ID)
			for _, ns := range st.Namespaces() {
				for _, e := range st.All(ns) {
					fmt.Fprintf(&b, " %s/%s=%s(by %s)", ns, e.Key, e.Value, e.Author.Short())
				}
			}
			b.WriteString("\n")
		}
		return b.String()
	case "add-liar":
		l := replicatest.NewLiar(uint64(len(h.n.Nodes)), d.HasArg("flood"))
		nd := h.n.AddHandler(l)
		return fmt.Sprintf("%s is a liar (flood=%v)\n", nd.ID, l.Flood)
	case "footprint":
		var b strings.Builder
		for _, nd := range h.n.Honest() {
			f := nd.R.Footprint()
			fmt.Fprintf(&b, "%s: peers=%d sessions=%d queued=%d tracked=%d\n", nd.ID, f.Peers, f.Sessions, f.QueuedIDs, f.Tracked)
		}
		return b.String()
	case "crash":
		h.n.Crash(argInt(t, d, "node", 1) - 1)
		return ""
	case "restart":
		i := argInt(t, d, "node", 1) - 1
		if err := h.n.Restart(i); err != nil {
			return "error: " + err.Error() + "\n"
		}
		nd := h.n.Nodes[i]
		return fmt.Sprintf("%s restored %d changes from a log of %d\n", nd.ID, nd.R.Doc().Graph().Len(), len(nd.Log))
	case "set":
		if d.HasArg("loss") {
			h.n.SetLoss(argFloat(t, d, "loss", 0))
		}
		if d.HasArg("dup") {
			h.n.SetDup(argFloat(t, d, "dup", 0))
		}
		return ""
	}
	t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	return ""
}

func snapshotStats(s replicatest.Stats) replicatest.Stats {
	c := s
	c.ByType = make(map[replica.MsgType]uint64, len(s.ByType))
	c.BytesByType = make(map[replica.MsgType]uint64, len(s.BytesByType))
	for k, v := range s.ByType {
		c.ByType[k] = v
	}
	for k, v := range s.BytesByType {
		c.BytesByType[k] = v
	}
	return c
}
