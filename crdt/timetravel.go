package crdt

import (
	"fmt"
	"slices"
)

// At returns a new document holding the state at version v: exactly the
// changes in the causal past of v's heads, applied to a fresh document with
// the same options (no subscribers). It fails with an error wrapping
// ErrUnknownVersion if d lacks one of v's heads. The changes are shared
// with d (they are immutable). Its cost is that of replaying the past of v.
func (d *Doc) At(v Version) (*Doc, error) {
	ids, err := d.g.Past(v)
	if err != nil {
		return nil, fmt.Errorf("crdt: at %s: %w", v, err)
	}
	nd := NewDoc(d.opts)
	for _, id := range ids {
		c := d.g.lookup(id).c
		if _, err := nd.apply(id, c, false); err != nil {
			// The past of a version of d replays into a fresh doc; any error
			// is a broken invariant.
			panic(fmt.Sprintf("crdt: replay of %s failed: %v", id.Short(), err))
		}
	}
	return nd, nil
}

// CellDiff is one cell that differs between two versions. A cell is
// visible when its row is visible and has the column. Old is the value at
// the earlier version (when OldSet), New at the later one (when NewSet).
type CellDiff struct {
	Table, Row, Col string
	Old, New        Value
	OldSet, NewSet  bool
}

// String formats a diff for humans and golden files, such as
// `t/r.c: 1 -> 2`, `t/r.c: + 2` or `t/r.c: 1 -`.
func (c CellDiff) String() string {
	old, nw := "-", "-"
	if c.OldSet {
		old = c.Old.String()
	}
	if c.NewSet {
		nw = c.New.String()
	}
	return fmt.Sprintf("%s/%s.%s: %s -> %s", c.Table, c.Row, c.Col, old, nw)
}

// Diff returns the visible cells that differ between the versions from and
// to, sorted by table, row and column. Rows that appear or disappear show
// up as cells gaining or losing values (a row with no columns therefore
// shows no diff). Both versions must be known (ErrUnknownVersion); they
// need not be ordered: Diff(to, from) is the inverse.
func (d *Doc) Diff(from, to Version) ([]CellDiff, error) {
	a, err := d.At(from)
	if err != nil {
		return nil, err
	}
	b, err := d.At(to)
	if err != nil {
		return nil, err
	}
	return diffDocs(a, b), nil
}

func diffDocs(a, b *Doc) []CellDiff {
	var out []CellDiff
	tables := append(a.Tables(), b.Tables()...)
	slices.Sort(tables)
	tables = slices.Compact(tables)
	for _, tn := range tables {
		ra, rb := a.Scan(tn), b.Scan(tn)
		i, j := 0, 0
		for i < len(ra) || j < len(rb) {
			switch {
			case j == len(rb) || (i < len(ra) && ra[i].Key < rb[j].Key):
				out = diffCols(out, tn, ra[i].Key, ra[i].Cols, nil)
				i++
			case i == len(ra) || rb[j].Key < ra[i].Key:
				out = diffCols(out, tn, rb[j].Key, nil, rb[j].Cols)
				j++
			default:
				out = diffCols(out, tn, ra[i].Key, ra[i].Cols, rb[j].Cols)
				i++
				j++
			}
		}
	}
	return out
}

func diffCols(out []CellDiff, table, row string, ca, cb []Col) []CellDiff {
	i, j := 0, 0
	for i < len(ca) || j < len(cb) {
		switch {
		case j == len(cb) || (i < len(ca) && ca[i].Name < cb[j].Name):
			out = append(out, CellDiff{Table: table, Row: row, Col: ca[i].Name, Old: ca[i].Value, OldSet: true})
			i++
		case i == len(ca) || cb[j].Name < ca[i].Name:
			out = append(out, CellDiff{Table: table, Row: row, Col: cb[j].Name, New: cb[j].Value, NewSet: true})
			j++
		default:
			if !ca[i].Value.Equal(cb[j].Value) {
				out = append(out, CellDiff{Table: table, Row: row, Col: ca[i].Name, Old: ca[i].Value, New: cb[j].Value, OldSet: true, NewSet: true})
			}
			i++
			j++
		}
	}
	return out
}
