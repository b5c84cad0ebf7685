// Package compact holds the small-footprint containers of the core's
// per-replica state (the change graph, the gate's author table, a
// document's rows), of which a simulation keeps one copy per node: tens of
// thousands.
package compact

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/convergenode/convergenode/internal/prefetch"
)

// Slots is an open-addressing table of int32 values under 32-bit hashes,
// at about 10 bytes an entry: 8-byte slots (hash and value), at most 13/16
// full, grown by a quarter. A lookup reads one or two adjacent cache lines
// of slots, where a Go map reads its header, directory, table and group:
// with thousands of tables (one per simulated replica), all cold, that is
// most of a lookup's cost. The caller keeps the keys and supplies their
// hashes, which must be well mixed (slots are placed by the hash's high
// bits) and not predictable by whoever chooses the keys. Values with equal
// hashes are all kept, and Find tells them apart through the caller's
// match. Values are never removed. The zero Slots is empty and ready to
// use.
type Slots struct {
	s []uint64 // 0 = empty, else hash<<32 | (value+1)
	n int      // slots in use
}

// home returns the first slot to probe for hash h among n slots.
func home(h uint32, n int) int { return int((uint64(h) * uint64(n)) >> 32) }

// Find returns the first value stored under hash h that match accepts (nil
// accepts any), in probe order, or -1.
func (t *Slots) Find(h uint32, match func(v int32) bool) int32 {
	n := len(t.s)
	if n == 0 {
		return -1
	}
	for i := home(h, n); ; {
		s := t.s[i]
		if s == 0 {
			return -1
		}
		if uint32(s>>32) == h {
			if v := int32(uint32(s)) - 1; match == nil || match(v) {
				return v
			}
		}
		if i++; i == n {
			i = 0
		}
	}
}

// Insert adds value v (0 <= v < 1<<31-1) under hash h.
func (t *Slots) Insert(h uint32, v int32) {
	if v < 0 || v == 1<<31-1 {
		panic("compact: Slots value out of range")
	}
	// At most 13/16 full, so that a miss probes at most about 15 slots
	// (two cache lines) on average; grown by a quarter, not doubled.
	if (t.n+1)*16 > len(t.s)*13 {
		t.grow(max(8, len(t.s)+len(t.s)/4))
	}
	t.place(uint64(h)<<32 | uint64(uint32(v)+1))
	t.n++
}

// Reserve makes room for n more values: inserting them does not grow t
// (a size hint: it never changes what t holds).
func (t *Slots) Reserve(n int) {
	if need := (t.n+n)*16/13 + 1; n > 0 && need > len(t.s) {
		t.grow(need)
	}
}

// place puts slot value s into the first free slot from its hash's home.
func (t *Slots) place(s uint64) {
	i := home(uint32(s>>32), len(t.s))
	for t.s[i] != 0 {
		if i++; i == len(t.s) {
			i = 0
		}
	}
	t.s[i] = s
}

// grow rehashes t into n slots (from the hashes they hold).
func (t *Slots) grow(n int) {
	old := t.s
	// The whole size class the allocator rounds n up to.
	t.s = append([]uint64(nil), make([]uint64, n)...)
	t.s = t.s[:cap(t.s)]
	for _, s := range old {
		if s != 0 {
			t.place(s)
		}
	}
}

// Len returns how many values t holds.
func (t *Slots) Len() int { return t.n }

// Size returns how many slots t has: it changes when t grows.
func (t *Slots) Size() int { return len(t.s) }

// Index maps 32-byte keys (hashes, public keys) to int32 values in Slots,
// under a hash of the key's first 4 bytes. The caller keeps the full keys,
// and checks a candidate's: keys are hashes or keys, so two of them share
// 4 bytes by chance in a large index, and anyone can grind keys that do,
// so a key whose prefix another key took first goes to a collision map
// keyed by the whole key (so ground keys never make a long run of equal
// hashes in the slots). A lookup is
//
//	v, ok := x.Candidate(&k)
//	if ok && fullKeyOf(v) != k {
//		v, ok = x.Collided(&k)
//	}
//
// The hash multiplies the prefix by a per-process random odd number: a
// bijection, so equal hashes mean equal prefixes, and keys ground to share
// a slot region without sharing a prefix cannot be chosen in advance; the
// layout is the only thing the random number decides.
//
// Keys are never removed. The zero Index is empty and ready to use.
type Index[K ~[32]byte] struct {
	slots Slots
	coll  map[K]int32 // the later keys with a taken prefix (nil until one)
}

// mult is the prefix hash's multiplier: random and odd.
var mult = uint32(rand.Uint64()) | 1

// prefixHash returns the slot hash of k: its first 4 bytes times mult.
func prefixHash[K ~[32]byte](k *K) uint32 { return binary.LittleEndian.Uint32((*k)[:4]) * mult }

// Candidate returns the value of the first key added with k's prefix:
// k's, if that key is k.
func (x *Index[K]) Candidate(k *K) (int32, bool) {
	v := x.slots.Find(prefixHash(k), nil)
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
		out[i] = x.slots.Find(prefixHash(&ks[i]), nil)
	}
}

// Collided returns k's value when another key took k's prefix first.
func (x *Index[K]) Collided(k *K) (int32, bool) {
	v, ok := x.coll[*k]
	return v, ok
}

// Add adds key k, which must not be in x, with value v (0 <= v < 1<<31-1).
func (x *Index[K]) Add(k *K, v int32) {
	if _, taken := x.Candidate(k); taken {
		if v < 0 || v == 1<<31-1 {
			panic("compact: Index value out of range")
		}
		if x.coll == nil {
			x.coll = make(map[K]int32)
		}
		x.coll[*k] = v
		return
	}
	x.slots.Insert(prefixHash(k), v)
}

// Reserve makes room for n more keys (a size hint).
func (x *Index[K]) Reserve(n int) { x.slots.Reserve(n) }

// Size returns how many slots x has: it changes when x grows.
func (x *Index[K]) Size() int { return x.slots.Size() }

// Len returns how many keys x holds.
func (x *Index[K]) Len() int { return x.slots.Len() + len(x.coll) }

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

// Stable is a list of values that never move once added: they live in
// chunks that never grow past their capacity, so a pointer to one stays
// valid (a slice that grows by copying would leave it on a stale copy),
// and adding one allocates nothing but, now and then, a chunk. A value is
// found by its position, a 32-bit number (chunk<<stableBits | offset) that
// fits a Slots value. Held by value, a list's elements sit together where
// one allocation each would scatter them over the heap. The zero Stable is
// empty and ready to use.
type Stable[T any] struct {
	chunks [][]T
	n      int
}

const (
	stableBits     = 20
	stableChunkMax = 1 << stableBits
	stableChunkMin = 4
	stableMax      = 1<<31 - 1
)

// Len returns how many values s holds.
func (s *Stable[T]) Len() int { return s.n }

// Reserve makes room for n more values: adding them allocates nothing.
// The rest of the last chunk goes unused if it is too small.
func (s *Stable[T]) Reserve(n int) {
	if n <= 0 {
		return
	}
	if k := len(s.chunks) - 1; k >= 0 && cap(s.chunks[k])-len(s.chunks[k]) >= n {
		return
	}
	s.chunks = append(s.chunks, make([]T, 0, min(n, stableChunkMax)))
}

// Add appends v and returns its position and address. It panics past
// about two billion values.
func (s *Stable[T]) Add(v T) (int32, *T) {
	k := len(s.chunks) - 1
	if k < 0 || len(s.chunks[k]) == cap(s.chunks[k]) {
		// A quarter of the values so far (at least four: a replica's dozen
		// peers fill three chunks): at most a fifth of the space unused,
		// and a few dozen chunks up to the largest.
		k++
		if k<<stableBits > stableMax-stableChunkMax {
			panic("compact: Stable is full")
		}
		s.chunks = append(s.chunks, make([]T, 0, min(max(s.n/4, stableChunkMin), stableChunkMax)))
	}
	c := &s.chunks[k]
	*c = append(*c, v)
	s.n++
	off := len(*c) - 1
	return int32(k<<stableBits | off), &(*c)[off]
}

// At returns the value at position pos, which Add returned.
func (s *Stable[T]) At(pos int32) *T {
	return &s.chunks[pos>>stableBits][pos&(stableChunkMax-1)]
}

// All yields the values in the order added.
func (s *Stable[T]) All(yield func(*T) bool) {
	for _, c := range s.chunks {
		for i := range c {
			if !yield(&c[i]) {
				return
			}
		}
	}
}

// Prefetch starts loading the slot where a search for hash h begins (see
// package prefetch); it changes nothing.
func (t *Slots) Prefetch(h uint32) {
	if n := len(t.s); n > 0 {
		prefetch.Of(&t.s[home(h, n)])
	}
}

// Prefetch starts loading the slot where a search for k begins.
func (x *Index[K]) Prefetch(k *K) { x.slots.Prefetch(prefixHash(k)) }

// PrefetchNext starts loading where the next Add puts its value, if the
// last chunk has room for it.
func (s *Stable[T]) PrefetchNext() {
	if k := len(s.chunks) - 1; k >= 0 {
		prefetch.Next(s.chunks[k])
	}
}
