package bft

// Metrics are the gate's counters and gauges. Counters only grow.
type Metrics struct {
	Accepted   uint64 // changes applied to the document (including released ones)
	Duplicates uint64 // changes dropped as already known (in the document or buffered)
	Buffered   uint64 // changes put into the causal buffer
	Released   uint64 // buffered changes applied once their parents arrived

	// Rejected counts refused or dropped changes by reason (index by
	// Reason; index RejectNone stays 0). Stage 1 reasons are counted when
	// the caller passes bytes through [Gate.ReceiveBytes] or an unchecked
	// envelope through [Gate.Receive].
	Rejected [NumReasons]uint64

	BufferCount int // changes waiting in the causal buffer now
	BufferBytes int // memory charged to them: 2*len(Raw) + 256 bytes each

	Proofs       int // equivocation proofs held
	Equivocators int // authors with at least one proof held
}

// Total returns the number of rejections of all reasons.
func (m *Metrics) Total() uint64 {
	var n uint64
	for _, v := range m.Rejected {
		n += v
	}
	return n
}
