package bft

import (
	"fmt"
	"testing"

	"github.com/convergenode/convergenode/crdt"
)

// BenchmarkNewGate measures the equivocation index: NewGate indexes every
// change of a document (as unsigned, so it makes no proofs), one overlap
// query and one insert each. The document has 8192 changes, made in turn
// by the given number of honest authors (each one's chain is disjoint and
// append-only), each on top of the previous change.
func BenchmarkNewGate(b *testing.B) {
	for _, authors := range []int{1, 64, 8192} {
		doc := crdt.NewDoc(crdt.DocOptions{ID: testDoc})
		seq := make([]uint64, authors)
		prev := make([]crdt.ID, authors)
		var head []crdt.ID
		for k := range 8192 {
			a := k % authors
			seq[a]++
			c := mkChange(testKey(byte(a)), seq[a], uint64(k+1), prev[a], head)
			c.Author[1], c.Author[2] = byte(a>>8), byte(a) // distinct authors without a key each
			id := c.MustID()
			if _, err := doc.Apply(id, c); err != nil {
				b.Fatal(err)
			}
			prev[a], head = id, []crdt.ID{id}
		}
		b.Run(fmt.Sprintf("authors=%d", authors), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				NewGate(GateConfig{}, doc)
			}
		})
	}
}
