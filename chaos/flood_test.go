package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/convergenode/convergenode/node"
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
	// Once graylisted, the attacker's sync stream is throttled: only
	// node.GraylistFrameRate frames a second (after a burst) reach the
	// victim's gate, each costing a verify and a penalty alert. The slack
	// covers frames already queued when the score crossed the threshold.
	if r.GraylistedS < 0 {
		t.Errorf("the victim never graylisted the attacker")
	} else {
		after := cfg.Duration.Seconds() - r.GraylistedS
		if limit := node.GraylistFrameBurst + node.GraylistFrameRate*after + 50; float64(r.AlertsAfterGraylist) > limit {
			t.Errorf("%d forged sync changes reached the victim's gate in the %.1f s after it graylisted the attacker, limit %.0f",
				r.AlertsAfterGraylist, after, limit)
		}
	}
	if r.Ratio < 9.5 {
		t.Errorf("sent %d invalid changes for %d honest writes: ratio %.1f, want 10", r.Invalid, r.HonestWrites, r.Ratio)
	}
}
