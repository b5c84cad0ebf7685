package topology

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0)) }

func TestGenerators(t *testing.T) {
	cases := []struct {
		g           *Graph
		edges       int
		minD, maxD  int
		isConnected bool
	}{
		{Star(10), 9, 1, 9, true},
		{Mesh(10), 45, 9, 9, true},
		{Ring(10, 1), 10, 2, 2, true},
		{Ring(10, 2), 20, 4, 4, true},
		{Tree(13, 3), 12, 1, 4, true},
		{RandomRegular(100, 8, rng(1)), 400, 8, 8, true},
		{RandomRegular(1001, 7, rng(2)), 3003, 6, 6, true},
		{SmallWorld(100, 6, 0.2, rng(3)), 300, 1, 100, true},
	}
	for _, c := range cases {
		t.Run(c.g.Name, func(t *testing.T) {
			if got := c.g.Edges(); got != c.edges {
				t.Errorf("edges = %d, want %d", got, c.edges)
			}
			for i := 0; i < c.g.N(); i++ {
				d := c.g.Degree(i)
				if d < c.minD || d > c.maxD {
					t.Fatalf("degree(%d) = %d, want in [%d,%d]", i, d, c.minD, c.maxD)
				}
				prev := -1
				for k := 0; k < d; k++ {
					v := c.g.Neighbor(i, k)
					if v <= prev || v == i {
						t.Fatalf("node %d: neighbours not sorted/unique: %v", i, c.g.Neighbors(i, nil))
					}
					if !c.g.Connected(v, i) {
						t.Fatalf("edge %d-%d not symmetric", i, v)
					}
					prev = v
				}
			}
			if c.g.IsConnected() != c.isConnected {
				t.Errorf("IsConnected = %v", !c.isConnected)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	a := RandomRegular(500, 6, rng(9))
	b := RandomRegular(500, 6, rng(9))
	if !reflect.DeepEqual(a, b) {
		t.Fatal("RandomRegular not deterministic")
	}
	c := RandomRegular(500, 6, rng(10))
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds gave the same graph")
	}
	s1 := SmallWorld(300, 6, 0.3, rng(4))
	s2 := SmallWorld(300, 6, 0.3, rng(4))
	if !reflect.DeepEqual(s1, s2) {
		t.Fatal("SmallWorld not deterministic")
	}
}

// reach floods a message from src with the router, ignoring lazy targets
// unless iwant is set (then an IHAVE always pulls the message), and
// returns how many nodes got it and how many copies were sent.
func reach(g *Graph, r Router, src int, iwant bool, rng *rand.Rand) (got, sent int) {
	type item struct{ node, from, hop int }
	seen := make([]bool, g.N())
	seen[src] = true
	q := []item{{src, -1, 0}}
	for len(q) > 0 {
		it := q[0]
		q = q[1:]
		eager, lazy := r.Route(it.node, it.from, it.hop, rng, nil, nil)
		if iwant {
			eager = append(eager, lazy...)
		}
		for _, v := range eager {
			sent++
			if !seen[v] {
				seen[v] = true
				q = append(q, item{v, it.node, it.hop + 1})
			}
		}
	}
	for _, s := range seen {
		if s {
			got++
		}
	}
	return got, sent
}

func TestStrategies(t *testing.T) {
	const n = 200
	r := rng(5)
	star := Star(n)
	if got, sent := reach(star, Relay{}.Router(star, r), 7, false, r); got != n || sent != n-1 {
		t.Errorf("relay on star: got %d sent %d", got, sent)
	}
	mesh := Mesh(n)
	if got, sent := reach(mesh, Flood{}.Router(mesh, r), 7, false, r); got != n || sent != (n-1)*(n-1) {
		t.Errorf("flood on mesh: got %d sent %d", got, sent)
	}
	ring := Ring(n, 1)
	if got, _ := reach(ring, Flood{}.Router(ring, r), 0, false, r); got != n {
		t.Errorf("flood on ring: got %d", got)
	}
	rr := RandomRegular(n, 12, r)
	if got, sent := reach(rr, Gossip{Fanout: 6, MaxHops: 20}.Router(rr, r), 0, false, r); got < n*95/100 || sent > 6*n {
		t.Errorf("gossip: got %d sent %d", got, sent)
	}
	if got, _ := reach(rr, Gossip{Fanout: 6, MaxHops: 1}.Router(rr, r), 0, false, r); got != 7 {
		t.Errorf("gossip with 1 hop: got %d, want 7", got)
	}
	el := EagerLazy{D: 4, DLazy: 4}.Router(rr, r)
	if got, _ := reach(rr, el, 0, true, r); got != n {
		t.Errorf("eager/lazy with IWANT: got %d", got)
	}
}

func TestScenarios(t *testing.T) {
	for _, name := range Names() {
		s, err := New(name, 30, Params{}, rng(1))
		if err != nil {
			t.Fatal(err)
		}
		if s.Graph.N() != 30 || !s.Graph.IsConnected() {
			t.Errorf("%s: %v not connected", name, s.Graph)
		}
	}
	p, _ := New("partition", 5, Params{}, rng(1))
	if p.Partition == nil || len(p.Partition.Groups) != 2 || p.Partition.Heal <= p.Partition.At {
		t.Errorf("partition window: %+v", p.Partition)
	}
	f, _ := New("filtered", 7, Params{Namespaces: []string{"x", "y"}}, rng(1))
	if !f.Subscribed(0, "x") || !f.Subscribed(0, "y") || f.Subscribed(2, "y") || !f.Subscribed(2, "x") {
		t.Errorf("filtered subscriptions: %v", f.Subscriptions)
	}
	if _, err := New("nope", 3, Params{}, rng(1)); err == nil {
		t.Error("unknown scenario accepted")
	}
}

func TestFloodPublish(t *testing.T) {
	r := rng(11)
	g := RandomRegular(100, 12, r)
	el := EagerLazy{D: 4, DLazy: 2, FloodPublish: true}.Router(g, r)
	eager, _ := el.Route(0, -1, 0, r, nil, nil)
	if len(eager) != 12 {
		t.Errorf("origin sent to %d peers, want all 12", len(eager))
	}
	eager, lazy := el.Route(0, eager[0], 1, r, nil, nil)
	if len(eager) >= 12 || len(lazy) == 0 {
		t.Errorf("relay sent eager %d lazy %d", len(eager), len(lazy))
	}
}

// TestPrefetch: Prefetch takes any node and stage (a complete graph, which
// stores no lists, an isolated node, a node out of range) and changes no
// neighbour list.
func TestPrefetch(t *testing.T) {
	for _, g := range []*Graph{Star(5), Mesh(4), RandomRegular(20, 4, rng(3))} {
		before := make([][]int, g.N())
		for i := range g.N() {
			for k := range g.Degree(i) {
				before[i] = append(before[i], g.Neighbor(i, k))
			}
		}
		for i := -1; i <= g.N(); i++ {
			for stage := range 3 {
				g.Prefetch(i, stage)
			}
		}
		for i := range g.N() {
			for k := range g.Degree(i) {
				if g.Neighbor(i, k) != before[i][k] {
					t.Fatalf("%s: node %d's list changed", g.Name, i)
				}
			}
		}
	}
}
