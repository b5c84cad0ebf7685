package chaos

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convergenode/convergenode/node"
)

// FloodConfig configures Flood.
type FloodConfig struct {
	// Honest is the number of honest nodes (full mesh). Default 4.
	Honest int
	// Rate is each honest node's write rate, in changes per second.
	// Default 10.
	Rate float64
	// Factor is the flood rate as a multiple of the total honest rate.
	// Default 10.
	Factor float64
	// Duration of the flood. Default 5 s.
	Duration time.Duration
	// Window is the delivery deadline: a write counts as delivered to a
	// node if the node applied it within Window of its acknowledgement.
	// Default 5 s.
	Window time.Duration
	// Seed derives the identities.
	Seed uint64
}

func (c *FloodConfig) fill() {
	if c.Honest <= 0 {
		c.Honest = 4
	}
	if c.Rate <= 0 {
		c.Rate = 10
	}
	if c.Factor <= 0 {
		c.Factor = 10
	}
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.Window <= 0 {
		c.Window = 5 * time.Second
	}
}

// FloodReport is what Flood measured.
type FloodReport struct {
	Honest        int     `json:"honest"`
	HonestRate    float64 `json:"honest_rate_per_s"` // all honest nodes together
	FloodRate     float64 `json:"flood_rate_per_s"`  // invalid changes sent per second
	HonestWrites  int     `json:"honest_writes"`
	Invalid       int     `json:"invalid_sent"`
	Ratio         float64 `json:"ratio"` // invalid sent per honest write, measured
	InvalidGossip int     `json:"invalid_gossip"`
	InvalidSync   int     `json:"invalid_sync"` // sent to the victim on the sync stream
	Delivery      float64 `json:"delivery"`     // share delivered within the window
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	HeapBaseMiB   float64 `json:"heap_base_mib"` // whole process, after start
	HeapPeakMiB   float64 `json:"heap_peak_mib"` // whole process, during the flood
	VictimChanges int     `json:"victim_changes"`
	VictimScore   float64 `json:"victim_score_of_attacker"`
	VictimPenalty float64 `json:"victim_penalty_of_attacker"`
	// GraylistedS is when the victim first scored the attacker below the
	// graylist threshold, in seconds from the start of the flood (-1:
	// never). From then on the victim lets at most 20 sync frames a
	// second from it through; AlertsAfterGraylist counts the forged
	// changes that still reached its gate (one penalty alert each).
	GraylistedS         float64  `json:"graylisted_s"`
	AlertsAfterGraylist int      `json:"alerts_after_graylist"`
	Violations          []string `json:"violations,omitempty"`
}

// Flood runs honest writers on a full mesh while one attacker sends
// Factor times their total rate of invalid changes: a third on gossip to
// everyone (graylisted after the first), the rest on the sync stream to
// one victim (which gossipsub's score does not reach). It measures honest
// delivery, the process heap and the victim's view of the attacker.
func Flood(ctx context.Context, cfg FloodConfig) (*FloodReport, error) {
	cfg.fill()
	c := NewCluster(ClusterConfig{Seed: cfg.Seed})
	defer c.Close()
	hs, err := c.AddNodes(ctx, cfg.Honest)
	if err != nil {
		return nil, err
	}
	atks, err := c.AddAttackers(ctx, 1, ModeRelay)
	if err != nil {
		return nil, err
	}
	if err := c.WireFull(); err != nil {
		return nil, err
	}
	atk, victim := atks[0], hs[0]
	l := NewLedger()
	for _, m := range hs {
		defer l.Watch(m)()
	}
	time.Sleep(time.Second) // meshes
	r := &FloodReport{Honest: cfg.Honest, HonestRate: cfg.Rate * float64(cfg.Honest)}
	r.FloodRate = r.HonestRate * cfg.Factor
	r.HeapBaseMiB = mib(HeapInUse())

	fctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	var peak atomic.Uint64
	wg.Add(1)
	go func() { // heap sampler
		defer wg.Done()
		for fctx.Err() == nil {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			sleepCtx(fctx, 200*time.Millisecond)
		}
	}()
	var grayAt atomic.Int64 // unix nanoseconds; 0: not yet
	t0 := time.Now()
	wg.Add(1)
	go func() { // when does the victim graylist the attacker?
		defer wg.Done()
		for fctx.Err() == nil {
			if s, _ := victim.Node().Score(atk.ID()); s < node.GraylistThreshold {
				grayAt.Store(time.Now().UnixNano())
				return
			}
			sleepCtx(fctx, 20*time.Millisecond)
		}
	}()
	var writeErrs atomic.Int64
	for _, m := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			every := time.Duration(float64(time.Second) / cfg.Rate)
			for k := 0; fctx.Err() == nil; k++ {
				if err := l.Write(ctx, m, fmt.Sprintf("f-%d-%d", m.Index, k)); err != nil {
					writeErrs.Add(1)
				}
				sleepCtx(fctx, every)
			}
		}()
	}
	var outcome Outcome
	var omu sync.Mutex
	wg.Add(1)
	go func() { // the flood, paced on the wall clock in 10 ms steps
		defer wg.Done()
		t0, sent := time.Now(), 0
		for fctx.Err() == nil {
			n := int(time.Since(t0).Seconds()*r.FloodRate) - sent
			if n > 0 {
				g := n / 3
				o1, _ := atk.FloodInvalid(ctx, g)
				o2, _ := atk.FloodInvalidSync(ctx, victim.ID, n-g)
				omu.Lock()
				outcome.add(o1)
				outcome.add(o2)
				r.InvalidGossip += o1.Sent
				r.InvalidSync += o2.Sent
				omu.Unlock()
				sent += n
			}
			sleepCtx(fctx, 10*time.Millisecond)
		}
	}()
	wg.Wait()
	r.Invalid = r.InvalidGossip + r.InvalidSync
	r.HonestWrites = l.Len()
	if r.HonestWrites > 0 {
		r.Ratio = float64(r.Invalid) / float64(r.HonestWrites)
	}
	r.HeapPeakMiB = mib(peak.Load())
	if writeErrs.Load() > 0 {
		r.Violations = append(r.Violations, fmt.Sprintf("%d honest writes failed", writeErrs.Load()))
	}
	// Let the last writes travel, then measure.
	if _, err := c.WaitConverged(ctx, 30*time.Second, r.HonestWrites); err != nil {
		r.Violations = append(r.Violations, err.Error())
	}
	share, p50, p99 := l.Delivery(cfg.Window)
	r.Delivery, r.P50Ms, r.P99Ms = share, ms(p50), ms(p99)
	r.VictimChanges = victim.Doc().Len()
	r.VictimScore, r.VictimPenalty = victim.Node().Score(atk.ID())
	r.GraylistedS = -1
	if g := grayAt.Load(); g != 0 {
		r.GraylistedS = time.Unix(0, g).Sub(t0).Seconds()
		for _, a := range victim.Node().Alerts() {
			if a.Peer == atk.ID().String() && a.Penalize && a.Time.UnixNano() > g {
				r.AlertsAfterGraylist++
			}
		}
	}
	if snaps, err := c.Snapshots(); err == nil {
		if err := errors.Join(CheckValidOnly(snaps, outcome.Invalid), CheckSameState(snaps)); err != nil {
			r.Violations = append(r.Violations, err.Error())
		}
	}
	if err := c.CheckAcked(l); err != nil {
		r.Violations = append(r.Violations, err.Error())
	}
	if r.VictimChanges != r.HonestWrites {
		r.Violations = append(r.Violations, fmt.Sprintf("victim holds %d changes, %d honest writes", r.VictimChanges, r.HonestWrites))
	}
	if r.VictimScore >= node.GraylistThreshold {
		r.Violations = append(r.Violations, fmt.Sprintf("victim scores the attacker at %.1f, not below the graylist threshold", r.VictimScore))
	}
	return r, nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
