package bft

import "github.com/convergenode/convergenode/crdt"

// SigCache is a bounded cache of successful signature verifications, keyed
// by the exact (author key, change ID, signature) triple: the 128 bytes
// themselves, not a hash of them, so a hit can only be the same key,
// message and signature that [Verify] accepted before. Failures are never
// stored, so a bad signature costs a verification every time it is seen.
//
// A node verifies a gossiped change twice (its pubsub validator, then the
// replica's Step); sharing one SigCache between the two makes the second
// check a map lookup. It does not change the verification rule (see the
// package documentation): [SigCache.Verify] returns exactly what [Verify]
// returns for the same arguments.
//
// The cache holds at most n entries (see [NewSigCache]) in two
// generations: new entries go into the current one; when it is full it
// becomes the old one and the previous old one is dropped. A lookup checks
// both. Eviction is O(1) amortised and needs no per-entry bookkeeping.
// [EnvCache] works the same way.
//
// A SigCache is safe for concurrent use. A nil *SigCache is valid and
// caches nothing: its Verify is [Verify].
type SigCache struct {
	m *twoGen[sigKey, struct{}]
}

// sigKey is author key | change ID | signature.
type sigKey [32 + 32 + 64]byte

// SigCacheStats are a [SigCache]'s counters.
type SigCacheStats struct {
	Hits    uint64 // Verify calls answered from the cache (no crypto)
	Misses  uint64 // Verify calls that ran ed25519.Verify (successful or not)
	Entries int    // verifications held now (at most the cache's bound)
}

// NewSigCache returns a cache holding at most n successful verifications
// (n is rounded up to an even number, at least 2). n <= 0 returns nil,
// which is a valid cache that caches nothing.
func NewSigCache(n int) *SigCache {
	if n <= 0 {
		return nil
	}
	return &SigCache{m: newTwoGen[sigKey, struct{}](n, true)}
}

// Verify reports whether sig is author's signature of the change ID id,
// exactly as [Verify] does. A triple verified successfully before (and not
// yet evicted) is answered without cryptography; otherwise it runs
// ed25519.Verify outside the lock and remembers a success.
func (c *SigCache) Verify(author crdt.Author, id crdt.ID, sig *[64]byte) bool {
	if c == nil {
		return Verify(author, id, sig)
	}
	var k sigKey
	copy(k[:32], author[:])
	copy(k[32:64], id[:])
	copy(k[64:], sig[:])
	if _, hit := c.m.get(k, nil); hit {
		return true
	}
	if !Verify(author, id, sig) {
		return false
	}
	c.m.add(k, struct{}{})
	return true
}

// Stats returns the counters; zero for a nil cache.
func (c *SigCache) Stats() SigCacheStats {
	if c == nil {
		return SigCacheStats{}
	}
	h, m, n := c.m.stats()
	return SigCacheStats{Hits: h, Misses: m, Entries: n}
}
