package bft

import (
	"slices"
	"testing"

	"github.com/convergenode/convergenode/crdt"
)

// TestAttackNonWriter: in a document with a writer set, a non-writer's
// validly signed changes are refused (not penalised) until a writer adds
// it, as judged by each change's causal past; after its removal they are
// refused again. Two replicas receiving in different orders agree.
func TestAttackNonWriter(t *testing.T) {
	cfg := GateConfig{Writers: []crdt.Author{authorOf(testKey(1))}}
	w := newNode(1, cfg)
	nk := testKey(2)
	na := authorOf(nk)
	w1 := w.propose(t)
	// Before being added.
	n1 := mustSign(t, nk, mkChange(nk, 1, 2, crdt.ZeroID, []crdt.ID{w1.ID}))
	w2 := w.propose(t, AddWriter(na))
	// Concurrent with the add: its past does not contain it.
	n1b := mustSign(t, nk, mkChange(nk, 1, 2, crdt.ZeroID, []crdt.ID{w1.ID}, crdt.Update("t", "r", "c", crdt.String("b"))))
	// After the add.
	n2 := mustSign(t, nk, mkChange(nk, 1, 3, crdt.ZeroID, []crdt.ID{w2.ID}))
	w.mustAccept(t, "n", n2)
	w3 := w.propose(t, RemoveWriter(na))                                                       // parents: n2
	n3 := mustSign(t, nk, mkChange(nk, 2, 5, n2.ID, []crdt.ID{w3.ID}))                         // after the removal
	n3b := mustSign(t, nk, mkChange(nk, 2, 4, n2.ID, []crdt.ID{n2.ID}, crdt.Delete("t", "r"))) // concurrent with it

	type step struct {
		env  *Envelope
		want Reason
	}
	steps := []step{{w1, RejectNone}, {n1, RejectNotWriter}, {w2, RejectNone}, {n1b, RejectNotWriter},
		{n2, RejectNone}, {w3, RejectNone}, {n3, RejectNotWriter}, {n3b, RejectNone}}
	r1, r2 := newNode(3, cfg), newNode(4, cfg)
	run := func(r *node, order []int) {
		t.Helper()
		for _, i := range order {
			res := r.recv("p", steps[i].env)
			if steps[i].want == RejectNone {
				if res.Rejection != nil {
					t.Fatalf("step %d refused: %v", i, res.Rejection)
				}
				continue
			}
			wantReason(t, res.Rejection, steps[i].want)
			if res.Rejection.Penalize() {
				t.Fatal("not-writer must not be penalised")
			}
		}
	}
	run(r1, []int{0, 1, 2, 3, 4, 5, 6, 7})
	run(r2, []int{0, 2, 4, 7, 5, 6, 3, 1})
	w.mustAccept(t, "n", n3b)
	sameState(t, r1, r2, w)
	want := []crdt.Author{authorOf(testKey(1))}
	for _, n := range []*node{r1, r2, w} {
		if got := n.gate.Writers(); !slices.Equal(got, want) {
			t.Fatalf("writers %v, want %v", got, want)
		}
		if got := n.gate.Metrics().Rejected[RejectNotWriter]; n != w && got != 3 {
			t.Fatalf("not-writer count %d", got)
		}
	}
	if open := newNode(5, GateConfig{}); open.gate.Writers() != nil {
		t.Fatal("open document has a writer set")
	}
}

// TestWritersConcurrentAddRemove: two writers concurrently add and remove
// a key; every replica resolves it by the document's op order, whatever
// the arrival order.
func TestWritersConcurrentAddRemove(t *testing.T) {
	cfg := GateConfig{Writers: []crdt.Author{authorOf(testKey(1)), authorOf(testKey(2))}}
	x := authorOf(testKey(7))
	a, b := newNode(1, cfg), newNode(2, cfg)
	a0 := a.propose(t)
	b.mustAccept(t, "a", a0)
	add := a.propose(t, AddWriter(x))
	rem := b.propose(t, RemoveWriter(x))
	var sets [][]crdt.Author
	for i, order := range [][]*Envelope{{a0, add, rem}, {a0, rem, add}} {
		r := newNode(byte(10+i), cfg)
		r.mustAccept(t, "p", order...)
		sets = append(sets, r.gate.Writers())
	}
	if !slices.Equal(sets[0], sets[1]) {
		t.Fatalf("writer sets differ: %v vs %v", sets[0], sets[1])
	}
	// Same lamport: the larger author wins (the document's order).
	addWins := authorOf(testKey(1)).Compare(authorOf(testKey(2))) > 0
	if got := slices.Contains(sets[0], x); got != addWins {
		t.Fatalf("x in set: %v, want %v", got, addWins)
	}
}
