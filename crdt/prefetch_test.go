package crdt

import "testing"

// The Prefetch methods take any state, empty ones included, and change
// nothing: a document warmed before each change ends as one that is not.
func TestPrefetchChangesNothing(t *testing.T) {
	var empty Graph
	for st := range GraphPrefetchStages {
		empty.Prefetch(st, nil, nil)
		NewDoc(DocOptions{}).Prefetch(st, nil)
	}
	a := NewDoc(DocOptions{ID: "d", Author: Author{1}})
	b := NewDoc(DocOptions{ID: "d", Author: Author{2}})
	var prev ID
	for i := range 40 {
		c := &Change{Doc: "d", Author: Author{1}, Seq: uint64(i + 1), Lamport: uint64(i + 1),
			Ops: []Op{Insert("t", string(rune('a'+i%9)), map[string]Value{"v": Int(int64(i))})}}
		if i > 0 {
			c.Prev, c.Parents = prev, []ID{prev}
		}
		id := c.MustID()
		for st := range max(GraphPrefetchStages, DocPrefetchStages) {
			b.Graph().Prefetch(st, &id, c)
			b.Graph().Prefetch(st, nil, nil)
			b.Prefetch(st, c)
			b.Prefetch(st, nil)
		}
		cb := *c
		if _, err := a.Apply(id, c); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Apply(id, &cb); err != nil {
			t.Fatal(err)
		}
		prev = id
	}
	if a.StateHash() != b.StateHash() || a.Graph().Len() != 40 || b.Graph().Len() != 40 {
		t.Fatal("the warmed document differs")
	}
}
