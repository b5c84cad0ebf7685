package crdt

import (
	"errors"
	"fmt"
	mathbits "math/bits"
	"slices"
	"strings"
	"sync"

	"github.com/convergenode/convergenode/internal/compact"
)

// Graph errors.
var (
	ErrDuplicate      = errors.New("crdt: duplicate change")
	ErrMissingParents = errors.New("crdt: missing parents")
	ErrUnknownVersion = errors.New("crdt: unknown version")
)

// Version is a set of heads: the IDs of changes that no other change of the
// set depends on. It is sorted bytewise and has no duplicates. The empty
// Version is the empty document.
type Version []ID

// NewVersion returns the Version holding ids (copied, sorted, deduplicated).
func NewVersion(ids ...ID) Version {
	v := make(Version, len(ids))
	copy(v, ids)
	return Version(SortIDs(v))
}

// Contains reports whether id is one of v's heads.
func (v Version) Contains(id ID) bool {
	_, ok := slices.BinarySearchFunc(v, id, ID.Compare)
	return ok
}

// Equal reports whether v and o hold the same heads.
func (v Version) Equal(o Version) bool {
	return slices.Equal(v, o)
}

// String formats v as short IDs in brackets, for logs and golden files.
func (v Version) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, id := range v {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(id.Short())
	}
	b.WriteByte(']')
	return b.String()
}

// gnode is one change in the graph. Nodes are numbered in the order they
// were added; since parents must be present first, that order is a causal
// order, and a node's parents have smaller numbers.
type gnode struct {
	c       *Change // its ID is c.id (see Change.id)
	lamport uint64  // c.Lamport (copied for cache-friendly comparisons)
	height  uint32  // 1 + max height of the parents: a strict ancestor has a smaller height
	pstart  uint32  // the parents' node numbers start at parents[pstart] and end where the next node's start
}

// Nodes live in fixed-size chunks, so growing a large graph never copies
// them; only the first chunk grows (by a quarter, see compact.Grow) up to its
// full size.
const (
	chunkBits = 12
	chunkSize = 1 << chunkBits
)

// Graph is the hash DAG of changes: each change names its parents by ID, and
// a change can only be added after all its parents.
//
// Graph is not safe for concurrent use with Add; its read methods (all but
// Resolve and MaxParentLamport, which keep a lookup for Add) do not modify
// it, so they may run concurrently with each other (for example under a
// read lock).
type Graph struct {
	// index maps every ID to its node number in an 8-byte slot, by the
	// ID's first 4 bytes (an ID whose prefix another took first, by
	// chance or by grinding, goes to a collision map; see compact.Index).
	index   compact.Index[ID]
	chunks  [][]gnode
	n       int
	parents []int32 // parent node numbers of every node, concatenated
	heads   Version

	// resolved holds the node numbers of the parents of resolvedFor, the
	// last change whose parents resolve found all present, and
	// resolvedHeight the largest of their heights. A node's number never
	// changes, so they stay right until the next resolve: the gate's
	// Resolve and the Add that follows look the parents up once.
	resolved       []int32
	resolvedFor    *Change
	resolvedHeight uint32
}

// node returns node i.
func (g *Graph) node(i int32) *gnode {
	return &g.chunks[i>>chunkBits][i&(chunkSize-1)]
}

// nodeParents returns the parent node numbers of node i.
func (g *Graph) nodeParents(i int32) []int32 {
	c, j := g.chunks[i>>chunkBits], int(i&(chunkSize-1))
	start, end := c[j].pstart, uint32(len(g.parents))
	switch {
	case int(i)+1 >= g.n:
	case j+1 < len(c):
		end = c[j+1].pstart
	default:
		end = g.chunks[(i+1)>>chunkBits][0].pstart
	}
	return g.parents[start:end:end]
}

// find returns the node number of id.
func (g *Graph) find(id ID) (int32, bool) {
	i, ok := g.index.Candidate(&id)
	if ok && g.node(i).c.id != id {
		i, ok = g.index.Collided(&id)
	}
	if !ok {
		return -1, false
	}
	return i, true
}

// lookup returns the node of id, or nil.
func (g *Graph) lookup(id ID) *gnode {
	i, ok := g.find(id)
	if !ok {
		return nil
	}
	return g.node(i)
}

// NewGraph returns an empty graph.
func NewGraph() *Graph {
	return &Graph{}
}

// Len returns the number of changes in g.
func (g *Graph) Len() int { return g.n }

// Has reports whether g holds the change id.
func (g *Graph) Has(id ID) bool {
	_, ok := g.find(id)
	return ok
}

// Index returns the number of the change id in g, if g holds it. Changes
// are numbered from 0 in the order they were added, without gaps (an Add
// that fails takes no number), and a change is never renumbered: since its
// parents must be added first, they have smaller numbers, so the numbering
// is a causal order. Callers may keep per-change data in a slice indexed
// by it.
func (g *Graph) Index(id ID) (int32, bool) {
	return g.find(id)
}

// Node returns the ID and the change of node i (0 <= i < Len()), the
// inverse of Index. The change must not be modified.
func (g *Graph) Node(i int32) (ID, *Change) {
	if i < 0 || int(i) >= g.n {
		panic(fmt.Sprintf("crdt: graph node %d out of range [0, %d)", i, g.n))
	}
	n := g.node(i)
	return n.c.id, n.c
}

// Get returns the change id, if g holds it. The change must not be modified.
func (g *Graph) Get(id ID) (*Change, bool) {
	n := g.lookup(id)
	if n == nil {
		return nil, false
	}
	return n.c, true
}

// Heads returns the current heads of g (a copy, sorted).
func (g *Graph) Heads() Version {
	return slices.Clone(g.heads)
}

// AppendHeads appends the current heads of g, sorted, to dst and returns
// the extended slice: Heads without an allocation when dst has room.
func (g *Graph) AppendHeads(dst []ID) []ID {
	return append(dst, g.heads...)
}

// Missing returns the parents of c that g does not hold, sorted.
func (g *Graph) Missing(c *Change) []ID {
	var out []ID
	for _, p := range c.Parents {
		if !g.Has(p) {
			out = append(out, p)
		}
	}
	return out
}

// Resolve is Missing for a change about to be checked and added (the
// gate's path): it also keeps the parents' node numbers, so that
// MaxParentLamport and the Add of c look them up no more. Unlike Missing,
// Resolve and MaxParentLamport write to g (that memo), so they must not
// run concurrently with any other method.
func (g *Graph) Resolve(c *Change) []ID {
	if g.resolve(c) {
		return nil
	}
	var out []ID
	for i, p := range c.Parents {
		if g.resolved[i] < 0 {
			out = append(out, p)
		}
	}
	return out
}

// MaxParentLamport returns the largest Lamport time of an op of c's
// parents (0 if c has none), and false if g lacks a parent. Like Resolve,
// it keeps the parents' node numbers for an Add of c that follows, and
// must not run concurrently with any other method.
func (g *Graph) MaxParentLamport(c *Change) (uint64, bool) {
	if !g.resolve(c) {
		return 0, false
	}
	var m uint64
	for _, v := range g.resolved {
		m = max(m, g.node(v).c.LastLamport())
	}
	return m, true
}

// resolve looks up the parents of c into g.resolved (-1 for a parent g
// does not hold) and reports whether g holds them all, in which case it
// also sets resolvedFor and resolvedHeight. The lookups go in batches
// (the index's candidates, then the candidates' nodes) so that their
// cache misses overlap.
func (g *Graph) resolve(c *Change) bool {
	if g.resolvedFor == c {
		return true
	}
	g.resolvedFor = nil
	ps := c.Parents
	g.resolved = slices.Grow(g.resolved[:0], len(ps))[:len(ps)]
	idx := g.resolved
	g.index.Candidates(ps, idx)
	// Read each candidate's node (independent loads, so their misses
	// overlap) before comparing IDs, which then hit the cache.
	var height uint32
	for _, v := range idx {
		if v >= 0 {
			height = max(height, g.node(v).height)
		}
	}
	all, fixed := true, false
	for i := range ps {
		v := idx[i]
		if v >= 0 && g.node(v).c.id != ps[i] {
			// Another ID took this one's prefix: the height read
			// above was that node's.
			if w, ok := g.index.Collided(&ps[i]); ok {
				v = w
			} else {
				v = -1
			}
			idx[i], fixed = v, true
		}
		all = all && v >= 0
	}
	if fixed && all {
		height = 0
		for _, v := range idx {
			height = max(height, g.node(v).height)
		}
	}
	if all {
		g.resolvedFor, g.resolvedHeight = c, height
	}
	return all
}

// Add adds the change c with ID id. The caller vouches that id is c's ID
// and that c is valid (as DecodeChange and Change.Validate ensure); Add
// only checks what the graph relies on (sorted, unique parents). Every
// parent must already be in g (otherwise the error wraps
// ErrMissingParents and names them); a change already in g gives
// ErrDuplicate. g keeps c: it must not be modified afterwards. Add records
// id in c, where the graph reads it from; a frozen c that does not carry
// id already (Change.FreezeWithID) is not written to: g keeps a copy.
func (g *Graph) Add(id ID, c *Change) error {
	_, err := g.add(id, c)
	return err
}

// Reserve makes room for n more changes (their nodes and index entries,
// and reserveParents parents each; more parents grow the parent list as
// usual), so that adding them does not grow the graph step by step. It is a size
// hint: a simulation holds thousands of graphs, and growing each one
// copies its nodes several times over. It never changes a result.
func (g *Graph) Reserve(n int) {
	if n <= 0 {
		return
	}
	if g.n < chunkSize {
		if len(g.chunks) == 0 {
			g.chunks = append(g.chunks, nil)
		}
		g.chunks[0] = compact.Grow(g.chunks[0], min(n, chunkSize-g.n), chunkSize)
	}
	g.parents = compact.Grow(g.parents, reserveParents*n, 0)
	g.index.Reserve(n)
}

// reserveParents is how many parents per change Reserve makes room for:
// a change names the heads its author saw, several where writers are
// concurrent (in the simulator's runs of 100 changes, 5.5 on average at
// 10,000 nodes, 6.0 at 30,000, 6.55 at 100,000, where 4 each left the
// list to grow three times by a quarter). More grow it once (growParents).
const reserveParents = 6

// growParents makes room for k more parents. While the first chunk has
// room for more nodes (Reserve's hint, or its last growth), it sizes the
// list for all of them at the average number of parents so far, so that
// the list grows once rather than a quarter at a time.
func (g *Graph) growParents(k int) {
	need := len(g.parents) + k
	if g.n >= 8 && g.n < chunkSize && len(g.chunks) > 0 {
		if room := cap(g.chunks[0]); room > g.n+1 {
			need = max(need, need*room/(g.n+1)*17/16)
		}
	}
	g.parents = compact.Grow(g.parents, need-len(g.parents), 0)
}

func (g *Graph) add(id ID, c *Change) (int32, error) {
	if c == nil {
		return -1, fmt.Errorf("%w: nil change", ErrInvalid)
	}
	if _, ok := g.find(id); ok {
		return -1, fmt.Errorf("%w: %s", ErrDuplicate, id.Short())
	}
	if g.n >= 1<<31-1 || len(g.parents)+len(c.Parents) >= 1<<32-1 {
		return -1, fmt.Errorf("%w: graph full", ErrTooLarge)
	}
	for k := 1; k < len(c.Parents); k++ {
		if c.Parents[k-1].Compare(c.Parents[k]) >= 0 {
			return -1, fmt.Errorf("%w: change %s", ErrParentOrder, id.Short())
		}
	}
	if !g.resolve(c) {
		return -1, fmt.Errorf("%w: change %s lacks %s", ErrMissingParents, id.Short(), shortList(g.Missing(c)))
	}
	if c.id != id {
		if c.frozen {
			// Shared, so not ours to write: keep a copy that knows its ID.
			cc := *c
			cc.id = id
			c = &cc
		} else {
			c.id = id
		}
	}
	n := gnode{c: c, lamport: c.Lamport, height: g.resolvedHeight + 1, pstart: uint32(len(g.parents))}
	if len(g.parents)+len(c.Parents) > cap(g.parents) {
		g.growParents(len(c.Parents))
	}
	g.parents = append(g.parents, g.resolved...)
	i := int32(g.n)
	switch {
	case g.n < chunkSize:
		// The first chunk grows, so a small graph does not pay for a
		// whole chunk (a simulation holds thousands of them).
		if len(g.chunks) == 0 {
			g.chunks = append(g.chunks, nil)
		}
		if c := g.chunks[0]; g.n == cap(c) {
			g.chunks[0] = compact.Grow(c, 1, chunkSize)
		}
		g.chunks[0] = append(g.chunks[0], n)
	case g.n&(chunkSize-1) == 0:
		g.chunks = append(g.chunks, make([]gnode, chunkSize))
		fallthrough
	default:
		*g.node(i) = n
	}
	g.n++
	g.index.Add(&id, i)
	// Heads: drop the parents, add id.
	if len(c.Parents) > 0 {
		h := g.heads[:0]
		for _, x := range g.heads {
			if !containsID(c.Parents, x) {
				h = append(h, x)
			}
		}
		clear(g.heads[len(h):])
		g.heads = h
	}
	pos, _ := slices.BinarySearchFunc(g.heads, id, ID.Compare)
	g.heads = slices.Insert(g.heads, pos, id)
	return i, nil
}

// containsID reports whether the sorted ids hold x.
func containsID(ids []ID, x ID) bool {
	if len(ids) <= 8 {
		for i := range ids {
			if ids[i] == x {
				return true
			}
		}
		return false
	}
	_, ok := slices.BinarySearchFunc(ids, x, ID.Compare)
	return ok
}

func shortList(ids []ID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.Short()
	}
	return strings.Join(s, ",")
}

// IsAncestor reports whether x == y or x is in the causal past of y. It is
// false if either change is unknown (unless x == y). The search walks back
// from y and prunes every change whose height (longest path from a root) is
// not above x's: a strict ancestor always has a smaller height.
func (g *Graph) IsAncestor(x, y ID) bool {
	if x == y {
		return true
	}
	xi, ok1 := g.find(x)
	yi, ok2 := g.find(y)
	if !ok1 || !ok2 {
		return false
	}
	return g.isAncestor(xi, yi)
}

func (g *Graph) isAncestor(xi, yi int32) bool {
	return g.inPast(xi, []int32{yi})
}

// InPast reports whether x is one of v's heads or in the causal past of one
// of them: whether a replica at version v has x. Heads of v that g does not
// hold are ignored; it is false if g lacks x. It searches from all heads at
// once, sharing one visited set, so it costs no more than one IsAncestor
// query over the same region.
func (g *Graph) InPast(x ID, v Version) bool {
	xi, ok := g.find(x)
	if !ok {
		return false
	}
	ys := make([]int32, 0, len(v))
	for _, id := range v {
		if yi, ok := g.find(id); ok {
			ys = append(ys, yi)
		}
	}
	return g.inPast(xi, ys)
}

func (g *Graph) inPast(xi int32, ys []int32) bool {
	hx := g.node(xi).height
	var stackBuf [64]int32
	stack := stackBuf[:0]
	top := xi
	for _, yi := range ys {
		if yi == xi {
			return true
		}
		// Parents are added before children (an ancestor has a smaller
		// node number), and a strict ancestor has a smaller height.
		if yi > xi && g.node(yi).height > hx {
			stack = append(stack, yi)
			top = max(top, yi)
		}
	}
	if len(stack) == 0 {
		return false
	}
	// Every node explored lies strictly between x and the highest start in
	// node order.
	var seen visitSet
	seen.init(xi, top-xi+1)
	for _, yi := range stack {
		seen.add(yi)
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, p := range g.nodeParents(i) {
			if p == xi {
				return true
			}
			if p < xi || g.node(p).height <= hx {
				continue
			}
			if seen.add(p) {
				stack = append(stack, p)
			}
		}
	}
	return false
}

// visitSet is a set of node numbers in [base, base+size): a bitset, on
// the stack when the range is small.
type visitSet struct {
	base  int32
	bits  []uint64
	local [8]uint64
}

func (s *visitSet) init(base, size int32) {
	s.base = base
	if n := (int(size) + 63) / 64; n <= len(s.local) {
		s.bits = s.local[:n]
	} else {
		s.bits = make([]uint64, n)
	}
}

// add adds i and reports whether it was new.
func (s *visitSet) add(i int32) bool {
	i -= s.base
	w, m := i>>6, uint64(1)<<(i&63)
	if s.bits[w]&m != 0 {
		return false
	}
	s.bits[w] |= m
	return true
}

// pastSet returns a bitset (indexed by node) of the causal past of v,
// including v's heads. Unknown heads are ignored.
func (g *Graph) pastSet(v Version) []uint64 {
	set := make([]uint64, (g.n+63)/64)
	var stack []int32
	push := func(i int32) {
		if set[i>>6]&(1<<(i&63)) == 0 {
			set[i>>6] |= 1 << (i & 63)
			stack = append(stack, i)
		}
	}
	for _, id := range v {
		if i, ok := g.find(id); ok {
			push(i)
		}
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, p := range g.nodeParents(i) {
			push(p)
		}
	}
	return set
}

// Since returns the changes of g that are not in the causal past of v (what
// a peer at version v lacks), in a causal order: every change comes after
// its parents. The order is deterministic for a given graph content
// (ascending height, then ID). Heads of v that g does not hold are ignored.
//
// It walks back from g's heads in order of decreasing height, painting the
// past of v as it goes, and stops once only painted changes are left, so
// its cost grows with the answer, not with the size of g.
func (g *Graph) Since(v Version) []ID {
	if len(v) == 0 {
		return g.Topo()
	}
	sc := sincePool.Get().(*sinceScratch)
	out := g.since(v, sc, sc.out[:0])
	g.sortCausal(out)
	ids := make([]ID, len(out))
	for k, i := range out {
		ids[k] = g.node(i).c.id
	}
	sc.out = out[:0]
	sincePool.Put(sc)
	return ids
}

// AppendSince appends the node numbers (see Node) of the changes Since(v)
// returns to dst, in no particular order (the same for the same graph and
// v), and returns it. It is for callers that need the set, not the order:
// it neither sorts nor allocates beyond growing dst.
func (g *Graph) AppendSince(dst []int32, v Version) []int32 {
	if len(v) == 0 {
		for i := range g.n {
			dst = append(dst, int32(i))
		}
		return dst
	}
	sc := sincePool.Get().(*sinceScratch)
	dst = g.since(v, sc, dst)
	sincePool.Put(sc)
	return dst
}

// sinceScratch is the working memory of since, pooled: state holds each
// node's queued and painted bits (zero between calls), touched the nodes
// whose state is set, so that clearing costs as much as the walk.
type sinceScratch struct {
	state   []uint8
	touched []int32
	heap    []int32
	out     []int32
}

var sincePool = sync.Pool{New: func() any { return new(sinceScratch) }}

// since appends to out the node numbers of the changes not in the past of
// the non-empty v, unordered. It walks back from g's heads in order of
// decreasing height, painting the past of v as it goes, and stops once only
// painted changes are left.
func (g *Graph) since(v Version, sc *sinceScratch, out []int32) []int32 {
	const (
		queued  = 1
		painted = 2
	)
	if len(sc.state) < g.n {
		sc.state = make([]uint8, g.n+g.n/4)
	}
	state := sc.state
	touched := sc.touched[:0]
	h := nodeHeap{g: g, a: sc.heap[:0]}
	set := func(i int32, s uint8) {
		if state[i] == 0 {
			touched = append(touched, i)
		}
		state[i] = s
	}
	unpainted := 0
	for _, id := range v {
		if i, ok := g.find(id); ok && state[i] == 0 {
			set(i, queued|painted)
			h.push(i)
		}
	}
	for _, id := range g.heads {
		i, _ := g.find(id)
		if state[i] == 0 {
			set(i, queued)
			h.push(i)
			unpainted++
		}
	}
	for unpainted > 0 && len(h.a) > 0 {
		i := h.pop()
		s := state[i]
		p := s&painted != 0
		if !p {
			unpainted--
			out = append(out, i)
		}
		for _, q := range g.nodeParents(i) {
			qs := state[q]
			switch {
			case qs == 0:
				if p {
					set(q, queued|painted)
				} else {
					set(q, queued)
					unpainted++
				}
				h.push(q)
			case p && qs&painted == 0:
				state[q] = qs | painted
				unpainted--
			}
		}
	}
	for _, i := range touched {
		state[i] = 0
	}
	sc.touched, sc.heap = touched[:0], h.a[:0]
	return out
}

// Topo returns every change of g in a deterministic topological order:
// ascending height, then ID. Two graphs with the same changes give the same
// order, whatever order the changes were added in.
func (g *Graph) Topo() []ID {
	idx := make([]int32, g.n)
	for i := range idx {
		idx[i] = int32(i)
	}
	g.sortCausal(idx)
	ids := make([]ID, len(idx))
	for k, i := range idx {
		ids[k] = g.node(i).c.id
	}
	return ids
}

// Past returns the changes in the causal past of v (v's known heads
// included), in the same order as Topo. It fails with ErrUnknownVersion if
// g lacks one of v's heads.
func (g *Graph) Past(v Version) ([]ID, error) {
	for _, id := range v {
		if !g.Has(id) {
			return nil, fmt.Errorf("%w: head %s not in graph", ErrUnknownVersion, id.Short())
		}
	}
	set := g.pastSet(v)
	var idx []int32
	for w, bits := range set {
		for bits != 0 {
			b := mathbits.TrailingZeros64(bits)
			bits &^= 1 << b
			idx = append(idx, int32(w*64+b))
		}
	}
	g.sortCausal(idx)
	ids := make([]ID, len(idx))
	for k, i := range idx {
		ids[k] = g.node(i).c.id
	}
	return ids, nil
}

func (g *Graph) sortCausal(idx []int32) {
	slices.SortFunc(idx, func(a, b int32) int {
		na, nb := g.node(a), g.node(b)
		ha, hb := na.height, nb.height
		if ha != hb {
			if ha < hb {
				return -1
			}
			return 1
		}
		return na.c.id.Compare(nb.c.id)
	})
}

// nodeHeap is a max-heap of node indexes by height (then index).
type nodeHeap struct {
	g *Graph
	a []int32
}

func (h *nodeHeap) less(i, j int) bool {
	ni, nj := h.g.node(h.a[i]), h.g.node(h.a[j])
	if ni.height != nj.height {
		return ni.height > nj.height
	}
	return h.a[i] > h.a[j]
}

func (h *nodeHeap) push(x int32) {
	h.a = append(h.a, x)
	j := len(h.a) - 1
	for j > 0 {
		p := (j - 1) / 2
		if !h.less(j, p) {
			break
		}
		h.a[j], h.a[p] = h.a[p], h.a[j]
		j = p
	}
}

func (h *nodeHeap) pop() int32 {
	top := h.a[0]
	last := len(h.a) - 1
	h.a[0] = h.a[last]
	h.a = h.a[:last]
	j := 0
	for {
		l := 2*j + 1
		if l >= len(h.a) {
			break
		}
		m := l
		if r := l + 1; r < len(h.a) && h.less(r, l) {
			m = r
		}
		if !h.less(m, j) {
			break
		}
		h.a[j], h.a[m] = h.a[m], h.a[j]
		j = m
	}
	return top
}
