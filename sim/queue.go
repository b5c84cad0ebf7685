package sim

import "math/bits"

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
// A peek may move last past the time of the last popped event (RunUntil
// peeks at the next event, stops before it, and the engine may then
// schedule something from now): a push earlier than last then re-buckets
// the queue under its time (rebase), which is rare (API calls between
// runs) and costs a pass over the queue.
type queue struct {
	last   int64
	popped int64 // the time of the last popped event, when it is not last (see settle)
	n      int
	head   int           // first unpopped event of b[0]
	b      [65][]event   // b[i]: at differs from last first in bit i-1 (b[0]: at == last)
	spare  [48][][]event // empty arrays for buckets, by size class (see grow)
}

func (q *queue) Len() int { return q.n }

// push adds e. An event earlier than the last popped one is due at once
// (the engine never schedules one: every time it uses is at least now).
func (q *queue) push(e event) {
	if e.at < q.last {
		e.at = q.early(e.at)
	}
	i := bits.Len64(uint64(e.at ^ q.last))
	b := q.b[i]
	if len(b) == cap(b) {
		b = q.grow(b)
	}
	q.b[i] = append(b, e)
	q.n++
}

// grow returns a larger array holding b's events: a spare one at least
// twice b's size, or a new one. The arrays of emptied buckets are spare
// (see settle), so once the queue has been as long as it will get, it
// allocates nothing: the buckets that fill up take the arrays of the ones
// that emptied. (Each bucket keeping its own array grew ~200 MB of arrays
// in a 10,000-node run, the peak's worth several times over.) Spare
// arrays are kept by size class (spare[k]: capacity in [2^k, 2^(k+1))),
// so finding one is a few steps.
//
//go:noinline
func (q *queue) grow(b []event) []event {
	want := max(2*len(b), 64)
	var nb []event
	for k := bits.Len(uint(want - 1)); k < len(q.spare); k++ {
		if n := len(q.spare[k]); n > 0 {
			nb, q.spare[k] = q.spare[k][n-1], q.spare[k][:n-1]
			break
		}
	}
	if nb == nil {
		nb = make([]event, 0, want)
	}
	nb = append(nb, b...)
	q.putSpare(b)
	return nb
}

// putSpare keeps b's array for grow.
func (q *queue) putSpare(b []event) {
	if c := cap(b); c > 0 {
		k := bits.Len(uint(c)) - 1
		q.spare[k] = append(q.spare[k], b[:0])
	}
}

// early makes the queue ready for a push at time at, earlier than last,
// and returns the time to push it at: no earlier than the last popped
// event (an earlier one is due at once), and if that is still earlier than
// last, the queue is re-bucketed under it.
//
//go:noinline
func (q *queue) early(at int64) int64 {
	floor := q.popped
	if q.head > 0 {
		floor = q.last // popped from b[0]
	}
	if at = max(at, floor); at >= q.last {
		return q.last
	}
	var all []event
	all = append(all, q.b[0][q.head:]...)
	for i := 1; i < len(q.b); i++ {
		all = append(all, q.b[i]...)
	}
	for i := range q.b {
		q.b[i] = q.b[i][:0]
	}
	q.head, q.last = 0, at
	// Equal times share a bucket, in push order, so they keep it.
	for _, e := range all {
		i := bits.Len64(uint64(e.at ^ at))
		q.b[i] = append(q.b[i], e)
	}
	return at
}

// settle makes b[0] hold the earliest events. The queue is not empty.
func (q *queue) settle() {
	if q.head < len(q.b[0]) {
		return
	}
	// The floor for pushes once last moves on (see early).
	if q.head > 0 {
		q.popped = q.last
	}
	q.b[0], q.head = q.b[0][:0], 0
	i := 1
	for len(q.b[i]) == 0 {
		i++
	}
	src := q.b[i]
	lo := src[0].at
	for k := range src {
		if src[k].at < lo {
			lo = src[k].at
		}
	}
	q.last = lo
	for k := range src {
		j := bits.Len64(uint64(src[k].at ^ lo))
		b := q.b[j]
		if len(b) == cap(b) {
			b = q.grow(b)
		}
		q.b[j] = append(b, src[k])
	}
	q.b[i] = nil
	q.putSpare(src)
}

func (q *queue) peek() *event {
	q.settle()
	return &q.b[0][q.head]
}

func (q *queue) pop() event {
	q.settle()
	e := q.b[0][q.head]
	q.head++
	q.n--
	return e
}
