package topology

import (
	"fmt"
	"slices"

	"github.com/convergenode/convergenode/internal/prefetch"
)

// Graph is an undirected connection graph over nodes 0..N-1. Neighbour
// lists are sorted and free of duplicates and self loops. A Graph is
// immutable once built; it is safe to share.
type Graph struct {
	// Name says how the graph was made, e.g. "star" or "regular(8)".
	Name string
	adj  [][]int32
	// complete marks the complete graph, whose lists are not stored.
	complete bool
	n        int
}

// Prefetch asks the processor to load node i's neighbour list ahead of a
// read: stage 0 the list's header, stage 1 (which reads the header) the
// list. A hint for a simulator that knows which node comes next; it
// changes nothing.
func (g *Graph) Prefetch(i, stage int) {
	if g.complete || i < 0 || i >= len(g.adj) {
		return
	}
	switch stage {
	case 0:
		prefetch.Of(&g.adj[i])
	case 1:
		prefetch.Slice(g.adj[i])
	}
}

// N returns the number of nodes.
func (g *Graph) N() int { return g.n }

// Complete reports whether every node is connected to every other one.
func (g *Graph) Complete() bool { return g.complete }

// Degree returns the number of neighbours of node i.
func (g *Graph) Degree(i int) int {
	if g.complete {
		return g.n - 1
	}
	return len(g.adj[i])
}

// Neighbor returns the k-th neighbour of node i (0 <= k < Degree(i)), in
// increasing order.
func (g *Graph) Neighbor(i, k int) int {
	if g.complete {
		if k >= i {
			return k + 1
		}
		return k
	}
	return int(g.adj[i][k])
}

// Neighbors appends the neighbours of node i to dst, in increasing order,
// and returns it.
func (g *Graph) Neighbors(i int, dst []int) []int {
	d := g.Degree(i)
	for k := 0; k < d; k++ {
		dst = append(dst, g.Neighbor(i, k))
	}
	return dst
}

// Connected reports whether nodes i and j share an edge.
func (g *Graph) Connected(i, j int) bool {
	if i == j {
		return false
	}
	if g.complete {
		return true
	}
	_, ok := slices.BinarySearch(g.adj[i], int32(j))
	return ok
}

// Edges returns the number of undirected edges.
func (g *Graph) Edges() int {
	if g.complete {
		return g.n * (g.n - 1) / 2
	}
	e := 0
	for _, a := range g.adj {
		e += len(a)
	}
	return e / 2
}

// IsConnected reports whether every node can reach every other one.
func (g *Graph) IsConnected() bool {
	if g.n <= 1 || g.complete {
		return true
	}
	dist := g.BFS(0)
	for _, d := range dist {
		if d < 0 {
			return false
		}
	}
	return true
}

// BFS returns the hop distance from src to every node (-1 if unreachable).
func (g *Graph) BFS(src int) []int {
	dist := make([]int, g.n)
	for i := range dist {
		dist[i] = -1
	}
	dist[src] = 0
	queue := []int{src}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for k, d := 0, g.Degree(u); k < d; k++ {
			v := g.Neighbor(u, k)
			if dist[v] < 0 {
				dist[v] = dist[u] + 1
				queue = append(queue, v)
			}
		}
	}
	return dist
}

// String describes the graph in one line.
func (g *Graph) String() string {
	return fmt.Sprintf("%s: %d nodes, %d edges", g.Name, g.n, g.Edges())
}

// builder collects edges and produces a Graph with sorted, deduplicated lists.
type builder struct {
	n   int
	adj [][]int32
}

func newBuilder(n int) *builder {
	return &builder{n: n, adj: make([][]int32, n)}
}

// add adds the undirected edge {i, j}; self loops are ignored.
func (b *builder) add(i, j int) {
	if i == j {
		return
	}
	b.adj[i] = append(b.adj[i], int32(j))
	b.adj[j] = append(b.adj[j], int32(i))
}

func (b *builder) graph(name string) *Graph {
	for i := range b.adj {
		slices.Sort(b.adj[i])
		b.adj[i] = slices.Compact(b.adj[i])
		b.adj[i] = slices.Clip(b.adj[i])
	}
	return &Graph{Name: name, adj: b.adj, n: b.n}
}

// FromEdges builds a graph from an explicit edge list. Duplicate edges and
// self loops are dropped. It panics if an endpoint is out of range.
func FromEdges(name string, n int, edges [][2]int) *Graph {
	b := newBuilder(n)
	for _, e := range edges {
		if e[0] < 0 || e[0] >= n || e[1] < 0 || e[1] >= n {
			panic(fmt.Sprintf("topology: edge %v out of range for %d nodes", e, n))
		}
		b.add(e[0], e[1])
	}
	return b.graph(name)
}
