package ephemeral

import "time"

// bucket is a token bucket on the time passed in. Tokens are counted in
// thousandths so that refills are exact integers (deterministic on every
// platform): rate r per second refills r thousandths per millisecond.
type bucket struct {
	milli int64     // current tokens × 1000
	last  time.Time // time of the last refill
}

// newBucket returns a full bucket.
func newBucket(burst int, now time.Time) bucket {
	return bucket{milli: int64(burst) * 1000, last: now}
}

// refill adds the tokens earned since the last refill, capped at burst.
// Time going backwards earns nothing.
func (b *bucket) refill(rate, burst int, now time.Time) {
	max := int64(burst) * 1000
	if el := now.Sub(b.last).Milliseconds(); el > 0 {
		// Compare before multiplying so a long idle time cannot overflow.
		if rate <= 0 || el >= (max-b.milli)/int64(rate)+1 {
			b.milli = max
		} else {
			b.milli += el * int64(rate)
		}
		b.last = b.last.Add(time.Duration(el) * time.Millisecond)
	}
	if b.milli > max {
		b.milli = max
	}
}

// take removes cost tokens if the bucket holds them and reports whether it
// did. A refused take removes nothing.
func (b *bucket) take(cost, rate, burst int, now time.Time) bool {
	b.refill(rate, burst, now)
	c := int64(cost) * 1000
	if b.milli < c {
		return false
	}
	b.milli -= c
	return true
}

// full reports whether the bucket is at burst after refilling to now.
func (b *bucket) full(rate, burst int, now time.Time) bool {
	b.refill(rate, burst, now)
	return b.milli >= int64(burst)*1000
}
