package compact

import (
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
		if c := cap(s); c > 8 && c > len(s)+len(s)/4+8 {
			t.Fatalf("len %d: cap %d, more than an eighth (and a size class) over", len(s), c)
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
