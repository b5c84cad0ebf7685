package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/convergenode/convergenode/replica"
)

// ChaosConfig derives a random run from seed: 16–64 nodes, a random
// topology and link model, a write load with some presence, up to three
// faults that all heal, and up to three Byzantine nodes with random
// behaviours. The same seed always gives the same configuration.
func ChaosConfig(seed uint64) Config {
	rng := rand.New(rand.NewPCG(seed, 0xc4a05))
	n := 16 + rng.IntN(49)
	topos := []string{"star", "gossip", "ring", "tree", "regular", "smallworld", "gossipsub", "gossip", "gossipsub"}
	if n <= 32 {
		topos = append(topos, "mesh")
	}
	cfg := Config{Seed: seed, Nodes: n, Topology: topos[rng.IntN(len(topos))], CheckEvery: true}
	// A 1 s sync interval keeps the convergence bound (Settle) meaningful
	// on sparse graphs, where a repair that re-gossip does not carry (a
	// Byzantine censor, loss) waits for a sync per hop.
	cfg.Replica = func(rc *replica.Config) { rc.SyncInterval = time.Second }
	// A path of ~60 honest nodes (a ring cut by Byzantine nodes) needs
	// about two minutes; that is the bound.
	cfg.Settle = 3 * time.Minute
	cfg.Params.Fanout = 3 + rng.IntN(4)
	ms := time.Millisecond
	l := Link{}
	switch rng.IntN(4) {
	case 0:
		l.Latency = Latency{Base: time.Duration(5+rng.IntN(50)) * ms}
	case 1:
		l.Latency = Latency{Kind: DistUniform, Base: 5 * ms, Max: time.Duration(20+rng.IntN(100)) * ms}
	case 2:
		l.Latency = Latency{Kind: DistLogNormal, Base: time.Duration(10+rng.IntN(40)) * ms, Sigma: 0.3 + rng.Float64()/2, Max: time.Second}
	default:
		cfg.Regions = DefaultRegions()
		l.Latency = Latency{Base: 20 * ms}
	}
	l.Jitter = time.Duration(rng.IntN(10)) * ms
	if rng.IntN(2) == 0 {
		l.Loss = rng.Float64() * 0.3
	}
	if rng.IntN(4) == 0 {
		l.Burst = &Burst{PBad: 0.05, PGood: 0.3, LossBad: 0.7}
	}
	if rng.IntN(3) == 0 {
		l.Dup = rng.Float64() * 0.05
	}
	if rng.IntN(3) == 0 {
		l.Reorder = rng.Float64() * 0.1
	}
	if rng.IntN(4) == 0 {
		l.Bandwidth = int64(256<<10 + rng.IntN(4<<20))
	}
	cfg.Link = l
	cfg.Workload = Workload{Rate: 0.3 + rng.Float64()*1.2, Duration: 2 * time.Second, Ephemeral: rng.Float64() * 0.3}

	pick := func(k int) []int {
		perm := rng.Perm(n)
		return perm[:k]
	}
	nf := rng.IntN(4)
	for f := 0; f < nf; f++ {
		at := time.Duration(200+rng.IntN(2000)) * ms
		dur := time.Duration(300+rng.IntN(1500)) * ms
		switch rng.IntN(7) {
		case 0:
			cfg.Faults = append(cfg.Faults, Fault{Kind: FaultPartition, At: at, For: dur, Nodes: pick(n / 2)})
		case 1:
			cfg.Faults = append(cfg.Faults, Fault{Kind: FaultOneWay, At: at, For: dur, Nodes: pick(1 + rng.IntN(n/3))})
		case 2:
			cfg.Faults = append(cfg.Faults, Fault{Kind: FaultIsolate, At: at, For: dur, Nodes: pick(1 + rng.IntN(3))})
		case 3, 4:
			cfg.Faults = append(cfg.Faults, Fault{Kind: FaultCrash, At: at, For: dur, Nodes: pick(1 + rng.IntN(3))})
		case 5:
			cfg.Faults = append(cfg.Faults, Fault{Kind: FaultChurn, At: at, For: dur, Rate: 2 + rng.Float64()*4, Down: time.Duration(200+rng.IntN(800)) * ms})
		default:
			cfg.Faults = append(cfg.Faults, Fault{Kind: FaultSkew, At: at, Nodes: pick(1 + rng.IntN(3)), Skew: time.Duration(rng.IntN(20000)-10000) * ms})
		}
	}
	nb := rng.IntN(4)
	for k, node := range pick(nb) {
		var b Behaviour
		for b == 0 {
			b = Behaviour(rng.Uint32()) & AllBehaviours
			// Keep mixes small so each behaviour is exercised on its own too.
			for bitsSet(b) > 3 {
				b &= b - 1
			}
		}
		cfg.Byzantine = append(cfg.Byzantine, Byzantine{Node: node, Behaviours: b, Rate: 2 + float64(k), Flood: 20})
	}
	// Later additions draw from their own stream, so that the configuration
	// of every older seed (and so every regression file) stays the same.
	extra := rand.New(rand.NewPCG(seed, 0x701a))
	if extra.IntN(4) == 0 {
		var ns []int
		for _, k := range extra.Perm(n)[:1+extra.IntN(3)] {
			if !cfg.isByzantine(k) {
				ns = append(ns, k)
			}
		}
		cfg.Faults = append(cfg.Faults, Fault{Kind: FaultJoin, At: time.Duration(300+extra.IntN(2500)) * ms, Nodes: ns})
	}
	return cfg
}

func (c *Config) isByzantine(i int) bool {
	for _, b := range c.Byzantine {
		if b.Node == i {
			return true
		}
	}
	return false
}

func bitsSet(b Behaviour) int {
	n := 0
	for ; b != 0; b &= b - 1 {
		n++
	}
	return n
}

// Describe summarises a configuration in one line.
func (c Config) Describe() string {
	var parts []string
	parts = append(parts, fmt.Sprintf("seed %d: %d nodes, %s, latency %v", c.Seed, c.Nodes, c.Topology, c.Link.Latency))
	if c.Regions != nil {
		parts = append(parts, "regions")
	}
	if c.Link.Loss > 0 {
		parts = append(parts, fmt.Sprintf("loss %.2f", c.Link.Loss))
	}
	if c.Link.Burst != nil {
		parts = append(parts, "bursty")
	}
	if c.Link.Dup > 0 {
		parts = append(parts, fmt.Sprintf("dup %.2f", c.Link.Dup))
	}
	if c.Link.Reorder > 0 {
		parts = append(parts, fmt.Sprintf("reorder %.2f", c.Link.Reorder))
	}
	if c.Link.Bandwidth > 0 {
		parts = append(parts, fmt.Sprintf("bw %dKiB/s", c.Link.Bandwidth>>10))
	}
	for _, f := range c.Faults {
		parts = append(parts, fmt.Sprintf("%s@%v", f.Kind, f.At))
	}
	for _, b := range c.Byzantine {
		parts = append(parts, fmt.Sprintf("byz %d:%s", b.Node, b.Behaviours))
	}
	return strings.Join(parts, ", ")
}
