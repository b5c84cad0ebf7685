package ephemeral

import (
	"fmt"
	"math"
	"time"
)

// Timestamp is a hybrid logical clock reading: the physical time in Unix
// milliseconds, then a logical counter that orders readings within one
// millisecond. Timestamps are compared field by field ([Timestamp.Compare]).
type Timestamp struct {
	Wall    int64  // Unix milliseconds
	Logical uint32 // counter within Wall
}

// Compare orders timestamps by Wall, then Logical.
func (t Timestamp) Compare(o Timestamp) int {
	switch {
	case t.Wall < o.Wall:
		return -1
	case t.Wall > o.Wall:
		return 1
	case t.Logical < o.Logical:
		return -1
	case t.Logical > o.Logical:
		return 1
	}
	return 0
}

// IsZero reports whether t is the zero timestamp.
func (t Timestamp) IsZero() bool { return t == Timestamp{} }

// String formats t as "wall.logical", for logs and golden files.
func (t Timestamp) String() string { return fmt.Sprintf("%d.%d", t.Wall, t.Logical) }

// next returns the smallest timestamp after t.
func (t Timestamp) next() Timestamp {
	if t.Logical == math.MaxUint32 {
		return Timestamp{Wall: t.Wall + 1}
	}
	return Timestamp{Wall: t.Wall, Logical: t.Logical + 1}
}

// Clock is a hybrid logical clock (Kulkarni et al.). It never reads the wall
// clock: physical time is passed to each call. Readings are strictly
// increasing even when the physical time passed in goes backwards. The zero
// Clock is ready to use.
type Clock struct {
	last Timestamp
}

// Now returns a timestamp for a local event at physical time now: the larger
// of now (in milliseconds) and the successor of the last reading.
func (c *Clock) Now(now time.Time) Timestamp {
	pt := Timestamp{Wall: now.UnixMilli()}
	if pt.Compare(c.last) > 0 {
		c.last = pt
	} else {
		c.last = c.last.next()
	}
	return c.last
}

// Observe advances the clock past a timestamp received from another peer, so
// that every later local reading orders after it. The caller must bound how
// far in the future remote timestamps may be (the store refuses those beyond
// Config.MaxSkew before observing them).
func (c *Clock) Observe(remote Timestamp) {
	if remote.Compare(c.last) > 0 {
		c.last = remote
	}
}

// Last returns the last reading (or observed timestamp).
func (c *Clock) Last() Timestamp { return c.last }
