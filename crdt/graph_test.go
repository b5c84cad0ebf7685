package crdt

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// mk builds a valid change by author a with the given parents, filling
// lamport from the parents found in g (or 1).
func mkChange(g *Graph, a byte, seq uint64, prev ID, parents ...ID) (*Change, ID) {
	lam := uint64(1)
	for _, p := range parents {
		if c, ok := g.Get(p); ok && c.LastLamport()+1 > lam {
			lam = c.LastLamport() + 1
		}
	}
	c := &Change{
		Doc: "d", Author: Author{a}, Seq: seq, Lamport: lam, Prev: prev,
		Parents: SortIDs(slices.Clone(parents)),
		Ops:     []Op{Update("t", "r", "c", Int(int64(seq)))},
	}
	return c, c.MustID()
}

func TestGraphBasics(t *testing.T) {
	g := NewGraph()
	a1, ida1 := mkChange(g, 1, 1, ZeroID)
	if err := g.Add(ida1, a1); err != nil {
		t.Fatal(err)
	}
	if err := g.Add(ida1, a1); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("dup: %v", err)
	}
	b1, idb1 := mkChange(g, 2, 1, ZeroID)
	must(t, g.Add(idb1, b1))
	a2, ida2 := mkChange(g, 1, 2, ida1, ida1, idb1)
	b2, idb2 := mkChange(g, 2, 2, idb1, idb1)
	// Missing parent.
	x, idx := mkChange(g, 3, 1, ZeroID, ida2)
	if err := g.Add(idx, x); !errors.Is(err, ErrMissingParents) {
		t.Fatalf("missing: %v", err)
	}
	if m := g.Missing(x); len(m) != 1 || m[0] != ida2 {
		t.Fatalf("Missing = %v", m)
	}
	must(t, g.Add(ida2, a2))
	must(t, g.Add(idb2, b2))
	if g.Len() != 4 {
		t.Fatal(g.Len())
	}
	if h := g.Heads(); !h.Equal(NewVersion(ida2, idb2)) {
		t.Fatalf("heads %v", h)
	}
	for _, tc := range []struct {
		x, y ID
		want bool
	}{
		{ida1, ida2, true}, {idb1, ida2, true}, {idb1, idb2, true}, {ida1, idb2, false},
		{ida2, ida1, false}, {ida2, idb2, false}, {ida1, ida1, true}, {idx, ida2, false},
	} {
		if got := g.IsAncestor(tc.x, tc.y); got != tc.want {
			t.Errorf("IsAncestor(%s,%s)=%v", tc.x.Short(), tc.y.Short(), got)
		}
	}
	if got := g.Since(NewVersion(ida1)); !slices.Equal(got, sortedByTopo(g, idb1, ida2, idb2)) {
		t.Errorf("Since(a1) = %v", Version(got))
	}
	if got := g.Since(g.Heads()); len(got) != 0 {
		t.Errorf("Since(heads) = %v", got)
	}
	if got := g.Since(NewVersion(idb2, idx)); !slices.Equal(got, []ID{ida1, ida2}) {
		t.Errorf("Since(b2,unknown) = %v", Version(got))
	}
	if got := g.Since(nil); len(got) != 4 {
		t.Errorf("Since(nil) = %v", got)
	}
	topo := g.Topo()
	pos := map[ID]int{}
	for i, id := range topo {
		pos[id] = i
	}
	for _, id := range topo {
		c, _ := g.Get(id)
		for _, p := range c.Parents {
			if pos[p] >= pos[id] {
				t.Errorf("topo order broken")
			}
		}
	}
	past, err := g.Past(NewVersion(ida2))
	if err != nil || len(past) != 3 {
		t.Errorf("Past = %v %v", past, err)
	}
	if _, err := g.Past(NewVersion(idx)); !errors.Is(err, ErrUnknownVersion) {
		t.Errorf("Past unknown: %v", err)
	}
}

func sortedByTopo(g *Graph, ids ...ID) []ID {
	var out []ID
	for _, id := range g.Topo() {
		if slices.Contains(ids, id) {
			out = append(out, id)
		}
	}
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestGraphRejectsUnsortedParents(t *testing.T) {
	g := NewGraph()
	a, ida := mkChange(g, 1, 1, ZeroID)
	b, idb := mkChange(g, 2, 1, ZeroID)
	must(t, g.Add(ida, a))
	must(t, g.Add(idb, b))
	c, idc := mkChange(g, 3, 1, ZeroID, ida, idb)
	c.Parents[0], c.Parents[1] = c.Parents[1], c.Parents[0]
	if err := g.Add(idc, c); !errors.Is(err, ErrParentOrder) {
		t.Fatalf("unsorted parents: %v", err)
	}
	if g.Len() != 2 || len(g.Heads()) != 2 {
		t.Fatal("failed add changed the graph")
	}
}

// TestGraphQueriesRandom checks IsAncestor, InPast, Since and Past against
// brute force on random histories, and AppendSince against Since.
func TestGraphQueriesRandom(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		rng := rand.New(rand.NewPCG(seed, 5))
		h := genHistory(t, rng, 2+rng.IntN(4), 40+rng.IntN(60))
		d := deliver(t, rng, h.changes)
		g := d.Graph()
		past := func(v Version) map[ID]bool {
			m := map[ID]bool{}
			for _, hc := range pastOf(h.changes, v) {
				m[hc.id] = true
			}
			return m
		}
		for range 40 {
			x := h.changes[rng.IntN(len(h.changes))].id
			y := h.changes[rng.IntN(len(h.changes))].id
			if got, want := g.IsAncestor(x, y), past(NewVersion(y))[x]; got != want {
				t.Fatalf("seed %d: IsAncestor = %v, want %v", seed, got, want)
			}
			known := NewVersion(y, h.changes[rng.IntN(len(h.changes))].id)
			v := NewVersion(append(slices.Clone(known), ID{0xff})...) // an unknown head is ignored
			pv := past(known)
			if got := g.InPast(x, v); got != pv[x] {
				t.Fatalf("seed %d: InPast = %v, want %v", seed, got, pv[x])
			}
			since := g.Since(v)
			pos := map[ID]int{}
			for i, id := range since {
				pos[id] = i
			}
			for _, hc := range h.changes {
				_, in := pos[hc.id]
				if in == pv[hc.id] {
					t.Fatalf("seed %d: Since wrong about %s", seed, hc.id.Short())
				}
				if in {
					for _, p := range hc.c.Parents {
						if pi, ok := pos[p]; ok && pi > pos[hc.id] {
							t.Fatalf("seed %d: Since not in causal order", seed)
						}
					}
				}
			}
			for _, w := range []Version{v, nil, g.Heads()} {
				want := g.Since(w)
				got := g.AppendSince([]int32{-1}, w)
				if got[0] != -1 || len(got)-1 != len(want) {
					t.Fatalf("seed %d: AppendSince(%v) = %d nodes after dst, Since %d", seed, w, len(got)-1, len(want))
				}
				set := map[ID]bool{}
				for _, i := range got[1:] {
					id, _ := g.Node(i)
					set[id] = true
				}
				for _, id := range want {
					if !set[id] {
						t.Fatalf("seed %d: AppendSince lacks %s", seed, id.Short())
					}
				}
			}
		}
	}
}

// TestGraphIndex checks Index: the changes are numbered 0, 1, 2... in the
// order they were added (failed Adds take no number), across chunk
// boundaries, and parents always have smaller numbers than their children.
func TestGraphIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	g := NewGraph()
	var ids []ID
	for k := range chunkSize + 300 {
		var parents []ID
		for range rng.IntN(3) {
			if len(ids) > 0 {
				p := ids[rng.IntN(len(ids))]
				if !slices.Contains(parents, p) {
					parents = append(parents, p)
				}
			}
		}
		// One author per change (seq 1), so no two changes are equal.
		c, _ := mkChange(g, 0, 1, ZeroID, parents...)
		c.Author = Author{byte(k), byte(k >> 8), 1}
		id := c.MustID()
		if k%97 == 3 {
			// A change whose parent is missing takes no number.
			x, idx := mkChange(g, 9, 1, ZeroID, ID{0xfe, byte(k)})
			if err := g.Add(idx, x); !errors.Is(err, ErrMissingParents) {
				t.Fatalf("missing parent: %v", err)
			}
			if _, ok := g.Index(idx); ok {
				t.Fatal("a refused change has an index")
			}
		}
		must(t, g.Add(id, c))
		if k%89 == 5 {
			if err := g.Add(id, c); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("dup: %v", err)
			}
		}
		ids = append(ids, id)
	}
	if g.Len() != len(ids) {
		t.Fatalf("Len = %d, want %d", g.Len(), len(ids))
	}
	for want, id := range ids {
		i, ok := g.Index(id)
		if !ok || int(i) != want {
			t.Fatalf("Index(%s) = %d, %v; want %d", id.Short(), i, ok, want)
		}
		c, _ := g.Get(id)
		for _, p := range c.Parents {
			if pi, _ := g.Index(p); pi >= i {
				t.Fatalf("parent %s has index %d, not below its child's %d", p.Short(), pi, i)
			}
		}
	}
	if _, ok := g.Index(ID{0xff}); ok {
		t.Fatal("Index of an unknown change")
	}
}

// TestGraphPrefixCollisions checks the graph with IDs that share their
// first bytes (the index key), as an attacker can grind them: every ID
// is found, an unknown ID with a taken key is not, duplicates are refused,
// and the parent lists and ancestry stay right (against a plain model).
func TestGraphPrefixCollisions(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 17))
	for round := range 20 {
		g := NewGraph()
		var ids []ID
		num := map[ID]int{}
		// Few keys, so most IDs collide; the suffix tells them apart.
		mkID := func() ID {
			var id ID
			id[0] = byte(rng.IntN(3))
			id[3] = 0xaa
			for k := 4 + rng.IntN(28); k < len(id); k++ {
				id[k] = byte(rng.Uint32())
			}
			return id
		}
		for k := range 50 + rng.IntN(200) {
			id := mkID()
			if _, dup := num[id]; dup {
				if err := g.Add(id, &Change{Lamport: 1}); !errors.Is(err, ErrDuplicate) {
					t.Fatalf("round %d: duplicate %s: %v", round, id.Short(), err)
				}
				continue
			}
			var parents []ID
			for range rng.IntN(4) {
				if len(ids) > 0 {
					if p := ids[rng.IntN(len(ids))]; !slices.Contains(parents, p) {
						parents = append(parents, p)
					}
				}
			}
			if k%7 == 3 {
				// A missing parent whose key is taken: refused, no number.
				miss := ids[len(ids)-1]
				miss[31] ^= 0x55
				if _, ok := num[miss]; !ok {
					bad := &Change{Lamport: 1, Parents: SortIDs(append(slices.Clone(parents), miss))}
					if m := g.Resolve(bad); len(m) != 1 || m[0] != miss {
						t.Fatalf("round %d: Resolve %v, want [%s]", round, m, miss.Short())
					}
					if _, ok := g.MaxParentLamport(bad); ok {
						t.Fatalf("round %d: MaxParentLamport with a missing parent", round)
					}
					if err := g.Add(id, bad); !errors.Is(err, ErrMissingParents) {
						t.Fatalf("round %d: missing parent: %v", round, err)
					}
				}
			}
			c := &Change{Lamport: uint64(2 + rng.IntN(1000)), Parents: SortIDs(parents)}
			if k%2 == 0 {
				// The gate's order: Resolve and MaxParentLamport look the
				// parents up, and the Add after them uses that lookup
				// (sometimes with another Add in between).
				if m := g.Resolve(c); m != nil {
					t.Fatalf("round %d: Resolve %v", round, m)
				}
				var wantL uint64
				for _, p := range c.Parents {
					pc, _ := g.Get(p)
					wantL = max(wantL, pc.LastLamport())
				}
				if got, ok := g.MaxParentLamport(c); !ok || got != wantL {
					t.Fatalf("round %d: MaxParentLamport %d, %v; want %d", round, got, ok, wantL)
				}
				if k%4 == 0 && len(ids) > 0 {
					if err := g.Add(ids[0], &Change{Lamport: 1}); !errors.Is(err, ErrDuplicate) {
						t.Fatalf("round %d: %v", round, err)
					}
				}
			}
			must(t, g.Add(id, c))
			num[id] = len(ids)
			ids = append(ids, id)
		}
		if g.index.Collisions() == 0 {
			t.Fatal("no key collision: the test does not test the collision map")
		}
		// anc[i][j]: j is i or an ancestor of i.
		anc := make([][]bool, len(ids))
		for i, id := range ids {
			anc[i] = make([]bool, len(ids))
			anc[i][i] = true
			c, _ := g.Get(id)
			var want []int32
			for _, p := range c.Parents {
				pi := num[p]
				want = append(want, int32(pi))
				for j := range ids {
					anc[i][j] = anc[i][j] || anc[pi][j]
				}
			}
			if got := g.nodeParents(int32(i)); !slices.Equal(got, want) {
				t.Fatalf("round %d: parents of node %d = %v, want %v", round, i, got, want)
			}
			// The height is 1 + the parents' largest, whichever of them
			// sits in the collision map.
			wantH := uint32(1)
			for _, pi := range want {
				wantH = max(wantH, g.node(pi).height+1)
			}
			if h := g.node(int32(i)).height; h != wantH {
				t.Fatalf("round %d: node %d height %d, want %d", round, i, h, wantH)
			}
		}
		for i, id := range ids {
			if x, ok := g.Index(id); !ok || int(x) != i || !g.Has(id) {
				t.Fatalf("round %d: Index(%s) = %d, %v; want %d", round, id.Short(), x, ok, i)
			}
			if nid, c := g.Node(int32(i)); nid != id || c == nil {
				t.Fatalf("round %d: Node(%d) = %s", round, i, nid.Short())
			}
			other := id
			other[4+rng.IntN(28)] ^= 1 << rng.IntN(8)
			if _, known := num[other]; !known && (g.Has(other) || g.lookup(other) != nil) {
				t.Fatalf("round %d: unknown %s found", round, other.Short())
			}
			y := ids[rng.IntN(len(ids))]
			if got, want := g.IsAncestor(id, y), anc[num[y]][i]; got != want {
				t.Fatalf("round %d: IsAncestor(%d, %d) = %v, want %v", round, i, num[y], got, want)
			}
		}
	}
}

// TestDocReserve applies the same histories to documents with and without
// size hints (too small, exact and too large): the states are the same,
// and a hint large enough means the graph's first chunk and index are
// never reallocated.
func TestDocReserve(t *testing.T) {
	for seed := uint64(1); seed <= 12; seed++ {
		rng := rand.New(rand.NewPCG(seed, 9))
		h := genHistory(t, rng, 2+rng.IntN(4), 30+rng.IntN(60))
		n := len(h.changes)
		plain := NewDoc(DocOptions{ID: "doc"})
		hint := []int{n / 3, n, 2 * n}[seed%3]
		res := NewDoc(DocOptions{ID: "doc"})
		res.Reserve(hint, int(seed))
		first, slots := &res.g.chunks[0][:1][0], res.g.index.Size()
		for _, hc := range h.changes {
			if _, err := plain.Apply(hc.id, hc.c); err != nil {
				t.Fatal(err)
			}
			if _, err := res.Apply(hc.id, hc.c); err != nil {
				t.Fatal(err)
			}
		}
		if plain.StateHash() != res.StateHash() || !slices.Equal(plain.Graph().Topo(), res.Graph().Topo()) {
			t.Fatalf("seed %d: a reserved document differs", seed)
		}
		if grew := &res.g.chunks[0][0] != first || res.g.index.Size() != slots; grew != (hint < n) {
			t.Fatalf("seed %d: hint %d for %d changes: reallocated %v", seed, hint, n, grew)
		}
	}
}

// TestNoEventRows: a document made with NoEventRows reaches the same state
// as one without, and its events (returned and sent to subscribers) name
// the change but carry no rows.
func TestNoEventRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	h := genHistory(t, rng, 3, 60)
	plain := NewDoc(DocOptions{ID: "doc"})
	bare := NewDoc(DocOptions{ID: "doc", NoEventRows: true})
	var got []ChangeEvent
	bare.Subscribe(func(ev ChangeEvent) { got = append(got, ev) })
	rows := 0
	for _, hc := range h.changes {
		pe, err := plain.Apply(hc.id, hc.c)
		if err != nil {
			t.Fatal(err)
		}
		rows += len(pe.Rows)
		be, err := bare.Apply(hc.id, hc.c)
		if err != nil {
			t.Fatal(err)
		}
		if be.ID != hc.id || be.Change != hc.c || be.Rows != nil {
			t.Fatalf("event %+v for change %s", be, hc.id.Short())
		}
	}
	if rows == 0 {
		t.Fatal("the history changed no rows")
	}
	if plain.StateHash() != bare.StateHash() || len(got) != len(h.changes) {
		t.Fatalf("states differ, or %d events for %d changes", len(got), len(h.changes))
	}
	for _, ev := range got {
		if ev.Rows != nil {
			t.Fatal("a subscriber got rows")
		}
	}
}

// TestGraphChangeIDs: the graph reads a node's ID from its change. A change
// it owns learns its ID on Add; a frozen one it did not see frozen with
// its ID stays untouched (it may be shared) and the graph keeps a copy that
// knows it; one frozen with its ID (FreezeWithID) is kept as it is; and a
// copy of a held change, edited and added under its own ID, answers with
// that ID, not the one the copy carried over.
func TestGraphChangeIDs(t *testing.T) {
	g := NewGraph()
	own, idOwn := mkChange(g, 1, 1, ZeroID)
	must(t, g.Add(idOwn, own))
	if own.id != idOwn {
		t.Fatal("an owned change did not learn its ID")
	}

	frozen, idFrozen := mkChange(g, 2, 1, ZeroID, idOwn)
	frozen.Freeze()
	must(t, g.Add(idFrozen, frozen))
	if frozen.id != ZeroID {
		t.Fatal("a frozen change was written to")
	}
	if c, ok := g.Get(idFrozen); !ok || c == frozen || c.MustID() != idFrozen {
		t.Fatal("the graph does not hold a copy of the frozen change")
	}

	shared, idShared := mkChange(g, 3, 1, ZeroID, idOwn)
	shared.FreezeWithID(idShared)
	must(t, g.Add(idShared, shared))
	if c, ok := g.Get(idShared); !ok || c != shared {
		t.Fatal("a change frozen with its ID was copied")
	}

	edited := *own // carries own's ID
	edited.Author, edited.Lamport = Author{4}, 2
	edited.Parents = []ID{idOwn}
	idEdited := edited.MustID()
	must(t, g.Add(idEdited, &edited))
	for i := range int32(g.Len()) {
		id, c := g.Node(i)
		if j, ok := g.Index(id); c.MustID() != id || !ok || j != i {
			t.Fatalf("node %d: ID %s, change hashes to %s", i, id.Short(), c.MustID().Short())
		}
	}
	if _, ok := g.Index(idEdited); !ok {
		t.Fatal("edited copy not found by its ID")
	}
}

// TestParentsGrowOnce checks growParents: a graph reserved for 100 changes
// that name more parents each than Reserve made room for grows its parent
// list once, to about what the 100 need, not a quarter at a time.
func TestParentsGrowOnce(t *testing.T) {
	const changes, perChange = 100, 9
	g := NewGraph()
	g.Reserve(changes)
	var ids []ID
	grew, last := 0, cap(g.parents)
	for k := range changes {
		var parents []ID
		if len(ids) >= perChange {
			parents = ids[len(ids)-perChange:]
		}
		c, id := mkChange(g, byte(k), 1, ZeroID, parents...)
		must(t, g.Add(id, c))
		ids = append(ids, id)
		if cap(g.parents) != last {
			grew++
			last = cap(g.parents)
		}
	}
	if grew != 1 {
		t.Fatalf("the parent list grew %d times, want once", grew)
	}
	// At most half again: the estimate has 1/16 of slack and counts the
	// nodes' capacity (Reserve's, rounded up to a size class), and the
	// allocation is rounded up to one too.
	if n := len(g.parents); cap(g.parents) > n*3/2 {
		t.Fatalf("parent list: %d of %d used", n, cap(g.parents))
	}
}
