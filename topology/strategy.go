package topology

import (
	"fmt"
	"math/rand/v2"
)

// Strategy is a dissemination rule: how a node that has just accepted a
// message passes it on. It is a description; [Strategy.Router] binds it to
// a graph and makes any per-node state (such as a gossip mesh).
type Strategy interface {
	// Name names the strategy for reports, e.g. "gossip(6,10)".
	Name() string
	// Router binds the strategy to g. rng is used only while building
	// per-node state; Route gets its own.
	Router(g *Graph, rng *rand.Rand) Router
}

// Router makes the forwarding decisions of one strategy on one graph.
// It is not safe for concurrent use.
type Router interface {
	// Route decides where node self sends a message it has just accepted
	// for the first time. from is the neighbour it came from (-1 when self
	// originated it) and hop the number of hops it has travelled (0 at the
	// origin). Full copies go to the nodes appended to eager; the nodes
	// appended to lazy only get an announcement (IHAVE) and may ask for
	// the message (IWANT). Both lists are in a deterministic order.
	Route(self, from, hop int, rng *rand.Rand, eager, lazy []int) ([]int, []int)
}

// Flood forwards every message to every neighbour but the one it came from.
type Flood struct{}

// Name implements Strategy.
func (Flood) Name() string { return "flood" }

// Router implements Strategy.
func (Flood) Router(g *Graph, _ *rand.Rand) Router { return floodRouter{g: g} }

type floodRouter struct{ g *Graph }

func (r floodRouter) Route(self, from, _ int, _ *rand.Rand, eager, lazy []int) ([]int, []int) {
	for k, d := 0, r.g.Degree(self); k < d; k++ {
		if v := r.g.Neighbor(self, k); v != from {
			eager = append(eager, v)
		}
	}
	return eager, lazy
}

// Relay is the seed's star: an origin sends to all its neighbours, and only
// relay nodes forward (to every neighbour but the sender). With no Relays
// listed, node 0 is the relay.
type Relay struct {
	Relays []int
}

// Name implements Strategy.
func (Relay) Name() string { return "relay" }

// Router implements Strategy.
func (s Relay) Router(g *Graph, _ *rand.Rand) Router {
	rel := make([]bool, g.N())
	if len(s.Relays) == 0 && g.N() > 0 {
		rel[0] = true
	}
	for _, r := range s.Relays {
		if r >= 0 && r < g.N() {
			rel[r] = true
		}
	}
	return relayRouter{g: g, relay: rel}
}

type relayRouter struct {
	g     *Graph
	relay []bool
}

func (r relayRouter) Route(self, from, hop int, rng *rand.Rand, eager, lazy []int) ([]int, []int) {
	if from >= 0 && !r.relay[self] {
		return eager, lazy
	}
	return floodRouter{g: r.g}.Route(self, from, hop, rng, eager, lazy)
}

// Gossip is fanout gossip: a node that accepts a message sends it to Fanout
// random neighbours (never back to the sender) while it has travelled
// fewer than MaxHops hops. Delivery is best effort; reconciliation closes
// the gaps.
type Gossip struct {
	Fanout  int // random neighbours per forward; default 6
	MaxHops int // a message at this many hops is not forwarded; default 10
}

// Name implements Strategy.
func (s Gossip) Name() string {
	s = s.withDefaults()
	return fmt.Sprintf("gossip(%d,%d)", s.Fanout, s.MaxHops)
}

func (s Gossip) withDefaults() Gossip {
	if s.Fanout <= 0 {
		s.Fanout = 6
	}
	if s.MaxHops <= 0 {
		s.MaxHops = 10
	}
	return s
}

// Router implements Strategy.
func (s Gossip) Router(g *Graph, _ *rand.Rand) Router {
	return gossipRouter{g: g, s: s.withDefaults()}
}

type gossipRouter struct {
	g *Graph
	s Gossip
}

func (r gossipRouter) Route(self, from, hop int, rng *rand.Rand, eager, lazy []int) ([]int, []int) {
	if hop >= r.s.MaxHops {
		return eager, lazy
	}
	return sample(r.g, self, from, r.s.Fanout, rng, eager), lazy
}

// sample appends up to k distinct random neighbours of self other than
// skip, in the order drawn.
func sample(g *Graph, self, skip, k int, rng *rand.Rand, dst []int) []int {
	d := g.Degree(self)
	avail := d
	if skip >= 0 && g.Connected(self, skip) {
		avail--
	}
	if k >= avail {
		for i := 0; i < d; i++ {
			if v := g.Neighbor(self, i); v != skip {
				dst = append(dst, v)
			}
		}
		return dst
	}
	start := len(dst)
	for len(dst)-start < k {
		v := g.Neighbor(self, rng.IntN(d))
		if v == skip || contains(dst[start:], v) {
			continue
		}
		dst = append(dst, v)
	}
	return dst
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// EagerLazy is a gossipsub-like strategy: every node keeps a mesh of about
// D neighbours and pushes full messages to them (eager push); to up to
// DLazy of its other neighbours it only announces the message ID (IHAVE),
// and a node missing the message asks for it (IWANT).
type EagerLazy struct {
	D     int // mesh degree; default 6
	DLazy int // neighbours outside the mesh that get IHAVE; default 6
	// FloodPublish makes the origin of a message send it to every
	// neighbour, not only its mesh (gossipsub's flood publishing, which
	// the real node turns on).
	FloodPublish bool
}

// Name implements Strategy.
func (s EagerLazy) Name() string {
	s = s.withDefaults()
	return fmt.Sprintf("gossipsub(%d,%d)", s.D, s.DLazy)
}

func (s EagerLazy) withDefaults() EagerLazy {
	if s.D <= 0 {
		s.D = 6
	}
	if s.DLazy < 0 {
		s.DLazy = 0
	} else if s.DLazy == 0 {
		s.DLazy = 6
	}
	return s
}

// Router implements Strategy. Each node picks D random neighbours; the mesh
// is the symmetric closure of those picks (a GRAFT is answered in kind), so
// a node's mesh degree can exceed D.
func (s EagerLazy) Router(g *Graph, rng *rand.Rand) Router {
	s = s.withDefaults()
	n := g.N()
	pick := make([][]int, n)
	for i := 0; i < n; i++ {
		pick[i] = sample(g, i, -1, s.D, rng, nil)
	}
	b := newBuilder(n)
	for i, ps := range pick {
		for _, j := range ps {
			b.add(i, j)
		}
	}
	return eagerLazyRouter{g: g, mesh: b.graph("mesh"), s: s}
}

type eagerLazyRouter struct {
	g    *Graph
	mesh *Graph
	s    EagerLazy
}

func (r eagerLazyRouter) Route(self, from, hop int, rng *rand.Rand, eager, lazy []int) ([]int, []int) {
	if from < 0 && r.s.FloodPublish {
		return floodRouter{g: r.g}.Route(self, from, hop, rng, eager, lazy)
	}
	for k, d := 0, r.mesh.Degree(self); k < d; k++ {
		if v := r.mesh.Neighbor(self, k); v != from {
			eager = append(eager, v)
		}
	}
	if r.s.DLazy == 0 {
		return eager, lazy
	}
	d := r.g.Degree(self)
	others := d - r.mesh.Degree(self)
	if others <= 0 {
		return eager, lazy
	}
	want := min(r.s.DLazy, others)
	start := len(lazy)
	for tries := 0; len(lazy)-start < want && tries < 4*d+16; tries++ {
		v := r.g.Neighbor(self, rng.IntN(d))
		if v == from || r.mesh.Connected(self, v) || contains(lazy[start:], v) {
			continue
		}
		lazy = append(lazy, v)
	}
	return eager, lazy
}
