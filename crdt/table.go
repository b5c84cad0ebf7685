package crdt

import "slices"

// A table's rows live in two places: rows loaded from a snapshot sit in
// base, sorted by key, one slab with no per-row map entry (so loading a
// snapshot of a million rows does not build a million-entry map); rows
// that Apply creates go in the rows map. A key is in one or the other,
// never both, and rows are never removed (deleted rows are tombstones).

// get returns the merge state of row key, or nil.
func (t *table) get(key string) *rowState {
	if rs := t.rows[key]; rs != nil {
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
	t.rows[key] = rs
	return rs
}
