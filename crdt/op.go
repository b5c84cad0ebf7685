package crdt

import (
	"fmt"
	"sort"
	"strconv"
)

// OpKind is the kind of an Op. The numbers are part of the wire format.
type OpKind uint8

// The op kinds.
const (
	OpInsert OpKind = 1 // Insert(table, row, {col: value})
	OpUpdate OpKind = 2 // Update(table, row, col, value)
	OpDelete OpKind = 3 // Delete(table, row)
)

func (k OpKind) String() string {
	switch k {
	case OpInsert:
		return "insert"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	}
	return "op(" + strconv.Itoa(int(k)) + ")"
}

// Col is one column assignment.
type Col struct {
	Name  string
	Value Value
}

// Op is one operation on a table row.
//
//   - OpInsert: Cols holds the row's columns, sorted by name, no duplicates
//     (may be empty: a row with no columns).
//   - OpUpdate: Cols holds exactly one column.
//   - OpDelete: Cols is empty.
type Op struct {
	Kind  OpKind
	Table string
	Row   string
	Cols  []Col
}

// Insert returns an insert op. cols is copied and sorted by name; a
// duplicate column name makes the op invalid (see Op.Validate).
func Insert(table, row string, cols map[string]Value) Op {
	cs := make([]Col, 0, len(cols))
	for k, v := range cols {
		cs = append(cs, Col{Name: k, Value: v})
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	return Op{Kind: OpInsert, Table: table, Row: row, Cols: cs}
}

// Update returns an update op setting one column.
func Update(table, row, col string, v Value) Op {
	return Op{Kind: OpUpdate, Table: table, Row: row, Cols: []Col{{Name: col, Value: v}}}
}

// Delete returns a delete op.
func Delete(table, row string) Op {
	return Op{Kind: OpDelete, Table: table, Row: row}
}

// String formats an op for humans and golden files.
func (o Op) String() string {
	switch o.Kind {
	case OpInsert:
		s := fmt.Sprintf("insert %s/%s {", o.Table, o.Row)
		for i, c := range o.Cols {
			if i > 0 {
				s += ", "
			}
			s += c.Name + ": " + c.Value.String()
		}
		return s + "}"
	case OpUpdate:
		if len(o.Cols) == 1 {
			return fmt.Sprintf("update %s/%s %s=%s", o.Table, o.Row, o.Cols[0].Name, o.Cols[0].Value)
		}
	case OpDelete:
		return fmt.Sprintf("delete %s/%s", o.Table, o.Row)
	}
	return fmt.Sprintf("invalid op %d", o.Kind)
}
