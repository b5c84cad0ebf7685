package chaos

import (
	"context"
	"testing"
	"time"
)

// floodHeapBoundMiB bounds the whole process's heap (every node of the
// cluster, the attacker and the test) during the flood test: so it bounds
// the victim's memory too.
const floodHeapBoundMiB = 256

// TestFloodInvalid sends 10x the honest write rate of invalid changes
// (gossip to all, sync stream to one victim): honest delivery within 5 s
// must stay at or above 99% and the heap under floodHeapBoundMiB.
func TestFloodInvalid(t *testing.T) {
	cfg := FloodConfig{Seed: 21, Duration: 4 * time.Second}
	if long() {
		cfg.Duration = 30 * time.Second
	}
	r, err := Flood(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("flood: %+v", *r)
	for _, v := range r.Violations {
		t.Error(v)
	}
	if r.Delivery < 0.99 {
		t.Errorf("honest delivery %.4f < 0.99", r.Delivery)
	}
	if r.HeapPeakMiB > floodHeapBoundMiB {
		t.Errorf("heap peaked at %.0f MiB, bound %d MiB", r.HeapPeakMiB, floodHeapBoundMiB)
	}
	if r.Ratio < 9.5 {
		t.Errorf("sent %d invalid changes for %d honest writes: ratio %.1f, want 10", r.Invalid, r.HonestWrites, r.Ratio)
	}
}
