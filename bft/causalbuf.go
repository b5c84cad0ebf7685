package bft

import (
	"time"

	"github.com/convergenode/convergenode/crdt"
)

// entryOverhead is the memory charged to a buffered change on top of twice
// its encoded size (the bytes plus the decoded change): maps, queues and
// the entry itself.
const entryOverhead = 256

// bufEntry is a verified change waiting for its parents.
type bufEntry struct {
	env     *Envelope
	from    string
	cost    int
	expires time.Time
	waits   []crdt.ID // parents that were missing when it arrived
	missing int       // how many of waits have not arrived yet
	removed bool
}

type usage struct{ count, bytes int }

func (u *usage) add(e *bufEntry, sign int) {
	u.count += sign
	u.bytes += sign * e.cost
}

// queue is a FIFO of entries with lazy deletion.
type queue struct {
	q    []*bufEntry
	head int
}

// push appends e; live is the number of live entries after it. Removed
// entries behind a long-lived head are filtered out once they outnumber
// the live ones, so the queue stays O(live).
func (q *queue) push(e *bufEntry, live int) {
	q.q = append(q.q, e)
	if n := len(q.q) - q.head; n > 2*live+64 {
		out := q.q[:0]
		for _, x := range q.q[q.head:] {
			if !x.removed {
				out = append(out, x)
			}
		}
		clear(q.q[len(out):])
		q.q, q.head = out, 0
	}
}

// front returns the oldest live entry, dropping removed ones.
func (q *queue) front() *bufEntry {
	for q.head < len(q.q) && q.q[q.head].removed {
		q.q[q.head] = nil
		q.head++
	}
	if q.head > 64 && q.head*2 > len(q.q) {
		n := copy(q.q, q.q[q.head:])
		clear(q.q[n:])
		q.q, q.head = q.q[:n], 0
	}
	if q.head == len(q.q) {
		return nil
	}
	return q.q[q.head]
}

type holder struct {
	usage
	queue
}

type waitList struct {
	entries []*bufEntry
	live    int
}

// causalBuf holds verified changes whose parents are missing, within
// quotas per sending peer, per author and in total. It is a plain data
// structure: the gate decides what goes in and what comes out.
//
// The Gate holds it by value, total first, in the cache line it reads on
// every change: an empty buffer (the common case) answers has and expire
// from total without touching its maps or queue.
type causalBuf struct {
	total   usage
	cfg     *GateConfig
	byID    map[crdt.ID]*bufEntry
	waiting map[crdt.ID]*waitList
	fifo    queue // arrival order, which is expiry order (one TTL)
	peers   map[string]*holder
	authors map[crdt.Author]*usage
}

func newCausalBuf(cfg *GateConfig) causalBuf {
	return causalBuf{
		cfg:     cfg,
		byID:    make(map[crdt.ID]*bufEntry),
		waiting: make(map[crdt.ID]*waitList),
		peers:   make(map[string]*holder),
		authors: make(map[crdt.Author]*usage),
	}
}

func (b *causalBuf) has(id crdt.ID) bool {
	if b.total.count == 0 {
		return false
	}
	_, ok := b.byID[id]
	return ok
}

func entryCost(e *Envelope) int { return 2*len(e.Raw) + entryOverhead }

// add buffers env from peer, waiting for the parents in waits (all of
// which the caller found absent from the document). It returns the entries
// evicted to make room, or RejectBufferFull (and adds nothing).
func (b *causalBuf) add(from string, env *Envelope, waits []crdt.ID, now time.Time) (evicted []*bufEntry, _ Reason) {
	e := &bufEntry{env: env, from: from, cost: entryCost(env), expires: now.Add(b.cfg.BufferTTL), waits: waits, missing: len(waits)}
	c := b.cfg
	p := b.peers[from]
	if p == nil {
		p = &holder{}
	}
	a := b.authors[env.Change.Author]
	if a == nil {
		a = &usage{}
	}
	if p.count+1 > c.MaxPeerCount || p.bytes+e.cost > c.MaxPeerBytes ||
		a.count+1 > c.MaxAuthorCount || a.bytes+e.cost > c.MaxAuthorBytes ||
		e.cost > c.MaxBufferBytes {
		return nil, RejectBufferFull
	}
	for b.total.count+1 > c.MaxBufferCount || b.total.bytes+e.cost > c.MaxBufferBytes {
		victim, ok := b.largestHolder()
		if !ok || victim == from {
			return evicted, RejectBufferFull
		}
		old := b.peers[victim].front()
		b.remove(old)
		evicted = append(evicted, old)
	}
	b.peers[from] = p
	b.authors[env.Change.Author] = a
	p.add(e, 1)
	p.push(e, p.count)
	a.add(e, 1)
	b.total.add(e, 1)
	b.fifo.push(e, b.total.count)
	b.byID[env.ID] = e
	for _, id := range waits {
		w := b.waiting[id]
		if w == nil {
			w = &waitList{}
			b.waiting[id] = w
		}
		w.entries = append(w.entries, e)
		w.live++
	}
	return evicted, RejectNone
}

// largestHolder returns the peer holding the most bytes (then the most
// changes, then the smallest name, so the choice is deterministic).
func (b *causalBuf) largestHolder() (string, bool) {
	best, bu, found := "", usage{}, false
	for name, h := range b.peers {
		if !found || h.bytes > bu.bytes || h.bytes == bu.bytes && (h.count > bu.count || h.count == bu.count && name < best) {
			best, bu, found = name, h.usage, true
		}
	}
	return best, found
}

// remove takes e out of the buffer (evicted, expired or dropped).
func (b *causalBuf) remove(e *bufEntry) {
	if e.removed {
		return
	}
	e.removed = true
	delete(b.byID, e.env.ID)
	b.total.add(e, -1)
	if b.total.count == 0 {
		// Every entry left is removed: drop them now (expire, which
		// would, does not look at an empty buffer's queue).
		clear(b.fifo.q)
		b.fifo.q, b.fifo.head = b.fifo.q[:0], 0
	}
	if p := b.peers[e.from]; p != nil {
		p.add(e, -1)
		if p.count == 0 {
			delete(b.peers, e.from)
		}
	}
	if a := b.authors[e.env.Change.Author]; a != nil {
		a.add(e, -1)
		if a.count == 0 {
			delete(b.authors, e.env.Change.Author)
		}
	}
	for _, id := range e.waits {
		w := b.waiting[id]
		if w == nil {
			continue // that parent arrived already
		}
		w.live--
		if w.live == 0 {
			delete(b.waiting, id)
		} else if w.live*2 < len(w.entries) && len(w.entries) > 16 {
			live := w.entries[:0]
			for _, x := range w.entries {
				if !x.removed {
					live = append(live, x)
				}
			}
			clear(w.entries[len(live):])
			w.entries = live
		}
	}
}

// arrived records that id is now in the document and returns the entries
// that no longer miss any parent, in arrival order, removed from the buffer.
func (b *causalBuf) arrived(id crdt.ID) []*bufEntry {
	if b.total.count == 0 {
		// Nothing waits (remove drops a parent's list with its last live
		// entry), and the count sits in the gate's first lines, where the
		// map's header is a cache miss of its own.
		return nil
	}
	w := b.waiting[id]
	if w == nil {
		return nil
	}
	delete(b.waiting, id)
	var ready []*bufEntry
	for _, e := range w.entries {
		if e.removed {
			continue
		}
		e.missing--
		if e.missing == 0 {
			b.remove(e)
			ready = append(ready, e)
		}
	}
	return ready
}

// dropWaiters removes every entry that waits, directly or through other
// buffered entries, on id (which was refused and so can never arrive).
func (b *causalBuf) dropWaiters(id crdt.ID) []*bufEntry {
	var out []*bufEntry
	stack := []crdt.ID{id}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		w := b.waiting[x]
		if w == nil {
			continue
		}
		delete(b.waiting, x)
		for _, e := range w.entries {
			if e.removed {
				continue
			}
			b.remove(e)
			out = append(out, e)
			stack = append(stack, e.env.ID)
		}
	}
	return out
}

// expire removes and returns the entries whose TTL has passed at now.
func (b *causalBuf) expire(now time.Time) []*bufEntry {
	if b.total.count == 0 {
		return nil
	}
	var out []*bufEntry
	for {
		e := b.fifo.front()
		if e == nil || now.Before(e.expires) {
			return out
		}
		b.remove(e)
		out = append(out, e)
	}
}
