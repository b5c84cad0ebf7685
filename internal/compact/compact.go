// Package compact holds the small-footprint containers of the core's
// per-replica state (the change graph, the gate's author table), of which a
// simulation keeps one copy per node: tens of thousands.
package compact

import "encoding/binary"

// Index maps 32-byte keys (hashes, public keys) to int32 values at 8 bytes
// an entry: a map keyed by a key's first 4 bytes. The caller keeps the
// full keys, and checks a candidate's: keys are hashes or keys, so two of
// them share 4 bytes by chance in a large index, and anyone can grind keys
// that do, so a key whose prefix another key took first goes to a
// collision map keyed by the whole key. A lookup is
//
//	v, ok := x.Candidate(&k)
//	if ok && fullKeyOf(v) != k {
//		v, ok = x.Collided(&k)
//	}
//
// Keys are never removed. The zero Index is empty and ready to use.
type Index[K ~[32]byte] struct {
	short map[uint32]int32 // prefix -> value of the first key with it
	coll  map[K]int32      // the later keys with a taken prefix (nil until one)
}

func prefix[K ~[32]byte](k *K) uint32 { return binary.LittleEndian.Uint32((*k)[:4]) }

// Candidate returns the value of the first key added with k's prefix:
// k's, if that key is k.
func (x *Index[K]) Candidate(k *K) (int32, bool) {
	v, ok := x.short[prefix(k)]
	return v, ok
}

// Collided returns k's value when another key took k's prefix first.
func (x *Index[K]) Collided(k *K) (int32, bool) {
	v, ok := x.coll[*k]
	return v, ok
}

// Add adds key k, which must not be in x, with value v.
func (x *Index[K]) Add(k *K, v int32) {
	p := prefix(k)
	if _, taken := x.short[p]; !taken {
		if x.short == nil {
			x.short = make(map[uint32]int32)
		}
		x.short[p] = v
		return
	}
	if x.coll == nil {
		x.coll = make(map[K]int32)
	}
	x.coll[*k] = v
}

// Collisions returns how many keys are in the collision map.
func (x *Index[K]) Collisions() int { return len(x.coll) }

// Grow returns s with room for k more elements, growing it by at least an
// eighth (rounded up to the allocator's size class), not by append's
// doubling: with thousands of small copies, doubling leaves a quarter of
// their memory unused on average, an eighth about 7% (while every element
// is copied about 8 times in all). A limit above zero bounds the growth
// (not below len(s)+k).
func Grow[T any](s []T, k, limit int) []T {
	if len(s)+k <= cap(s) {
		return s
	}
	want := max(len(s)+k, cap(s)+cap(s)/8, 8)
	if limit > 0 {
		want = max(min(want, limit), len(s)+k)
	}
	// append to a nil slice allocates exactly want elements, rounded up
	// to a size class, without the temporary that make would suggest.
	t := append([]T(nil), make([]T, want)...)
	copy(t, s)
	if c := max(limit, len(s)+k); limit > 0 && cap(t) > c {
		return t[:len(s):c]
	}
	return t[:len(s)]
}
