package sim

// eventKind says what an event does when it fires.
type eventKind uint8

const (
	evDeliver eventKind = iota + 1 // a packet arrives at node
	evTick                         // node's periodic tick
	evFunc                         // run fn (faults, workload, samples)
)

// event is one entry of the queue. Events fire in (at, seq) order; seq is
// the order of scheduling, so ties are broken deterministically.
type event struct {
	at   int64 // virtual nanoseconds
	seq  uint64
	kind eventKind
	// charged marks a delivery whose CPU time is already booked.
	charged bool
	node    int32
	from    int32
	hop     int32
	pk      *packet
	fn      func()
}

// queue is a binary min-heap of events ordered by (at, seq).
type queue struct {
	h []event
}

func (q *queue) Len() int { return len(q.h) }

func less(a, b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (q *queue) push(e event) {
	q.h = append(q.h, e)
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !less(&q.h[i], &q.h[p]) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *queue) peek() *event { return &q.h[0] }

func (q *queue) pop() event {
	h := q.h
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = event{}
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && less(&h[r], &h[l]) {
			m = r
		}
		if !less(&h[m], &h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	q.h = h
	return top
}
