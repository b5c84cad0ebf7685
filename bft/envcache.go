package bft

import "github.com/convergenode/convergenode/crdt"

// EnvCache shares checked envelopes between the gates of one process: the
// first check of an encoded envelope decodes it ([CheckStatelessCached])
// and keeps the result; every later check of the same bytes for the same
// document returns that same *Envelope, with its decoded change, instead
// of decoding it again. The gates that accept it all keep one copy of the
// bytes and of the decoded change. A simulation of many replicas of one
// document holds each change once instead of once per replica; a node
// shares one cache between its pubsub validators and its replicas.
//
// A hit needs the exact bytes a previous successful check accepted (looked
// up by the claimed ID, then compared byte for byte) and the same document
// ID, so it returns exactly what CheckStateless would: the verdict of
// stage 1 depends on nothing else. Failures are not stored.
//
// The envelopes it returns are immutable and shared: their Change is
// frozen ([crdt.Change.Freeze]), so no document rewrites its strings, and
// several gates and goroutines may read it at once. [Envelope.Wire] returns
// the cached bytes without encoding them again, and the envelope's Raw
// points into those bytes.
//
// It holds at most n envelopes (see [NewEnvCache]) in two generations, like
// [SigCache]. An EnvCache is safe for concurrent use. A nil *EnvCache is
// valid and caches nothing: its Check is CheckStatelessCached.
type EnvCache struct {
	m *twoGen[crdt.ID, *Envelope]
}

// NewEnvCache returns a cache holding at most n envelopes (rounded up to an
// even number, at least 2). n <= 0 returns nil, a valid cache that caches
// nothing.
func NewEnvCache(n int) *EnvCache {
	if n <= 0 {
		return nil
	}
	return &EnvCache{m: newTwoGen[crdt.ID, *Envelope](n, false)}
}

// EnvCacheStats are an [EnvCache]'s counters.
type EnvCacheStats struct {
	Hits    uint64 // checks answered with a shared envelope
	Misses  uint64 // checks that decoded (successfully or not)
	Entries int    // envelopes held now
}

// Stats returns the counters; zero for a nil cache.
func (c *EnvCache) Stats() EnvCacheStats {
	if c == nil {
		return EnvCacheStats{}
	}
	h, m, n := c.m.stats()
	return EnvCacheStats{Hits: h, Misses: m, Entries: n}
}

// Check is [CheckStatelessCached](docID, b, sigs) answered from the cache
// when it can: it returns the same verdict for every input, and on
// success an envelope equal to the one CheckStatelessCached would return,
// shared with every other caller that checked the same bytes. It does not
// retain b (the cache keeps its own copy).
func (c *EnvCache) Check(docID string, b []byte, sigs *SigCache) (*Envelope, *Rejection) {
	if c == nil {
		return CheckStatelessCached(docID, b, sigs)
	}
	id, ok := PeekID(b)
	if !ok {
		return CheckStatelessCached(docID, b, sigs)
	}
	if e, ok := c.m.get(id, func(e *Envelope) bool { return string(e.wire) == string(b) && e.Change.Doc == docID }); ok {
		return e, nil
	}

	wire := append([]byte(nil), b...)
	e, rej := checkStateless(docID, wire, false, sigs)
	if rej != nil {
		return nil, rej
	}
	e.Change.FreezeWithID(e.ID)
	c.m.add(id, e)
	return e, nil
}
