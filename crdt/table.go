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
func (t *table) add(key string) *rowState {
	rs := &rowState{key: key}
	t.rows.add(rs)
	return rs
}

// rowIndex finds the rows Apply created by key: an open-addressing table
// of 8-byte slots (a 32-bit hash of the key and the row's position in
// list), at most 13/16 full, grown by a quarter. A lookup reads a slot
// or two, the row's pointer and the row, where a Go map would also read
// its header, directory and group: a simulation holds one document per
// replica, thousands of them, each cold in the cache when a change
// arrives. The hash is seeded per process, so nobody can choose keys that
// pile up in one run of slots; the seed decides the layout only.
type rowIndex struct {
	slots []uint64    // 0 = empty, else hash<<32 | (position in list + 1)
	list  []*rowState // in the order added
}

var rowSeed = maphash.MakeSeed()

// rowHash is the 32-bit hash of a row key (a variable so that a test can
// make every key collide).
var rowHash = func(key string) uint32 { return uint32(maphash.String(rowSeed, key) >> 32) }

// rowHome returns the first slot to probe for hash h among n slots.
func rowHome(h uint32, n int) int { return int((uint64(h) * uint64(n)) >> 32) }

func (x *rowIndex) get(key string) *rowState {
	n := len(x.slots)
	if n == 0 {
		return nil
	}
	h := rowHash(key)
	for i := rowHome(h, n); ; {
		s := x.slots[i]
		if s == 0 {
			return nil
		}
		if uint32(s>>32) == h {
			if rs := x.list[uint32(s)-1]; rs.key == key {
				return rs
			}
		}
		if i++; i == n {
			i = 0
		}
	}
}

// add adds rs, whose key x does not hold.
func (x *rowIndex) add(rs *rowState) {
	if len(x.list) >= 1<<32-2 {
		panic("crdt: too many rows in a table")
	}
	x.list = append(compact.Grow(x.list, 1, 0), rs)
	if len(x.list)*16 > len(x.slots)*13 {
		x.rehash(max(8, len(x.slots)+len(x.slots)/4))
		return
	}
	x.place(rowHash(rs.key), len(x.list)-1)
}

func (x *rowIndex) place(h uint32, pos int) {
	n := len(x.slots)
	i := rowHome(h, n)
	for x.slots[i] != 0 {
		if i++; i == n {
			i = 0
		}
	}
	x.slots[i] = uint64(h)<<32 | uint64(pos+1)
}

// rehash rebuilds the slots, at least n of them, for every row in list.
func (x *rowIndex) rehash(n int) {
	for len(x.list)*16 > n*13 {
		n += n / 4
	}
	// The whole size class the allocator rounds n up to.
	x.slots = append([]uint64(nil), make([]uint64, n)...)
	x.slots = x.slots[:cap(x.slots)]
	for pos, rs := range x.list {
		x.place(rowHash(rs.key), pos)
	}
}
