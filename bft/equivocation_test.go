package bft

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/convergenode/convergenode/crdt"
)

// TestAttackEquivocation: an author signs two forks extending the same
// prev, then builds on one of them. Two replicas see the forks in opposite
// orders; both accept everything, end identical and hold the same proofs.
func TestAttackEquivocation(t *testing.T) {
	e := newNode(5, GateConfig{})
	e1 := e.propose(t)
	k := e.key
	forkA := mustSign(t, k, mkChange(k, 2, 2, e1.ID, []crdt.ID{e1.ID}, crdt.Update("t", "r", "c", crdt.String("left"))))
	forkB := mustSign(t, k, mkChange(k, 2, 2, e1.ID, []crdt.ID{e1.ID},
		crdt.Update("t", "r", "c", crdt.String("right")), crdt.Update("t", "s", "c", crdt.Int(1))))
	// Extends fork A: its seq check passes (it follows its own prev) but its
	// range [3,3] overlaps fork B's [2,3].
	e3 := mustSign(t, k, mkChange(k, 3, 3, forkA.ID, []crdt.ID{forkA.ID}))

	r1, r2 := newNode(1, GateConfig{}), newNode(2, GateConfig{})
	r1.mustAccept(t, "e", e1, forkA)
	res := r1.recv("e", forkB)
	if res.Rejection != nil || len(res.Accepted) != 1 || len(res.Proofs) != 1 {
		t.Fatalf("second fork: %+v", res)
	}
	r1.mustAccept(t, "e", e3)

	r2.mustAccept(t, "e", e1)
	r2.mustAccept(t, "x", forkB)
	if res := r2.recv("y", e3); !res.Buffered || len(res.Missing) != 1 || res.Missing[0] != forkA.ID {
		t.Fatalf("e3 before fork A: %+v", res)
	}
	res = r2.recv("e", forkA) // releases e3
	if len(res.Accepted) != 2 || len(res.Proofs) != 2 {
		t.Fatalf("fork A + e3: %d accepted, %d proofs", len(res.Accepted), len(res.Proofs))
	}

	// Honest writers build on both forks; still identical.
	h := newNode(6, GateConfig{})
	h.mustAccept(t, "e", e1, forkA, forkB, e3)
	h1 := h.propose(t, crdt.Update("t", "r", "c", crdt.String("merged")))
	r1.mustAccept(t, "h", h1)
	r2.mustAccept(t, "h", h1)
	sameState(t, r1, r2, h)

	p1, p2 := r1.gate.Proofs(), r2.gate.Proofs()
	if len(p1) != 2 || len(p2) != 2 {
		t.Fatalf("proofs held: %d and %d, want 2", len(p1), len(p2))
	}
	for i := range p1 {
		if !bytes.Equal(p1[i].Encode(), p2[i].Encode()) {
			t.Fatalf("proof %d differs between replicas", i)
		}
		d, err := DecodeProof(p1[i].Encode())
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Verify(); err != nil {
			t.Fatal(err)
		}
		if d.Author() != authorOf(k) {
			t.Fatal("proof names the wrong author")
		}
	}
	if m := r1.gate.Metrics(); m.Proofs != 2 || m.Equivocators != 1 || m.Total() != 0 {
		t.Fatalf("%+v", m)
	}
	if eq := r2.gate.Equivocators(); len(eq) != 1 || eq[0] != authorOf(k) {
		t.Fatalf("equivocators %v", eq)
	}

	// A replica that saw only one fork learns the proof from the evidence
	// topic; a forged proof is refused.
	r3 := newNode(3, GateConfig{})
	r3.mustAccept(t, "e", e1, forkA)
	d, _ := DecodeProof(p1[0].Encode())
	if ok, err := r3.gate.AddProof(d); !ok || err != nil {
		t.Fatalf("AddProof: %v %v", ok, err)
	}
	if ok, _ := r3.gate.AddProof(d); ok {
		t.Fatal("proof added twice")
	}
	bad := p1[1].Encode()
	bad[len(bad)-1] ^= 1
	fd, err := DecodeProof(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r3.gate.AddProof(fd); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged proof: %v", err)
	}
}

// TestEquivocationFirstChanges: two different first changes (seq 1) by one
// author, in both orders.
func TestEquivocationFirstChanges(t *testing.T) {
	a, b := forkPair(t)
	r1, r2 := newNode(1, GateConfig{}), newNode(2, GateConfig{})
	r1.mustAccept(t, "p", a, b)
	r2.mustAccept(t, "p", b, a)
	sameState(t, r1, r2)
	if len(r1.gate.Proofs()) != 1 || len(r2.gate.Proofs()) != 1 ||
		!bytes.Equal(r1.gate.Proofs()[0].Encode(), r2.gate.Proofs()[0].Encode()) {
		t.Fatal("both replicas must hold the same proof")
	}
}

func TestEquivocationProofCap(t *testing.T) {
	k := testKey(5)
	r := newNode(1, GateConfig{MaxProofsPerAuthor: 2})
	for i := range 6 {
		r.mustAccept(t, "p", mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil, crdt.Update("t", "r", "c", crdt.Int(int64(i))))))
	}
	if m := r.gate.Metrics(); m.Proofs != 2 || m.Accepted != 6 {
		t.Fatalf("%+v", m)
	}
}

// TestAuthorIndexOverlap checks the author index's overlap query against
// a scan of every span, over random inserts (in any order, with
// overlapping ranges and equal starts, as an equivocating author makes
// them), in the small form (one change) and the spans form.
func TestAuthorIndexOverlap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for round := range 200 {
		gr := crdt.NewGraph()
		var x *authorIndex
		type ref struct {
			start, end uint64
			id         crdt.ID
			node       int32
			sig        *[64]byte
		}
		var all []ref
		for k := range 1 + rng.IntN(40) {
			start := 1 + rng.Uint64N(60)
			end := start + rng.Uint64N(8)
			// IDs in random order, so equal starts are not inserted in ID order.
			id := crdt.ID{byte(rng.Uint32()), byte(k), byte(round)}
			c := &crdt.Change{Author: crdt.Author{1}, Seq: start, Lamport: 1, Ops: make([]crdt.Op, end-start+1)}
			if err := gr.Add(id, c); err != nil {
				t.Fatal(err)
			}
			node, _ := gr.Index(id)
			var sig *[64]byte
			if rng.IntN(3) > 0 {
				sig = &[64]byte{byte(k)}
			}
			if x == nil {
				x = &authorIndex{node: node, sig: sig}
			} else {
				x.insert(gr, span{start: start, end: end, node: node, sig: sig})
			}
			all = append(all, ref{start, end, id, node, sig})
			for range 5 {
				s := 1 + rng.Uint64N(70)
				e := s + rng.Uint64N(10)
				var want ref
				found := false
				for _, a := range all { // the largest (start, id) among the intersecting
					if a.start <= e && a.end >= s && (!found || a.start > want.start || a.start == want.start && a.id.Compare(want.id) > 0) {
						want, found = a, true
					}
				}
				node, sig, ok := x.overlap(gr, s, e)
				if ok != found || (ok && (node != want.node || sig != want.sig)) {
					t.Fatalf("round %d, %d spans: overlap(%d, %d) = %d %v, want %v %v", round, len(all), s, e, node, ok, want, found)
				}
			}
		}
		if len(all) == 1 {
			if x.spans != nil {
				t.Fatalf("round %d: one change in the spans form", round)
			}
			continue
		}
		if x.spans == nil || len(x.spans.spans) != len(all) || x.sig != nil {
			t.Fatalf("round %d: %d changes, not all in the spans form", round, len(all))
		}
		checkSpanTree(t, gr, x.spans)
	}
}

// checkSpanTree checks the tree's invariants: (start, ID) order, AVL
// balance, heights and subtree maxima, and that it holds every span once.
func checkSpanTree(t *testing.T, gr *crdt.Graph, x *spanTree) {
	t.Helper()
	var order []int32
	var walk func(n int32) (height int32, maxEnd uint64)
	walk = func(n int32) (int32, uint64) {
		if n < 0 {
			return 0, 0
		}
		sp := &x.spans[n]
		hl, ml := walk(sp.left)
		order = append(order, n)
		hr, mr := walk(sp.right)
		if d := hl - hr; d < -1 || d > 1 {
			t.Fatalf("span %d unbalanced: heights %d and %d", n, hl, hr)
		}
		h, m := 1+max(hl, hr), max(sp.end, ml, mr)
		if sp.height != h || sp.maxEnd != m {
			t.Fatalf("span %d: height %d maxEnd %d, want %d %d", n, sp.height, sp.maxEnd, h, m)
		}
		return h, m
	}
	h, _ := walk(x.root)
	if len(order) != len(x.spans) {
		t.Fatalf("tree holds %d of %d spans", len(order), len(x.spans))
	}
	for i := 1; i < len(order); i++ {
		if cmpSpan(gr, &x.spans[order[i-1]], &x.spans[order[i]]) >= 0 {
			t.Fatalf("spans %d and %d out of order", order[i-1], order[i])
		}
	}
	// An AVL tree of n nodes is at most 1.44 log2(n+2) high.
	if limit := 1.45 * math.Log2(float64(len(x.spans)+2)); float64(h) > limit {
		t.Fatalf("%d spans, height %d above %.1f", len(x.spans), h, limit)
	}
}

// TestAuthorIndexForks feeds the index an equivocating author's worst
// cases, checking the answers against a scan: many forks with one start
// in random ID order, behind a long change that keeps every prefix
// maximum high (so a sorted list with prefix maxima would scan them all
// on every query, and shift them on every insert), then changes that
// overlap only the long one. The tree stays balanced and every operation
// O(log n); the sorted list this replaced took 0.5 s for 40,000 changes
// here, and four times as long for twice as many.
func TestAuthorIndexForks(t *testing.T) {
	const n = 200000
	rng := rand.New(rand.NewPCG(11, 13))
	gr := crdt.NewGraph()
	var prev []crdt.ID // a chain in the graph, so that it has one head
	add := func(k int, start, end uint64) span {
		id := crdt.ID{byte(rng.Uint32()), byte(rng.Uint32()), byte(k), byte(k >> 8), byte(k >> 16)}
		c := &crdt.Change{Author: crdt.Author{1}, Seq: start, Lamport: 1, Parents: prev, Ops: make([]crdt.Op, end-start+1)}
		if err := gr.Add(id, c); err != nil {
			t.Fatal(err)
		}
		prev = []crdt.ID{id}
		node, _ := gr.Index(id)
		return span{start: start, end: end, node: node}
	}
	long := add(0, 1, crdt.MaxOps)
	x := &authorIndex{node: long.node}
	for k := 1; k < n; k++ {
		if k < n/2 {
			x.insert(gr, add(k, 2, 2)) // forks of one seq, IDs in random order
			continue
		}
		s := uint64(3 + k%100)
		node, _, ok := x.overlap(gr, s, s)
		if !ok || node != long.node {
			t.Fatalf("overlap(%d, %d) = %d, %v; want the long change %d", s, s, node, ok, long.node)
		}
		x.insert(gr, add(k, crdt.MaxOps+uint64(k), crdt.MaxOps+uint64(k))) // an honest-looking chain after it
	}
	checkSpanTree(t, gr, x.spans)
	// The last fork in (start, ID) order overlaps [2, 2].
	var want *span
	for i := range x.spans.spans {
		sp := &x.spans.spans[i]
		if sp.start <= 2 && sp.end >= 2 && (want == nil || cmpSpan(gr, sp, want) > 0) {
			want = sp
		}
	}
	if node, _, ok := x.overlap(gr, 2, 2); !ok || node != want.node {
		t.Fatalf("overlap(2, 2) = %d, %v; want %d", node, ok, want.node)
	}
}

// TestAuthorTableCollisions checks the author table with author keys that
// share their first bytes (the map key), as anyone can grind them: every
// author finds its own index, an unknown author with a taken key finds
// none.
func TestAuthorTableCollisions(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 1))
	gr := crdt.NewGraph()
	var tab authorTable
	var authors []crdt.Author
	nodes := map[crdt.Author]int32{}
	for k := range 300 {
		var a crdt.Author
		a[0] = byte(rng.IntN(4))
		a[2] = 0x5a
		a[4+rng.IntN(28)] = byte(1 + rng.IntN(255))
		if _, dup := nodes[a]; dup {
			continue
		}
		id := crdt.ID{byte(k), byte(k >> 8), 7}
		if err := gr.Add(id, &crdt.Change{Author: a, Seq: 1, Lamport: 1, Ops: make([]crdt.Op, 1)}); err != nil {
			t.Fatal(err)
		}
		node, _ := gr.Index(id)
		if tab.get(gr, a) != nil {
			t.Fatalf("author %d known before add", k)
		}
		tab.add(a, authorIndex{node: node})
		authors = append(authors, a)
		nodes[a] = node
		for _, b := range authors[max(0, len(authors)-20):] {
			if x := tab.get(gr, b); x == nil || x.node != nodes[b] {
				t.Fatalf("after %d adds: author %x not found", len(authors), b[:8])
			}
		}
	}
	if tab.keys.Collisions() == 0 {
		t.Fatal("no key collision: the test does not test the collision map")
	}
	for _, a := range authors {
		if x := tab.get(gr, a); x == nil || x.node != nodes[a] {
			t.Fatalf("author %x: wrong index", a[:8])
		}
		b := a
		b[31] ^= 0x80
		if _, known := nodes[b]; !known && tab.get(gr, b) != nil {
			t.Fatalf("unknown author %x found", b[:8])
		}
	}
}
