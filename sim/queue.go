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
type queue struct {
	last int64
	n    int
	head int         // first unpopped event of b[0]
	b    [65][]event // b[i]: at differs from last first in bit i-1 (b[0]: at == last)
}

func (q *queue) Len() int { return q.n }

// push adds e. An event earlier than the last popped one is due at once
// (the engine never schedules one: every time it uses is at least now).
func (q *queue) push(e event) {
	if e.at < q.last {
		e.at = q.last
	}
	i := bits.Len64(uint64(e.at ^ q.last))
	q.b[i] = append(q.b[i], e)
	q.n++
}

// settle makes b[0] hold the earliest events. The queue is not empty.
func (q *queue) settle() {
	if q.head < len(q.b[0]) {
		return
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
		q.b[j] = append(q.b[j], src[k])
	}
	q.b[i] = src[:0]
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
