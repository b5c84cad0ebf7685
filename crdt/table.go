package crdt

import (
	"hash/maphash"
	"slices"

	"github.com/convergenode/convergenode/internal/compact"
)

// A table's rows live in two places: rows loaded from a snapshot sit in
// base, sorted by key, one slab with no per-row index entry (so loading a
// snapshot of a million rows does not build a million-entry index); rows
// that Apply creates go in the rows index. A key is in one or the other,
// never both, and rows are never removed (deleted rows are tombstones).

// get returns the merge state of row key, or nil.
func (t *table) get(key string) *rowState {
	if rs := t.rows.get(key); rs != nil {
		return rs
	}
	if len(t.baseKeys) == 0 {
		return nil
	}
	if i, ok := slices.BinarySearch(t.baseKeys, key); ok {
		return &t.base[i]
	}
	return nil
}

// add creates the merge state of row key, which get does not know.
func (t *table) add(key string) *rowState { return t.rows.add(key) }

// rowIndex holds the rows Apply created, by value in a compact.Stable
// (a row never moves: Apply keeps pointers to the rows it touched; and
// creating one allocates nothing but, now and then, a chunk), and finds
// them by key: a compact.Slots of row positions under a 32-bit hash of the
// key, a slot and the row to read where a Go map would also read its
// header, directory and group (a simulation holds one document per
// replica, thousands of them, each cold in the cache when a change
// arrives). The hash is seeded per process, so nobody can choose keys that
// pile up in one run of slots.
type rowIndex struct {
	slots compact.Slots
	rows  compact.Stable[rowState] // in the order added
}

var rowSeed = maphash.MakeSeed()

// rowHash is the 32-bit hash of a row key (a variable so that a test can
// make every key collide).
var rowHash = func(key string) uint32 { return uint32(maphash.String(rowSeed, key) >> 32) }

func (x *rowIndex) get(key string) *rowState {
	v := x.slots.Find(rowHash(key), func(v int32) bool { return x.rows.At(v).key == key })
	if v < 0 {
		return nil
	}
	return x.rows.At(v)
}

// reserve makes room for n more rows.
func (x *rowIndex) reserve(n int) {
	x.slots.Reserve(n)
	x.rows.Reserve(n)
}

// add adds row key, which x does not hold, and returns its state.
func (x *rowIndex) add(key string) *rowState {
	pos, rs := x.rows.Add(rowState{key: key})
	x.slots.Insert(rowHash(key), pos)
	return rs
}

// all yields the rows in the order added.
func (x *rowIndex) all(yield func(*rowState) bool) { x.rows.All(yield) }
