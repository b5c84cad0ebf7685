package crdt

import (
	"fmt"
	"testing"
)

// TestRowIndex adds rows one by one, through every growth of the index,
// and checks every key added so far (at the address add returned: a row
// never moves, since Apply keeps pointers to rows) and keys never added:
// with the real
// hash, and with a hash under which most keys collide (only their length
// tells them apart), so that lookups walk long runs of slots and compare
// keys.
func TestRowIndex(t *testing.T) {
	for _, tc := range []struct {
		name string
		hash func(string) uint32
		n    int
	}{
		{"seeded hash", rowHash, 3000},
		{"colliding hash", func(k string) uint32 { return uint32(len(k)) }, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saved := rowHash
			rowHash = tc.hash
			defer func() { rowHash = saved }()
			var x rowIndex
			if x.get("a") != nil {
				t.Fatal("empty index found a row")
			}
			key := func(i int) string { return fmt.Sprintf("row-%d", i) }
			var added []*rowState
			for i := range tc.n {
				if i == tc.n/2 {
					x.reserve(tc.n / 3) // a new chunk, part of the last one unused
				}
				rs := x.add(key(i))
				rs.touch = int32(i)
				added = append(added, rs)
				if x.slots.Len() != x.rows.Len() || x.rows.Len() != i+1 {
					t.Fatalf("%d rows, %d counted, %d slots in use", i+1, x.rows.Len(), x.slots.Len())
				}
				if i%50 != 0 && i != tc.n-1 {
					continue
				}
				for j := 0; j <= i; j++ {
					if got := x.get(key(j)); got != added[j] || got.key != key(j) || got.touch != int32(j) {
						t.Fatalf("%d rows: %q not found where added", i+1, key(j))
					}
				}
				j := 0
				for rs := range x.all {
					if rs != added[j] {
						t.Fatalf("%d rows: all yields row %d out of order", i+1, j)
					}
					j++
				}
				if j != i+1 {
					t.Fatalf("%d rows: all yields %d", i+1, j)
				}
				for _, k := range []string{key(i + 1), key(-1), "", "row-"} {
					if x.get(k) != nil {
						t.Fatalf("%d rows: absent %q found", i+1, k)
					}
				}
			}
		})
	}
}

// TestNewCells: cells carved from the slab are zero, as long as asked, and
// independent: appending to one never writes into the next.
// TestNewCellsReserved: after Reserve, the hinted rows' cells come from
// one slab.
func TestNewCellsReserved(t *testing.T) {
	for _, rows := range []int{0, 5, 64, 300, 5000} {
		d := NewDoc(DocOptions{ID: "cells"})
		d.Reserve(0, rows)
		first := d.newCells(1)
		for range rows - 1 {
			d.newCells(1)
		}
		same := &d.cellSlab[:1][0] == &first[:1][0]
		if want := rows <= cellSlabMax; same != want {
			t.Fatalf("%d rows: all in the first slab %v, want %v", rows, same, want)
		}
	}
}

func TestNewCells(t *testing.T) {
	d := NewDoc(DocOptions{ID: "cells"})
	var all [][]cell
	for i := range 3000 {
		n := 1 + i%5
		if i%1000 == 999 {
			n = cellSlabMax // larger than a slab allows: a separate allocation
		}
		c := d.newCells(n)
		if len(c) != n || cap(c) != n {
			t.Fatalf("cells %d: len %d cap %d, want %d", i, len(c), cap(c), n)
		}
		for k := range c {
			if c[k] != (cell{}) {
				t.Fatalf("cells %d: not zero", i)
			}
			c[k].name = fmt.Sprint(i)
		}
		all = append(all, c)
	}
	for i := range all {
		all[i] = append(all[i], cell{name: "appended"})
	}
	for i, c := range all {
		for k := range len(c) - 1 {
			if c[k].name != fmt.Sprint(i) {
				t.Fatalf("cells %d: cell %d overwritten: %q", i, k, c[k].name)
			}
		}
	}
}
