package crdt

import (
	"fmt"
	"testing"
)

// TestRowIndex adds rows one by one, through every growth of the index,
// and checks every key added so far and keys never added: with the real
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
			for i := range tc.n {
				rs := &rowState{key: key(i)}
				x.add(rs)
				if x.slots.Len() != len(x.list) {
					t.Fatalf("%d rows, %d slots in use", len(x.list), x.slots.Len())
				}
				if i%50 != 0 && i != tc.n-1 {
					continue
				}
				for j := 0; j <= i; j++ {
					if got := x.get(key(j)); got == nil || got.key != key(j) {
						t.Fatalf("%d rows: %q not found", i+1, key(j))
					}
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
