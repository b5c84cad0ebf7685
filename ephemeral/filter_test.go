package ephemeral

import (
	"testing"

	"github.com/convergenode/convergenode/crdt"
)

// TestNamespaceFilter: a store with Config.Namespaces keeps only those
// namespaces from remote batches, still checks the whole batch, and keeps
// its own writes in any namespace.
func TestNamespaceFilter(t *testing.T) {
	a := newTestStore(t, 1, nil)
	b := newTestStore(t, 2, func(c *Config) { c.Namespaces = []string{"cursor"} })
	mustSet(t, a, "cursor", "pos", crdt.Int(1), t0)
	mustSet(t, a, "board", "title", crdt.String("x"), t0)
	mustSet(t, a, "chat", "typing", crdt.Bool(true), t0)
	batch := flushOne(t, a, t0)
	evs, err := b.Merge(batch, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Namespace != "cursor" || evs[0].Key != "pos" {
		t.Fatalf("events %v, want only cursor/pos", evs)
	}
	if got := b.Namespaces(); len(got) != 1 || got[0] != "cursor" {
		t.Fatalf("namespaces %v, want [cursor]", got)
	}
	// The signature still covers the dropped updates: tampering with one
	// of them is refused.
	bad := *batch
	bad.Updates = append([]Update(nil), batch.Updates...)
	for i := range bad.Updates {
		if bad.Updates[i].Namespace == "chat" {
			bad.Updates[i].Value = crdt.Bool(false)
		}
	}
	c := newTestStore(t, 3, func(c *Config) { c.Namespaces = []string{"cursor"} })
	if _, err := c.Merge(&bad, t0); err == nil {
		t.Fatal("a batch tampered in a filtered-out namespace was accepted")
	}
	// Own writes are never filtered.
	mustSet(t, b, "chat", "typing", crdt.Bool(true), t0)
	if _, ok := b.Get("chat", b.Self(), "typing"); !ok {
		t.Fatal("local write in an unsubscribed namespace is missing")
	}
	// An empty, non-nil list keeps no remote namespace at all.
	d := newTestStore(t, 4, func(c *Config) { c.Namespaces = []string{} })
	if evs, err := d.Merge(batch, t0); err != nil || len(evs) != 0 || len(d.Namespaces()) != 0 {
		t.Fatalf("empty filter: events %v, err %v, namespaces %v", evs, err, d.Namespaces())
	}
}
