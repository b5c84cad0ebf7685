package crdt

import "slices"

// This file holds the merge rules: how one op changes the materialized
// state of a row. See docs/semantics.md for the rule in words.
//
// Every op has a stamp, ordered by (lamport, author, seq, change ID). The
// state of a row is defined as if every op on it were executed one after
// the other in stamp order with SQL-like meaning:
//
//   - insert replaces the whole row (insert-or-replace);
//   - update sets one column if the row exists, and does nothing otherwise;
//   - delete removes the row if it exists.
//
// Incrementally, a row keeps its newest existence event (insert or delete)
// and, per column, the newest write whose stamp is not older than that
// event. Ops older than the existence event can no longer matter and are
// dropped. The result is a pure function of the set of ops, so any delivery
// order gives the same state.

// opRef names one op: node is the graph index of its change plus one (0 =
// no op), i is the op's index in the change. It is the op's stamp.
type opRef struct {
	node uint32
	i    uint32
}

// cell is one column of a row: the newest write and its stamp.
type cell struct {
	name string // interned
	v    Value
	at   opRef
}

// rowState is the merge state of one row.
type rowState struct {
	key   string // the row key (shared by the changes)
	exist opRef  // newest insert or delete; zero if none seen yet
	alive bool   // exist is an insert
	touch int32  // during Apply: the row's index in Doc.touched, if that entry is this row
	cells []cell // sorted by name; every stamp is >= exist
}

// table is the merge state of one table.
type table struct {
	name     string
	rows     rowIndex   // rows created by Apply (see table.go)
	base     []rowState // rows loaded from a snapshot, sorted by key (see table.go)
	baseKeys []string   // their keys
	live     int        // rows with alive set
}

// cmpStamp compares two op stamps in the total order (lamport, author, seq,
// change ID). The zero opRef sorts before every op.
func (d *Doc) cmpStamp(a, b opRef) int {
	if a.node == b.node {
		switch {
		case a.i < b.i:
			return -1
		case a.i > b.i:
			return 1
		}
		return 0
	}
	if a.node == 0 {
		return -1
	}
	if b.node == 0 {
		return 1
	}
	na, nb := d.g.node(int32(a.node-1)), d.g.node(int32(b.node-1))
	la, lb := na.lamport+uint64(a.i), nb.lamport+uint64(b.i)
	if la != lb {
		if la < lb {
			return -1
		}
		return 1
	}
	if c := na.c.Author.Compare(nb.c.Author); c != 0 {
		return c
	}
	sa, sb := na.c.Seq+uint64(a.i), nb.c.Seq+uint64(b.i)
	if sa != sb {
		if sa < sb {
			return -1
		}
		return 1
	}
	return na.c.id.Compare(nb.c.id)
}

// dropOlder removes the cells of rs older than at.
func (d *Doc) dropOlder(rs *rowState, at opRef) {
	keep := rs.cells[:0]
	for _, c := range rs.cells {
		if d.cmpStamp(c.at, at) > 0 {
			keep = append(keep, c)
		}
	}
	clear(rs.cells[len(keep):])
	rs.cells = keep
}

// newCells returns n zero cells, carved from the document's cell slab: a
// new row's cells cost no allocation of their own, and the cells of rows
// created one after another sit together. The slice's capacity is n, so
// an append moves it out of the slab.
func (d *Doc) newCells(n int) []cell {
	if cap(d.cellSlab)-len(d.cellSlab) < n {
		if n > cellSlabMax/4 {
			return make([]cell, n)
		}
		// Twice the last slab, from a few cells up to cellSlabMax: a
		// document of a few rows spends little on it. A size hint
		// (Reserve) sets the first slab's size instead, so the expected
		// rows' cells take one slab, not four of doubling sizes (twice
		// the cells, in a simulation's every replica). The slab takes the
		// whole size class the allocator rounds it up to.
		size := min(max(2*cap(d.cellSlab), cellSlabMin, d.cellsHint), cellSlabMax)
		d.cellsHint = 0
		d.cellSlab = append([]cell(nil), make([]cell, size)...)[:0]
	}
	k := len(d.cellSlab)
	d.cellSlab = d.cellSlab[:k+n]
	return d.cellSlab[k : k+n : k+n]
}

const (
	cellSlabMin = 8
	cellSlabMax = 1024
)

// applyInsert applies an insert with stamp at. It reports whether the op
// won (changed the row's state).
func (d *Doc) applyInsert(rs *rowState, at opRef, cols []Col) bool {
	if rs.exist.node != 0 && d.cmpStamp(at, rs.exist) < 0 {
		return false
	}
	rs.exist, rs.alive = at, true
	d.dropOlder(rs, at)
	if len(rs.cells) == 0 {
		if cap(rs.cells) < len(cols) {
			rs.cells = d.newCells(len(cols))
		} else {
			rs.cells = rs.cells[:len(cols)]
		}
		for k := range cols {
			rs.cells[k] = cell{name: d.intern(cols[k].Name), v: cols[k].Value, at: at}
		}
		return true
	}
	// Some columns were written after this insert: keep them, add the rest.
	for k := range cols {
		pos, found := findCell(rs.cells, cols[k].Name)
		if found {
			continue // the existing write is newer than the insert
		}
		rs.cells = slices.Insert(rs.cells, pos, cell{name: d.intern(cols[k].Name), v: cols[k].Value, at: at})
	}
	return true
}

// applyDelete applies a delete with stamp at and reports whether it won.
func (d *Doc) applyDelete(rs *rowState, at opRef) bool {
	if rs.exist.node != 0 && d.cmpStamp(at, rs.exist) < 0 {
		return false
	}
	rs.exist, rs.alive = at, false
	d.dropOlder(rs, at)
	return true
}

// applyUpdate applies an update with stamp at and reports whether it won.
func (d *Doc) applyUpdate(rs *rowState, at opRef, col Col) bool {
	if rs.exist.node != 0 && d.cmpStamp(at, rs.exist) < 0 {
		return false
	}
	pos, found := findCell(rs.cells, col.Name)
	if found {
		if d.cmpStamp(rs.cells[pos].at, at) > 0 {
			return false
		}
		rs.cells[pos].v, rs.cells[pos].at = col.Value, at
		return true
	}
	rs.cells = slices.Insert(rs.cells, pos, cell{name: d.intern(col.Name), v: col.Value, at: at})
	return true
}

// findCell returns the position of the column name in cells (sorted by
// name) and whether it is there.
func findCell(cells []cell, name string) (int, bool) {
	if len(cells) <= 8 {
		for k := range cells {
			if cells[k].name >= name {
				return k, cells[k].name == name
			}
		}
		return len(cells), false
	}
	return slices.BinarySearchFunc(cells, name, func(c cell, n string) int { return cmpString(c.name, n) })
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// visibleCols returns a copy of the row's columns, or nil if it is not
// visible.
func (rs *rowState) visibleCols() []Col {
	if !rs.alive {
		return nil
	}
	cols := make([]Col, len(rs.cells))
	for k, c := range rs.cells {
		cols[k] = Col{Name: c.name, Value: c.v}
	}
	return cols
}
