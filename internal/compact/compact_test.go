package compact

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestIndexCollisions fills an index with keys of which many share their
// first 4 bytes (as ground keys would) and checks every lookup against a
// plain map, for keys in the index and keys that are not.
func TestIndexCollisions(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var x Index[[32]byte]
	want := map[[32]byte]int32{}
	var keys [][32]byte
	lookup := func(k [32]byte) (int32, bool) {
		v, ok := x.Candidate(&k)
		if ok && keys[v] != k {
			v, ok = x.Collided(&k)
		}
		return v, ok
	}
	for i := range 3000 {
		var k [32]byte
		for j := range k {
			k[j] = byte(rng.Uint32())
		}
		k[0], k[1], k[2], k[3] = 0, 0, 0, byte(rng.IntN(4)) // 4 prefixes in all
		if _, ok := want[k]; ok {
			continue
		}
		if _, ok := lookup(k); ok {
			t.Fatalf("key %d found before Add", i)
		}
		x.Add(&k, int32(len(keys)))
		want[k] = int32(len(keys))
		keys = append(keys, k)
	}
	if x.Collisions() != len(keys)-4 {
		t.Fatalf("%d collisions, want %d", x.Collisions(), len(keys)-4)
	}
	for _, k := range keys {
		if v, ok := lookup(k); !ok || v != want[k] {
			t.Fatalf("key %x: %d, %v; want %d", k[:4], v, ok, want[k])
		}
		k[31] ^= 1
		if _, in := want[k]; !in {
			if _, ok := lookup(k); ok {
				t.Fatalf("absent key %x found", k[:4])
			}
		}
	}
}

func TestGrow(t *testing.T) {
	var s []int
	for i := range 1000 {
		s = append(Grow(s, 1, 0), i)
		if c := cap(s); c > 8 && c > len(s)+len(s)/2+8 {
			t.Fatalf("len %d: cap %d, more than a quarter (and a size class) over", len(s), c)
		}
	}
	for i, v := range s {
		if v != i {
			t.Fatalf("s[%d] = %d", i, v)
		}
	}
	if g := Grow(make([]int, 0, 4), 10, 6); len(g) != 0 || cap(g) < 10 {
		t.Fatalf("limit below need: cap %d, want at least 10", cap(g))
	}
	if g := Grow(make([]int, 100), 1, 101); cap(g) != 101 {
		t.Fatalf("limit: cap %d, want 101", cap(g))
	}
}

// TestIndexGrowth adds random keys one by one, through every growth of the
// table, and after each size checks every key added so far, a key not
// added, the load bound and Len.
func TestIndexGrowth(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var x Index[[32]byte]
	if _, ok := x.Candidate(&[32]byte{}); ok || x.Len() != 0 {
		t.Fatal("zero Index not empty")
	}
	var keys [][32]byte
	for n := range 2000 {
		var k [32]byte
		for j := range k {
			k[j] = byte(rng.Uint32())
		}
		x.Add(&k, int32(n))
		keys = append(keys, k)
		if x.Len() != n+1 {
			t.Fatalf("Len %d after %d adds", x.Len(), n+1)
		}
		if x.slots.n*16 > len(x.slots.s)*13 {
			t.Fatalf("%d keys in %d slots: over 13/16", x.slots.n, len(x.slots.s))
		}
		if n%97 != 0 && n > 40 {
			continue
		}
		for i := range keys {
			v, ok := x.Candidate(&keys[i])
			if ok && keys[v] != keys[i] {
				v, ok = x.Collided(&keys[i])
			}
			if !ok || v != int32(i) {
				t.Fatalf("%d keys: key %d gives %d, %v", n+1, i, v, ok)
			}
		}
		absent := k
		absent[0] ^= 0x80
		if v, ok := x.Candidate(&absent); ok && keys[v] == absent {
			t.Fatal("absent key found")
		}
	}
}

// TestIndexValueRange checks the largest value an entry holds and that one
// past it is refused.
func TestIndexValueRange(t *testing.T) {
	var x Index[[32]byte]
	k := [32]byte{1}
	x.Add(&k, 1<<31-2)
	if v, ok := x.Candidate(&k); !ok || v != 1<<31-2 {
		t.Fatalf("got %d, %v", v, ok)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("value 1<<31-1 accepted")
		}
	}()
	x.Add(&[32]byte{2}, 1<<31-1)
}

// BenchmarkIndexCold looks up keys in 10,000 indexes of 100 keys each, one
// index after another at random, as a simulation's replicas do: every
// lookup starts cold in the cache. The map variant is the Go map of
// prefixes this type replaced, for comparison.
func BenchmarkIndexCold(b *testing.B) {
	const indexes, per = 10000, 100
	rng := rand.New(rand.NewPCG(5, 6))
	keys := make([][32]byte, per)
	for i := range keys {
		for j := range keys[i] {
			keys[i][j] = byte(rng.Uint32())
		}
	}
	order := make([]int32, 1<<16)
	for i := range order {
		order[i] = int32(rng.IntN(indexes))
	}
	b.Run("flat", func(b *testing.B) {
		xs := make([]Index[[32]byte], indexes)
		for i := range xs {
			for j := range keys {
				xs[i].Add(&keys[j], int32(j))
			}
		}
		for i := 0; b.Loop(); i++ {
			if _, ok := xs[order[i&(len(order)-1)]].Candidate(&keys[i%per]); !ok {
				b.Fatal("key missing")
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		xs := make([]map[uint32]int32, indexes)
		for i := range xs {
			xs[i] = map[uint32]int32{}
			for j := range keys {
				xs[i][binary.LittleEndian.Uint32(keys[j][:4])] = int32(j)
			}
		}
		for i := 0; b.Loop(); i++ {
			if _, ok := xs[order[i&(len(order)-1)]][binary.LittleEndian.Uint32(keys[i%per][:4])]; !ok {
				b.Fatal("key missing")
			}
		}
	})
}

// TestSlotsEqualHashes stores many values under a few hashes, as a
// table of keys whose hashes collide would, and finds each through match
// (the caller's key check), through growth; a hash with no value, or no
// value that match accepts, gives -1.
func TestSlotsEqualHashes(t *testing.T) {
	var x Slots
	hash := func(v int32) uint32 { return uint32(v%5) * 0x9e3779b9 }
	for v := range int32(600) {
		x.Insert(hash(v), v)
		if x.Len() != int(v)+1 {
			t.Fatalf("Len %d after %d inserts", x.Len(), v+1)
		}
	}
	for v := range int32(600) {
		if got := x.Find(hash(v), func(w int32) bool { return w == v }); got != v {
			t.Fatalf("value %d: found %d", v, got)
		}
	}
	if got := x.Find(hash(3), nil); got < 0 || hash(got) != hash(3) {
		t.Fatalf("Find without match: %d", got)
	}
	if got := x.Find(hash(3), func(int32) bool { return false }); got != -1 {
		t.Fatalf("no value accepted, found %d", got)
	}
	if got := x.Find(12345, nil); got != -1 {
		t.Fatalf("absent hash found %d", got)
	}
}

// TestSlotsReserve checks that after Reserve(n) the next n inserts do not
// grow the table, on an empty table and on one already holding values,
// and that every value is still found.
func TestSlotsReserve(t *testing.T) {
	var s Slots
	hash := func(v int32) uint32 { return uint32(v) * 0x9e3779b1 }
	v := int32(0)
	for _, n := range []int{100, 1, 7, 1000} {
		s.Reserve(n)
		size := len(s.s)
		for range n {
			s.Insert(hash(v), v)
			v++
		}
		if len(s.s) != size {
			t.Fatalf("Reserve(%d): grew from %d to %d slots", n, size, len(s.s))
		}
	}
	s.Reserve(0)
	s.Reserve(-3)
	for w := range v {
		if got := s.Find(hash(w), func(x int32) bool { return x == w }); got != w {
			t.Fatalf("value %d: Find gives %d", w, got)
		}
	}
	if s.Len() != int(v) {
		t.Fatalf("Len %d, want %d", s.Len(), v)
	}
}

// TestStable adds values through many chunks, with a Reserve halfway, and
// checks that every value stays at the address and position Add returned,
// and that All yields them in order.
func TestStable(t *testing.T) {
	var s Stable[[3]int]
	var addrs []*[3]int
	var pos []int32
	const n = 5000
	for i := range n {
		if i == n/2 {
			s.Reserve(n / 3)
		}
		p, a := s.Add([3]int{i, -i, 7})
		a[2] = i * 2 // written through the address: At must see it
		addrs, pos = append(addrs, a), append(pos, p)
		if s.Len() != i+1 {
			t.Fatalf("Len %d after %d adds", s.Len(), i+1)
		}
	}
	for i := range n {
		if got := s.At(pos[i]); got != addrs[i] || *got != [3]int{i, -i, i * 2} {
			t.Fatalf("value %d moved or changed: %v", i, *got)
		}
	}
	i := 0
	for v := range s.All {
		if v != addrs[i] {
			t.Fatalf("All yields value %d out of order", i)
		}
		i++
	}
	if i != n {
		t.Fatalf("All yields %d values, want %d", i, n)
	}
	if len(s.chunks) > 40 {
		t.Fatalf("%d chunks for %d values", len(s.chunks), n)
	}
}

// The Prefetch methods take empty values and change nothing.
func TestPrefetchChangesNothing(t *testing.T) {
	var s Slots
	var x Index[[32]byte]
	var st Stable[int]
	k := [32]byte{1, 2, 3}
	s.Prefetch(7)
	x.Prefetch(&k)
	st.PrefetchNext()
	x.Add(&k, 5)
	st.Reserve(8)
	st.Add(1)
	x.Prefetch(&k)
	st.PrefetchNext()
	if v, ok := x.Candidate(&k); !ok || v != 5 || x.Len() != 1 || st.Len() != 1 || *st.At(0) != 1 {
		t.Fatalf("changed: %d %v %d %d", v, ok, x.Len(), st.Len())
	}
}
