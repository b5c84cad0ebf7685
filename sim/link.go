package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// DistKind is the shape of a latency distribution.
type DistKind uint8

// The latency distributions.
const (
	DistConstant  DistKind = iota // always Base
	DistUniform                   // uniform in [Base, Max]
	DistLogNormal                 // median Base, shape Sigma, capped at Max (if set)
)

// Latency is a one-way latency distribution.
type Latency struct {
	Kind  DistKind
	Base  time.Duration // constant value, uniform minimum or lognormal median
	Max   time.Duration // uniform maximum; lognormal cap (0 = none)
	Sigma float64       // lognormal shape; default 0.5
}

// Sample draws one latency.
func (l Latency) Sample(rng *rand.Rand) time.Duration {
	switch l.Kind {
	case DistUniform:
		if l.Max <= l.Base {
			return l.Base
		}
		return l.Base + time.Duration(rng.Int64N(int64(l.Max-l.Base)+1))
	case DistLogNormal:
		s := l.Sigma
		if s <= 0 {
			s = 0.5
		}
		d := time.Duration(float64(l.Base) * math.Exp(s*rng.NormFloat64()))
		if l.Max > 0 && d > l.Max {
			d = l.Max
		}
		return d
	}
	return l.Base
}

// String formats l the way ParseLatency reads it.
func (l Latency) String() string {
	switch l.Kind {
	case DistUniform:
		return fmt.Sprintf("uniform(%v,%v)", l.Base, l.Max)
	case DistLogNormal:
		return fmt.Sprintf("lognormal(%v,%g)", l.Base, l.Sigma)
	}
	return l.Base.String()
}

// ParseLatency reads "20ms", "uniform(10ms,50ms)" or "lognormal(30ms,0.6)".
func ParseLatency(s string) (Latency, error) {
	s = strings.TrimSpace(s)
	args := func(prefix string) ([]string, bool) {
		if !strings.HasPrefix(s, prefix+"(") || !strings.HasSuffix(s, ")") {
			return nil, false
		}
		return strings.Split(s[len(prefix)+1:len(s)-1], ","), true
	}
	if a, ok := args("uniform"); ok && len(a) == 2 {
		lo, err1 := time.ParseDuration(strings.TrimSpace(a[0]))
		hi, err2 := time.ParseDuration(strings.TrimSpace(a[1]))
		if err1 != nil || err2 != nil {
			return Latency{}, fmt.Errorf("sim: bad latency %q", s)
		}
		return Latency{Kind: DistUniform, Base: lo, Max: hi}, nil
	}
	if a, ok := args("lognormal"); ok && len(a) == 2 {
		med, err1 := time.ParseDuration(strings.TrimSpace(a[0]))
		sig, err2 := strconv.ParseFloat(strings.TrimSpace(a[1]), 64)
		if err1 != nil || err2 != nil {
			return Latency{}, fmt.Errorf("sim: bad latency %q", s)
		}
		return Latency{Kind: DistLogNormal, Base: med, Sigma: sig, Max: 100 * med}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return Latency{}, fmt.Errorf("sim: bad latency %q", s)
	}
	return Latency{Base: d}, nil
}

// Burst is a Gilbert–Elliott two-state loss channel: in the good state a
// message is lost with Link.Loss, in the bad state with LossBad; each
// message first moves good->bad with PBad and bad->good with PGood.
type Burst struct {
	PBad    float64
	PGood   float64
	LossBad float64
}

// Link is the model of a directed link. The zero Link is a perfect 0-latency
// link.
type Link struct {
	Latency Latency
	Jitter  time.Duration // extra uniform delay in [0, Jitter)
	Loss    float64       // independent loss probability (good state)
	Burst   *Burst        // bursty loss; nil = independent only
	Dup     float64       // probability a gossip message is delivered twice
	Reorder float64       // probability a gossip message is held back by up to ReorderMax
	// ReorderMax bounds the extra delay of a reordered message; default 4x the base latency.
	ReorderMax time.Duration
	// Bandwidth is the sender's uplink in bytes per second (0 = unlimited):
	// messages queue behind each other.
	Bandwidth int64
	// Down drops everything (a one-way cut when set on one direction).
	Down bool
}

// DefaultLink is a LAN-like link: 20 ms ± 5 ms, no loss.
func DefaultLink() Link {
	return Link{Latency: Latency{Base: 20 * time.Millisecond}, Jitter: 5 * time.Millisecond}
}

// Regions places nodes in regions with a one-way latency matrix between
// them; the link's own Latency is then ignored (Jitter still applies).
type Regions struct {
	Names  []string
	Matrix [][]time.Duration // Matrix[a][b]: one-way latency from region a to b
	// Of gives each node's region index; nodes past its end take i % len(Names).
	Of []int
}

// DefaultRegions is a three-region WAN (us, eu, ap).
func DefaultRegions() *Regions {
	ms := time.Millisecond
	return &Regions{
		Names: []string{"us", "eu", "ap"},
		Matrix: [][]time.Duration{
			{10 * ms, 45 * ms, 80 * ms},
			{45 * ms, 10 * ms, 120 * ms},
			{80 * ms, 120 * ms, 15 * ms},
		},
	}
}

func (r *Regions) of(i int) int {
	if i < len(r.Of) {
		return r.Of[i]
	}
	return i % len(r.Names)
}
