package ephemeral

import (
	"math"
	"testing"
	"time"
)

func TestClockMonotonic(t *testing.T) {
	var c Clock
	a := c.Now(t0)
	if a != (Timestamp{Wall: t0.UnixMilli()}) {
		t.Fatalf("first reading %v", a)
	}
	b := c.Now(t0) // same millisecond: logical ticks
	if b.Compare(a) <= 0 || b.Logical != 1 {
		t.Fatalf("second reading %v after %v", b, a)
	}
	d := c.Now(t0.Add(-time.Hour)) // physical time goes backwards
	if d.Compare(b) <= 0 {
		t.Fatalf("reading %v not after %v when time went back", d, b)
	}
	c.Observe(Timestamp{Wall: t0.UnixMilli() + 1000, Logical: 7})
	e := c.Now(t0)
	if want := (Timestamp{Wall: t0.UnixMilli() + 1000, Logical: 8}); e != want {
		t.Fatalf("after observe: %v, want %v", e, want)
	}
	f := c.Now(t0.Add(2 * time.Second))
	if want := (Timestamp{Wall: t0.UnixMilli() + 2000}); f != want {
		t.Fatalf("physical time passes remote: %v, want %v", f, want)
	}
}

func TestClockLogicalOverflow(t *testing.T) {
	c := Clock{last: Timestamp{Wall: 5, Logical: math.MaxUint32}}
	if got := c.Now(time.UnixMilli(1)); got != (Timestamp{Wall: 6}) {
		t.Fatalf("got %v", got)
	}
}
