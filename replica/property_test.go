package replica_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/internal/testhook"
	"github.com/convergenode/convergenode/replica"
	"github.com/convergenode/convergenode/replica/replicatest"
)

var (
	flagSeed  = flag.Uint64("seed", 0, "property tests: run only this seed")
	flagCases = flag.Int("cases", 0, "property tests: number of cases (default 30, or $REPLICA_CASES)")
)

func propertyCases() int {
	if *flagCases > 0 {
		return *flagCases
	}
	if v, err := strconv.Atoi(os.Getenv("REPLICA_CASES")); err == nil && v > 0 {
		return v
	}
	return 30
}

const propSyncInterval = time.Second

// maxHealRounds bounds convergence after healing, in periodic sync
// intervals (each replica starts about one reconciliation per interval).
const maxHealRounds = 30

// TestConvergenceProperty: N replicas (3-16) write at random while the
// network loses (up to 50%), duplicates and reorders messages, cuts random
// partitions, crashes and restarts nodes from their durable logs, and has
// authors equivocate; after healing (every node restarted), every replica reaches the same state
// hash within maxHealRounds sync intervals. A failure prints the seed;
// -seed N reruns it, -cases N (or REPLICA_CASES) runs more.
func TestConvergenceProperty(t *testing.T) {
	seeds := []uint64{*flagSeed}
	if *flagSeed == 0 {
		seeds = nil
		for i := range propertyCases() {
			seeds = append(seeds, uint64(1000+i))
		}
	}
	worst := 0.0
	for _, seed := range seeds {
		rounds, err := runProperty(seed)
		if err != nil {
			t.Fatalf("seed %d: %v (rerun: go test ./replica -run TestConvergenceProperty -seed %d)", seed, err, seed)
		}
		worst = max(worst, rounds)
	}
	t.Logf("%d cases; worst convergence after healing: %.1f sync intervals", len(seeds), worst)
}

func runProperty(seed uint64) (float64, error) {
	rng := rand.New(rand.NewPCG(seed, 7))
	nodes := 3 + rng.IntN(14)
	loss := rng.Float64() * 0.5
	dup := rng.Float64() * 0.2
	n, err := replicatest.New(replicatest.Options{
		Seed: seed, Nodes: nodes, Loss: loss, Dup: dup,
		MaxLatency: time.Duration(5+rng.IntN(100)) * time.Millisecond,
		Config: func(_ int, c *replica.Config) {
			c.SyncInterval = propSyncInterval
			c.SyncTimeout = 2 * time.Second
			c.SyncBackoff = time.Second
		},
	})
	if err != nil {
		return 0, err
	}
	writes := 20 + rng.IntN(60)
	type fork struct {
		author crdt.Author
		x, y   crdt.ID
	}
	var forks []fork
	for w := 0; w < writes; w++ {
		i := rng.IntN(nodes)
		var ops []crdt.Op
		for range 1 + rng.IntN(3) {
			row := "r" + strconv.Itoa(rng.IntN(20))
			switch rng.IntN(4) {
			case 0:
				ops = append(ops, crdt.Delete("t", row))
			case 1:
				ops = append(ops, crdt.Update("t", row, "c", crdt.Int(rng.Int64N(100))))
			default:
				ops = append(ops, crdt.Insert("t", row, map[string]crdt.Value{
					"a": crdt.Int(int64(w)), "b": crdt.String(fmt.Sprint(i))}))
			}
		}
		if !n.Nodes[i].Crashed {
			if err := n.Write(i, ops...); err != nil {
				return 0, err
			}
		}
		switch rng.IntN(20) {
		case 3:
			// The writer's author equivocates: one fork to some nodes,
			// the other fork to the rest.
			if !n.Nodes[i].Crashed {
				var a, b []int
				for j := range nodes {
					if rng.IntN(2) == 0 {
						a = append(a, j)
					} else {
						b = append(b, j)
					}
				}
				x, y, err := n.Equivocate(i, a, b)
				if err != nil {
					return 0, err
				}
				forks = append(forks, fork{n.Nodes[i].R.Author(), x, y})
			}
		case 2:
			// Crash a node (it keeps its durable log) or restart one.
			j := rng.IntN(nodes)
			if n.Nodes[j].Crashed {
				if err := n.Restart(j); err != nil {
					return 0, fmt.Errorf("restart n%d: %w", j+1, err)
				}
			} else if j != i {
				n.Crash(j)
			}
		case 0:
			var a, b []int
			for j := range nodes {
				if rng.IntN(2) == 0 {
					a = append(a, j)
				} else {
					b = append(b, j)
				}
			}
			n.Partition(a, b)
		case 1:
			n.Heal()
		}
		n.RunFor(time.Duration(rng.IntN(400)) * time.Millisecond)
	}
	for j, nd := range n.Nodes {
		if nd.Crashed {
			if err := n.Restart(j); err != nil {
				return 0, fmt.Errorf("restart n%d: %w", j+1, err)
			}
		}
	}
	n.Heal()
	n.SetLoss(0)
	n.SetDup(0)
	took, ok := n.RunUntilConverged(maxHealRounds * propSyncInterval)
	rounds := float64(took) / float64(propSyncInterval)
	// An author is convicted everywhere once both sides of one of its
	// forks are in the (converged) document; a fork whose other side was
	// lost with every copy convicts no one.
	var cheaters []crdt.Author
	g := n.Honest()[0].R.Doc().Graph()
	for _, f := range forks {
		if g.Has(f.x) && g.Has(f.y) {
			cheaters = append(cheaters, f.author)
		}
	}
	slices.SortFunc(cheaters, crdt.Author.Compare)
	cheaters = slices.Compact(cheaters)
	if !ok {
		return rounds, fmt.Errorf("%d nodes, loss %.2f, dup %.2f: not converged %.0f sync intervals after healing", nodes, loss, dup, rounds)
	}
	for _, nd := range n.Honest() {
		for _, a := range nd.Alerts {
			if a.Penalize {
				return rounds, fmt.Errorf("%s penalised an honest peer: %s", nd.ID, a)
			}
		}
		// Every replica convicts exactly the authors that equivocated
		// (which pairs of forks it holds proofs for may differ).
		if got := nd.R.Equivocators(); !slices.Equal(got, cheaters) && !containsAll(got, cheaters) {
			return rounds, fmt.Errorf("%s convicts %d authors, want %d", nd.ID, len(got), len(cheaters))
		}
		if !slices.Equal(nd.R.Equivocators(), n.Honest()[0].R.Equivocators()) {
			return rounds, fmt.Errorf("%s and %s convict different authors", nd.ID, n.Honest()[0].ID)
		}
		for _, pr := range nd.R.Proofs() {
			if err := pr.Verify(); err != nil {
				return rounds, fmt.Errorf("%s holds a bad proof: %v", nd.ID, err)
			}
		}
	}
	return rounds, nil
}

// TestDeterminism runs the same seeded chaos twice and compares a digest of
// everything observable: traffic counters, every replica's state hash,
// heads, log and alerts. Any map-order or clock leak shows up here.
func TestDeterminism(t *testing.T) {
	for _, seed := range []uint64{11, 12} {
		a, b := chaosDigest(t, seed), chaosDigest(t, seed)
		if a != b {
			t.Fatalf("seed %d: two runs differ:\n%s\n---\n%s", seed, a, b)
		}
	}
}

// TestQuietTicks checks that the quiet-tick fast path (Tick returning at
// once while nothing can be due) changes nothing observable: the same
// seeded chaos, with presence, partitions, loss and a lying peer, gives
// the same digest with the fast path on and off.
func TestQuietTicks(t *testing.T) {
	defer testhook.FullTicks.Store(false)
	for _, seed := range []uint64{11, 12, 13, 14} {
		testhook.FullTicks.Store(false)
		a := chaosDigest(t, seed)
		testhook.FullTicks.Store(true)
		b := chaosDigest(t, seed)
		if a != b {
			t.Fatalf("seed %d: quiet ticks change the run:\n%s\n---\n%s", seed, a, b)
		}
	}
}

func chaosDigest(t *testing.T, seed uint64) string {
	t.Helper()
	n, err := replicatest.New(replicatest.Options{Seed: seed, Nodes: 6, Loss: 0.3, Dup: 0.1,
		Config: func(_ int, c *replica.Config) { c.SyncInterval = time.Second }})
	if err != nil {
		t.Fatal(err)
	}
	n.AddHandler(replicatest.NewLiar(seed, true))
	for w := 0; w < 40; w++ {
		if err := n.Write(w%6, crdt.Insert("t", "r"+strconv.Itoa(w%9), map[string]crdt.Value{"v": crdt.Int(int64(w))})); err != nil {
			t.Fatal(err)
		}
		if w == 20 {
			n.Partition([]int{0, 1, 2}, []int{3, 4, 5})
		}
		n.RunFor(150 * time.Millisecond)
	}
	n.Heal()
	_ = n.SetPresenceAll("cursor", "k")
	n.RunFor(3 * time.Second)
	s := n.Stats
	out := fmt.Sprintf("msgs=%d bytes=%d lost=%d dup=%d delivered=%d\n", s.Msgs, s.Bytes, s.Lost, s.Duplicated, s.Delivered)
	for _, nd := range n.Honest() {
		h := nd.R.Doc().StateHash()
		out += fmt.Sprintf("%s %x %v log=%d applied=%d presence=%d\n", nd.ID, h[:8], nd.R.Doc().Heads(), len(nd.Log), nd.Applied, len(nd.Presence))
		for _, a := range nd.Alerts {
			out += "  " + a.String() + "\n"
		}
	}
	return out
}

func containsAll(have, want []crdt.Author) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// TestSyncEfficiency: with gossip delivering everything, periodic
// reconciliation must cost little: the changes streamed in sessions stay a
// small fraction of what gossip delivered (they are only the changes still
// in flight when a session starts).
func TestSyncEfficiency(t *testing.T) {
	const nodes, writes = 20, 400
	n, err := replicatest.New(replicatest.Options{Seed: 3, Nodes: nodes,
		Config: func(_ int, c *replica.Config) { c.SyncInterval = time.Second }})
	if err != nil {
		t.Fatal(err)
	}
	for w := 0; w < writes; w++ {
		if err := n.Write(w%nodes, crdt.Insert("t", "r"+strconv.Itoa(w%31), map[string]crdt.Value{"v": crdt.Int(int64(w))})); err != nil {
			t.Fatal(err)
		}
		if w%4 == 0 {
			n.RunFor(100 * time.Millisecond)
		}
	}
	if _, ok := n.RunUntilConverged(30 * time.Second); !ok {
		t.Fatal("not converged")
	}
	var streamed, done uint64
	for _, nd := range n.Honest() {
		streamed += nd.R.Stats().StreamSent
		done += nd.R.Stats().SessionsDone
	}
	gossiped := uint64(writes * (nodes - 1))
	t.Logf("%d sessions done; %d changes streamed vs %d delivered by gossip (%.1f%%)", done, streamed, gossiped, 100*float64(streamed)/float64(gossiped))
	if streamed*5 > gossiped {
		t.Fatalf("sessions streamed %d changes, over 20%% of the %d gossip deliveries", streamed, gossiped)
	}
}
