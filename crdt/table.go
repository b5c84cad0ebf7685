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

// rowIndex finds the rows Apply created by key: a compact.Slots of row
// positions in list under a 32-bit hash of the key, a slot or two and the
// row to read where a Go map would also read its header, directory and
// group (a simulation holds one document per replica, thousands of them,
// each cold in the cache when a change arrives). The hash is seeded per
// process, so nobody can choose keys that pile up in one run of slots.
type rowIndex struct {
	slots compact.Slots
	list  []*rowState // in the order added
}

var rowSeed = maphash.MakeSeed()

// rowHash is the 32-bit hash of a row key (a variable so that a test can
// make every key collide).
var rowHash = func(key string) uint32 { return uint32(maphash.String(rowSeed, key) >> 32) }

func (x *rowIndex) get(key string) *rowState {
	i := x.slots.Find(rowHash(key), func(i int32) bool { return x.list[i].key == key })
	if i < 0 {
		return nil
	}
	return x.list[i]
}

// reserve makes room for n more rows.
func (x *rowIndex) reserve(n int) {
	if n > 0 {
		x.list = compact.Grow(x.list, n, 0)
		x.slots.Reserve(n)
	}
}

// add adds rs, whose key x does not hold.
func (x *rowIndex) add(rs *rowState) {
	x.list = append(compact.Grow(x.list, 1, 0), rs)
	x.slots.Insert(rowHash(rs.key), int32(len(x.list)-1))
}
