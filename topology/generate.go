package topology

import (
	"fmt"
	"math/rand/v2"
)

// Star connects node 0 (the hub, a relay) to every other node.
func Star(n int) *Graph {
	b := newBuilder(n)
	for i := 1; i < n; i++ {
		b.add(0, i)
	}
	return b.graph("star")
}

// Mesh connects every node to every other node. Its neighbour lists are not
// stored, so a large mesh costs no memory; forwarding over it still costs
// n-1 messages per node.
func Mesh(n int) *Graph {
	return &Graph{Name: "mesh", n: n, complete: true}
}

// Ring connects node i to nodes i±1 .. i±k (mod n); k=1 is a plain ring.
func Ring(n, k int) *Graph {
	if k < 1 {
		k = 1
	}
	b := newBuilder(n)
	for i := 0; i < n; i++ {
		for j := 1; j <= k; j++ {
			b.add(i, (i+j)%n)
		}
	}
	name := "ring"
	if k > 1 {
		name = fmt.Sprintf("ring(%d)", k)
	}
	return b.graph(name)
}

// Tree builds a complete tree of the given branching factor rooted at node
// 0: the parent of node i is (i-1)/branching.
func Tree(n, branching int) *Graph {
	if branching < 1 {
		branching = 2
	}
	b := newBuilder(n)
	for i := 1; i < n; i++ {
		b.add(i, (i-1)/branching)
	}
	return b.graph(fmt.Sprintf("tree(%d)", branching))
}

// RandomRegular builds a random d-regular graph with the configuration
// model: stubs are shuffled and paired, then self loops and repeated edges
// are repaired by random edge switches. n*d must be even and d < n; when
// d >= n it returns Mesh(n).
func RandomRegular(n, d int, rng *rand.Rand) *Graph {
	if d >= n-1 {
		return Mesh(n)
	}
	if d < 1 {
		d = 1
	}
	if n*d%2 == 1 {
		d-- // keep the stub count even
	}
	stubs := make([]int32, 0, n*d)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			stubs = append(stubs, int32(i))
		}
	}
	rng.Shuffle(len(stubs), func(i, j int) { stubs[i], stubs[j] = stubs[j], stubs[i] })
	m := len(stubs) / 2
	ea := make([]int32, m)
	eb := make([]int32, m)
	count := make(map[uint64]int32, m)
	key := func(a, b int32) uint64 {
		if a > b {
			a, b = b, a
		}
		return uint64(a)<<32 | uint64(b)
	}
	for e := 0; e < m; e++ {
		ea[e], eb[e] = stubs[2*e], stubs[2*e+1]
		count[key(ea[e], eb[e])]++
	}
	bad := func(e int) bool { return ea[e] == eb[e] || count[key(ea[e], eb[e])] > 1 }
	// Repair: switch each bad edge with a random other edge until it is fine.
	for pass := 0; pass < 100; pass++ {
		fixed := true
		for e := 0; e < m; e++ {
			for tries := 0; bad(e) && tries < 1000; tries++ {
				fixed = false
				f := rng.IntN(m)
				if f == e {
					continue
				}
				a, b, c, dd := ea[e], eb[e], ea[f], eb[f]
				if rng.IntN(2) == 0 {
					c, dd = dd, c
				}
				// Proposed: {a,c} and {b,dd}.
				if a == c || b == dd || count[key(a, c)] > 0 || count[key(b, dd)] > 0 || key(a, c) == key(b, dd) {
					continue
				}
				count[key(a, b)]--
				count[key(ea[f], eb[f])]--
				ea[e], eb[e], ea[f], eb[f] = a, c, b, dd
				count[key(a, c)]++
				count[key(b, dd)]++
			}
		}
		if fixed {
			break
		}
	}
	bl := newBuilder(n)
	for e := 0; e < m; e++ {
		bl.add(int(ea[e]), int(eb[e]))
	}
	return bl.graph(fmt.Sprintf("regular(%d)", d))
}

// SmallWorld builds a Watts–Strogatz graph: a ring where each node is
// joined to its k nearest neighbours (k/2 on each side), and each edge is
// rewired to a uniformly random node with probability beta.
func SmallWorld(n, k int, beta float64, rng *rand.Rand) *Graph {
	half := k / 2
	if half < 1 {
		half = 1
	}
	if 2*half >= n {
		return Mesh(n)
	}
	type edge struct{ a, b int32 }
	edges := make([]edge, 0, n*half)
	has := make(map[uint64]bool, n*half)
	key := func(a, b int32) uint64 {
		if a > b {
			a, b = b, a
		}
		return uint64(a)<<32 | uint64(b)
	}
	for i := 0; i < n; i++ {
		for j := 1; j <= half; j++ {
			e := edge{int32(i), int32((i + j) % n)}
			edges = append(edges, e)
			has[key(e.a, e.b)] = true
		}
	}
	for idx := range edges {
		if rng.Float64() >= beta {
			continue
		}
		e := edges[idx]
		for tries := 0; tries < 16; tries++ {
			t := int32(rng.IntN(n))
			if t == e.a || has[key(e.a, t)] {
				continue
			}
			delete(has, key(e.a, e.b))
			has[key(e.a, t)] = true
			edges[idx].b = t
			break
		}
	}
	b := newBuilder(n)
	for _, e := range edges {
		b.add(int(e.a), int(e.b))
	}
	return b.graph(fmt.Sprintf("smallworld(%d,%.2g)", 2*half, beta))
}
