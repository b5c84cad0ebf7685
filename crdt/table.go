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

// rowIndex holds the rows Apply created, by value in chunks, and finds
// them by key: a compact.Slots of row positions under a 32-bit hash of the
// key, a slot and the row to read where a Go map would also read its
// header, directory and group (a simulation holds one document per
// replica, thousands of them, each cold in the cache when a change
// arrives). The hash is seeded per process, so nobody can choose keys that
// pile up in one run of slots.
//
// A chunk never grows past its capacity, so a row never moves (Apply keeps
// pointers to the rows it touched) and creating one allocates nothing but,
// now and then, a chunk. A position is chunk<<rowChunkBits | offset.
type rowIndex struct {
	slots  compact.Slots
	chunks [][]rowState // in the order added
	n      int
}

const (
	rowChunkBits = 20
	rowChunkMax  = 1 << rowChunkBits
	rowChunkMin  = 8
)

var rowSeed = maphash.MakeSeed()

// rowHash is the 32-bit hash of a row key (a variable so that a test can
// make every key collide).
var rowHash = func(key string) uint32 { return uint32(maphash.String(rowSeed, key) >> 32) }

func (x *rowIndex) at(v int32) *rowState {
	return &x.chunks[v>>rowChunkBits][v&(rowChunkMax-1)]
}

func (x *rowIndex) get(key string) *rowState {
	v := x.slots.Find(rowHash(key), func(v int32) bool { return x.at(v).key == key })
	if v < 0 {
		return nil
	}
	return x.at(v)
}

// reserve makes room for n more rows.
func (x *rowIndex) reserve(n int) {
	if n <= 0 {
		return
	}
	x.slots.Reserve(n)
	if k := len(x.chunks) - 1; k < 0 || cap(x.chunks[k])-len(x.chunks[k]) < n {
		x.chunks = append(x.chunks, make([]rowState, 0, min(n, rowChunkMax)))
	}
}

// add adds row key, which x does not hold, and returns its state.
func (x *rowIndex) add(key string) *rowState {
	k := len(x.chunks) - 1
	if k < 0 || len(x.chunks[k]) == cap(x.chunks[k]) {
		// A quarter of the rows so far: at most a fifth of the space unused.
		x.chunks = append(x.chunks, make([]rowState, 0, min(max(x.n/4, rowChunkMin), rowChunkMax)))
		k++
	}
	c := &x.chunks[k]
	*c = append(*c, rowState{key: key})
	x.n++
	x.slots.Insert(rowHash(key), int32(k<<rowChunkBits|(len(*c)-1)))
	return &(*c)[len(*c)-1]
}

// all yields the rows in the order added.
func (x *rowIndex) all(yield func(*rowState) bool) {
	for _, c := range x.chunks {
		for i := range c {
			if !yield(&c[i]) {
				return
			}
		}
	}
}
