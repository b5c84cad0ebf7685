// Package compact holds the small-footprint containers of the core's
// per-replica state (the change graph, the gate's author table), of which a
// simulation keeps one copy per node: tens of thousands.
package compact

import (
	"encoding/binary"
	"math/rand/v2"
)

// Index maps 32-byte keys (hashes, public keys) to int32 values at about
// 10 bytes an entry: an open-addressing table of 8-byte slots, each a key's
// first 4 bytes and its value. The caller keeps the full keys, and checks
// a candidate's: keys are hashes or keys, so two of them share 4 bytes by
// chance in a large index, and anyone can grind keys that do, so a key
// whose prefix another key took first goes to a collision map keyed by the
// whole key. A lookup is
//
//	v, ok := x.Candidate(&k)
//	if ok && fullKeyOf(v) != k {
//		v, ok = x.Collided(&k)
//	}
//
// A lookup reads one or two adjacent cache lines of slots, where a Go map
// reads its header, directory, table and group: with thousands of indexes
// (one per simulated replica), all cold, that is most of the lookup's
// cost. Slots are placed by a multiply-shift hash of the prefix with a
// per-process random multiplier, so keys ground to share a slot region
// without sharing a prefix do not make long probe runs; the layout is the
// only thing the random number decides.
//
// Keys are never removed. The zero Index is empty and ready to use.
type Index[K ~[32]byte] struct {
	slots []uint64    // 0 = empty, else prefix<<32 | (value+1)
	n     int         // slots in use
	coll  map[K]int32 // the later keys with a taken prefix (nil until one)
}

// mult is the hash's multiplier: random and odd.
var mult = rand.Uint64() | 1

func prefix[K ~[32]byte](k *K) uint32 { return binary.LittleEndian.Uint32((*k)[:4]) }

// home returns the first slot to probe for prefix p among n slots:
// multiply-shift hashing, then a multiply to map it onto [0, n).
func home(p uint32, n int) int {
	h := uint32((uint64(p) * mult) >> 32)
	return int((uint64(h) * uint64(n)) >> 32)
}

// Candidate returns the value of the first key added with k's prefix:
// k's, if that key is k.
func (x *Index[K]) Candidate(k *K) (int32, bool) {
	v := x.lookup(prefix(k))
	return v, v >= 0
}

// Candidates sets out[i] to the value Candidate(&ks[i]) returns, or -1 if
// it returns none; out must be at least as long as ks. The lookups run in
// one loop, so that the processor overlaps their cache misses instead of
// waiting for each in turn (the parents of a change are looked up
// together).
func (x *Index[K]) Candidates(ks []K, out []int32) {
	out = out[:len(ks)]
	for i := range ks {
		out[i] = x.lookup(prefix(&ks[i]))
	}
}

// lookup returns the value in the slot of prefix p, or -1.
func (x *Index[K]) lookup(p uint32) int32 {
	n := len(x.slots)
	if n == 0 {
		return -1
	}
	for i := home(p, n); ; {
		s := x.slots[i]
		switch {
		case s == 0:
			return -1
		case uint32(s>>32) == p:
			return int32(uint32(s)) - 1
		}
		if i++; i == n {
			i = 0
		}
	}
}

// Collided returns k's value when another key took k's prefix first.
func (x *Index[K]) Collided(k *K) (int32, bool) {
	v, ok := x.coll[*k]
	return v, ok
}

// Add adds key k, which must not be in x, with value v (0 <= v < 1<<31-1).
func (x *Index[K]) Add(k *K, v int32) {
	if v < 0 || v == 1<<31-1 {
		panic("compact: Index value out of range")
	}
	if _, taken := x.Candidate(k); taken {
		if x.coll == nil {
			x.coll = make(map[K]int32)
		}
		x.coll[*k] = v
		return
	}
	// At most 13/16 full, so that a miss probes at most about 15 slots
	// (two cache lines) on average; grown by a quarter, not doubled.
	if (x.n+1)*16 > len(x.slots)*13 {
		x.grow(max(8, len(x.slots)+len(x.slots)/4))
	}
	x.place(prefix(k), v)
	x.n++
}

// place puts (p, v) into the first free slot from p's home.
func (x *Index[K]) place(p uint32, v int32) {
	i := home(p, len(x.slots))
	for x.slots[i] != 0 {
		if i++; i == len(x.slots) {
			i = 0
		}
	}
	x.slots[i] = uint64(p)<<32 | uint64(uint32(v)+1)
}

// grow rehashes x into n slots.
func (x *Index[K]) grow(n int) {
	old := x.slots
	// The whole size class the allocator rounds n up to.
	x.slots = append([]uint64(nil), make([]uint64, n)...)
	x.slots = x.slots[:cap(x.slots)]
	for _, s := range old {
		if s != 0 {
			x.place(uint32(s>>32), int32(uint32(s))-1)
		}
	}
}

// Len returns how many keys x holds.
func (x *Index[K]) Len() int { return x.n + len(x.coll) }

// Collisions returns how many keys are in the collision map.
func (x *Index[K]) Collisions() int { return len(x.coll) }

// Grow returns s with room for k more elements, growing it by at least a
// quarter (rounded up to the allocator's size class), not by append's
// doubling: with thousands of small copies, doubling leaves a quarter of
// their memory unused on average, a quarter growth about a tenth, while
// every element is copied about 4 times in all (growth by an eighth left
// 7% unused but copied each element about 8 times, and the copies cost
// more: 4% of a 10,000-node simulation's time, for 1% of its heap). A
// limit above zero bounds the growth (not below len(s)+k).
func Grow[T any](s []T, k, limit int) []T {
	if len(s)+k <= cap(s) {
		return s
	}
	want := max(len(s)+k, cap(s)+cap(s)/4, 8)
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
