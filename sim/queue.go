package sim

import (
	"math"
	"math/bits"
)

// eventKind says what an event does when it fires.
type eventKind uint8

const (
	evDeliver eventKind = iota + 1 // a packet arrives at node
	evTick                         // node's periodic tick
	evFunc                         // run fn (faults, workload, samples)
)

// event is one entry of the queue, 32 bytes: the queue moves events
// between its buckets a few times each, so their size is most of its cost.
// Events fire in time order, and events due at the same time in the order
// they were scheduled. What does not fit (an evFunc's function, a direct
// packet's bytes) waits in the simulation's slot table (Sim.slots), so an
// event holds no pointer and the garbage collector never scans the queue.
type event struct {
	at   int64 // virtual nanoseconds
	node int32
	from int32
	hop  int32
	msg  int32 // evDeliver: the gossip message (-1: none)
	aux  int32 // evFunc, evDeliver of a pkDirect packet: its slot
	kind eventKind
	// charged marks a delivery whose CPU time is already booked.
	charged bool
	pkind   uint8 // evDeliver: the packet's kind (pkGossip, ...)
}

// queue is a radix heap of events ordered by time, then scheduling order:
// a monotone priority queue, which is all a discrete-event engine needs
// (an event is never scheduled before the one being fired). Every event sits in the
// bucket numbered by the highest bit in which its time differs from last,
// the time of the last event popped: bucket 0 holds the events due at
// last, in scheduling order; popping from an empty bucket 0 moves the
// lowest non-empty bucket down (its earliest time becomes last), and no
// event moves up, so each push is O(1) and each event moves at most 64
// times, in practice a few; a binary heap paid ~log2(n) cache-missing
// swaps per pop. Events with equal times always share a bucket, and
// pushes and moves keep their order, so ties leave in the order they were
// pushed, exactly as a heap ordered by (time, push number) would release
// them.
//
// In front of the radix heap, w[wh:] holds the next winLen events in
// order (more after pushes that fall among them), so the engine can see
// which nodes its next events go to and start loading their state (see
// Sim.prefetch). Every event in w comes before every event in the heap:
// a push earlier than the last of w is inserted in w, after the events of
// w due at the same time or earlier, and any other push goes to the heap,
// whose events are all due at or after the last of w and were pushed
// after it if due at the same time. The order is exactly the heap's. A
// peek fills the window, so the heap's last is always the time of the
// last event it gave the window: when RunUntil peeks at the next event,
// stops before it, and the engine then schedules something from now, that
// push lands in the window.
type queue struct {
	w     []event
	wh    int   // w[wh:] are the window's events
	fired int64 // the time of the last event popped from the queue
	last  int64
	n     int        // events in the heap (not in w)
	head  int        // first unpopped event of b[0]
	b     [65]bucket // b[i]: at differs from last first in bit i-1 (b[0]: at == last)
	free  []*block   // blocks no bucket holds
}

// A bucket's events live in fixed blocks, taken from and given back to
// the queue's free list, so the queue holds about its longest length in
// blocks, whatever the buckets' sizes were. Arrays that doubled, with
// the emptied ones kept for reuse, held three to four times the events
// in a 20,000-node run (64 MB of the 665 MB live heap), copied every
// event at each doubling, and zeroed each new array.
type bucket struct {
	tail   *block   // the last of blocks
	blocks []*block // in order; all full but the last
	n      int      // events held
}

const blockLen = 256 // events per block: 8 KiB

type block [blockLen]event

// at returns the bucket's k-th event.
func (b *bucket) at(k int) *event { return &b.blocks[uint(k)/blockLen][uint(k)%blockLen] }

// winLen is how many events the window holds ahead of the heap.
const winLen = 16

func (q *queue) Len() int { return q.n + len(q.w) - q.wh }

// push adds e. An event earlier than the last popped one is due at once
// (the engine never schedules one: every time it uses is at least now).
func (q *queue) push(e event) {
	if k := len(q.w); k > q.wh && e.at < q.w[k-1].at {
		q.insert(e)
		return
	}
	q.hpush(e)
}

// insert puts e in the window, after every event of it due no later.
//
//go:noinline
func (q *queue) insert(e event) {
	e.at = max(e.at, q.fired)
	i := len(q.w)
	for i > q.wh && q.w[i-1].at > e.at {
		i--
	}
	q.w = append(q.w, event{})
	copy(q.w[i+1:], q.w[i:])
	q.w[i] = e
}

// fill tops the window up to winLen events from the heap.
func (q *queue) fill() {
	for len(q.w)-q.wh < winLen && q.n > 0 {
		if len(q.w) == cap(q.w) && q.wh > 0 {
			q.w = q.w[:copy(q.w, q.w[q.wh:])]
			q.wh = 0
		}
		q.w = append(q.w, q.hpop())
	}
}

// ahead returns the k-th next event (0: the next to pop), or nil if the
// window holds fewer. It does not fill the window.
func (q *queue) ahead(k int) *event {
	if k += q.wh; k < len(q.w) {
		return &q.w[k]
	}
	return nil
}

// hpush adds e to the heap. Every event of the window is due before
// e.at, or the window is empty and last is the time of the last event
// popped: an earlier e is due at once.
func (q *queue) hpush(e event) {
	e.at = max(e.at, q.last)
	q.add(&q.b[bits.Len64(uint64(e.at^q.last))], e)
}

// add appends e to bucket b.
func (q *queue) add(b *bucket, e event) {
	k := uint(b.n) % blockLen
	if k == 0 { // b is empty or its last block is full
		q.extend(b)
	}
	b.tail[k] = e
	b.n++
	q.n++
}

// extend adds a block to b: a free one, or a new one.
//
//go:noinline
func (q *queue) extend(b *bucket) {
	var bl *block
	if n := len(q.free); n > 0 {
		bl = q.free[n-1]
		q.free[n-1] = nil
		q.free = q.free[:n-1]
	} else {
		bl = new(block)
	}
	b.blocks = append(b.blocks, bl)
	b.tail = bl
}

// release gives every block of b back and empties it.
func (q *queue) release(b *bucket) {
	q.free = append(q.free, b.blocks...)
	clear(b.blocks)
	b.blocks, b.n, b.tail = b.blocks[:0], 0, nil
}

// settle makes b[0] hold the earliest events. The queue is not empty.
func (q *queue) settle() {
	if q.head < q.b[0].n {
		return
	}
	q.release(&q.b[0])
	q.head = 0
	i := 1
	for q.b[i].n == 0 {
		i++
	}
	src := &q.b[i]
	lo := int64(math.MaxInt64)
	for j, bl := range src.blocks {
		for k := range bl[:min(blockLen, src.n-j*blockLen)] {
			lo = min(lo, bl[k].at)
		}
	}
	q.last = lo
	// Each event moves to a lower bucket; a block, once read, is free for
	// them to take.
	q.n -= src.n
	for j, bl := range src.blocks {
		for k := range bl[:min(blockLen, src.n-j*blockLen)] {
			e := bl[k]
			q.add(&q.b[bits.Len64(uint64(e.at^lo))], e)
		}
		q.free = append(q.free, bl)
		src.blocks[j] = nil
	}
	src.blocks, src.n, src.tail = src.blocks[:0], 0, nil
}

// peek returns the next event. The queue is not empty.
func (q *queue) peek() *event {
	q.fill()
	return &q.w[q.wh]
}

// pop removes and returns the next event. The queue is not empty.
func (q *queue) pop() event {
	q.fill()
	e := q.w[q.wh]
	q.wh++
	q.fired = e.at
	return e
}

// hpop removes and returns the heap's next event.
func (q *queue) hpop() event {
	q.settle()
	e := *q.b[0].at(q.head)
	q.head++
	q.n--
	return e
}
