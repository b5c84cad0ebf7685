package replica

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/convergenode/convergenode/crdt"
)

// Bloom is a deterministic Bloom filter over change IDs, used by the
// reconciliation hello to say "I have these changes" compactly.
//
// Bit positions come from double hashing of the ID's first 16 bytes mixed
// with Seed (splitmix64 finalizer), so the same IDs, size and seed always
// give the same bits on every platform. Change IDs are BLAKE3 outputs; the
// per-filter Seed, drawn from the replica's seeded source, keeps an author
// from grinding IDs that collide in every peer's filter.
type Bloom struct {
	K    uint8    // number of hash functions, 1..maxBloomK
	Seed uint64   // hash seed
	Bits []uint64 // the bit array, len(Bits)*64 bits
}

const maxBloomK = 16

// NewBloom returns an empty filter sized for n entries at false-positive
// rate p (0 < p < 1). n == 0 gives a filter of one word.
func NewBloom(n int, p float64, seed uint64) *Bloom {
	words, k := bloomShape(n, p)
	return &Bloom{K: uint8(k), Seed: seed, Bits: make([]uint64, words)}
}

// bloomShape returns the number of 64-bit words and of hash functions of
// a filter for n entries at false-positive rate p (see NewBloom).
func bloomShape(n int, p float64) (words, k int) {
	if n < 1 {
		n = 1
	}
	if !(p > 0 && p < 1) {
		p = 0.001
	}
	m := math.Ceil(-float64(n) * math.Log(p) / (math.Ln2 * math.Ln2))
	words = max(int((m+63)/64), 1)
	k = int(math.Round(float64(words*64) / float64(n) * math.Ln2))
	return words, max(1, min(k, maxBloomK))
}

// bloomSizeBytes returns the size in bytes of the bit array NewBloom would
// allocate for n entries at rate p.
func bloomSizeBytes(n int, p float64) int {
	words, _ := bloomShape(n, p)
	return words * 8
}

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func (b *Bloom) hashes(id crdt.ID) (h1, h2 uint64) {
	h1 = mix64(binary.LittleEndian.Uint64(id[0:8]) ^ b.Seed)
	h2 = mix64(binary.LittleEndian.Uint64(id[8:16])^bits.RotateLeft64(b.Seed, 32)) | 1
	return h1, h2
}

// Add inserts id.
func (b *Bloom) Add(id crdt.ID) {
	m := uint64(len(b.Bits)) * 64
	h1, h2 := b.hashes(id)
	for i := uint64(0); i < uint64(b.K); i++ {
		p := (h1 + i*h2) % m
		b.Bits[p/64] |= 1 << (p % 64)
	}
}

// Has reports whether id may have been added (false positives possible,
// no false negatives). A nil or empty filter has nothing.
func (b *Bloom) Has(id crdt.ID) bool {
	if b == nil || len(b.Bits) == 0 || b.K == 0 {
		return false
	}
	m := uint64(len(b.Bits)) * 64
	h1, h2 := b.hashes(id)
	for i := uint64(0); i < uint64(b.K); i++ {
		p := (h1 + i*h2) % m
		if b.Bits[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}
