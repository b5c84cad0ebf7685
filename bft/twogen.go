package bft

import "sync"

// twoGen is the bounded map behind [SigCache] and [EnvCache]: at most
// 2·genCap entries in two generations. New entries go into the current
// one; when it is full it becomes the old one and the previous old one is
// dropped. A lookup checks both. Eviction is O(1) amortised and needs no
// per-entry bookkeeping. It counts hits and misses, and is safe for
// concurrent use.
type twoGen[K comparable, V any] struct {
	mu       sync.Mutex
	genCap   int // entries per generation
	sized    bool
	cur, old map[K]V
	hits     uint64
	misses   uint64
}

// newTwoGen returns a map holding at most n entries (rounded up to an even
// number, at least 2); sized allocates each generation at its full size
// up front.
func newTwoGen[K comparable, V any](n int, sized bool) *twoGen[K, V] {
	g := &twoGen[K, V]{genCap: max((n+1)/2, 1), sized: sized}
	g.cur = g.newGen()
	return g
}

func (g *twoGen[K, V]) newGen() map[K]V {
	if g.sized {
		return make(map[K]V, g.genCap)
	}
	return make(map[K]V)
}

// get returns the entry of k if there is one and valid (nil: any) accepts
// it, counting a hit; otherwise it counts a miss.
func (g *twoGen[K, V]) get(k K, valid func(V) bool) (V, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v, ok := g.find(k, valid)
	if ok {
		g.hits++
	} else {
		g.misses++
	}
	return v, ok
}

// peek is get without counting.
func (g *twoGen[K, V]) peek(k K, valid func(V) bool) (V, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.find(k, valid)
}

// find is the lookup of get and peek; g.mu is held.
func (g *twoGen[K, V]) find(k K, valid func(V) bool) (V, bool) {
	v, ok := g.cur[k]
	if !ok {
		v, ok = g.old[k]
	}
	if ok && (valid == nil || valid(v)) {
		return v, true
	}
	var zero V
	return zero, false
}

// add keeps v for k unless k has an entry already.
func (g *twoGen[K, V]) add(k K, v V) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.old[k]; ok {
		return
	}
	if _, ok := g.cur[k]; ok {
		return
	}
	if len(g.cur) >= g.genCap {
		g.old = g.cur
		g.cur = g.newGen()
	}
	g.cur[k] = v
}

// stats returns the counters and the number of entries held.
func (g *twoGen[K, V]) stats() (hits, misses uint64, entries int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hits, g.misses, len(g.cur) + len(g.old)
}
