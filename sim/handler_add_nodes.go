package sim

import (
	"fmt"
	"strconv"
)

// add-nodes N [topology=star] [seed=1] [fanout=6] [hops=10] [degree=8]
// [latency=20ms] [jitter=0s] [loss=0] [dup=0] [reorder=0] [bandwidth=0]
// [tick=50ms] [regions=true]
//
// Builds the simulation with N nodes (numbered 1..N in scenario files).
func handleAddNodes(e *Env, c Cmd) (string, error) {
	if e.Sim != nil {
		return "", fmt.Errorf("nodes already added (one add-nodes per scenario)")
	}
	pos := positional(c)
	if len(pos) != 1 {
		return "", fmt.Errorf("want add-nodes N")
	}
	n, err := strconv.Atoi(pos[0])
	if err != nil || n < 1 {
		return "", fmt.Errorf("bad node count %q", pos[0])
	}
	cfg := e.Base
	cfg.Nodes = n
	if v, ok := argVal(c, "topology"); ok {
		cfg.Topology = v
	}
	seed, err := argInt(c, "seed", int(cfg.Seed))
	if err != nil {
		return "", err
	}
	cfg.Seed = uint64(seed)
	if cfg.Params.Fanout, err = argInt(c, "fanout", cfg.Params.Fanout); err != nil {
		return "", err
	}
	if cfg.Params.MaxHops, err = argInt(c, "hops", cfg.Params.MaxHops); err != nil {
		return "", err
	}
	if cfg.Params.Degree, err = argInt(c, "degree", cfg.Params.Degree); err != nil {
		return "", err
	}
	link := cfg.Link
	if link == (Link{}) {
		link = DefaultLink()
	}
	if v, ok := argVal(c, "latency"); ok {
		if link.Latency, err = ParseLatency(v); err != nil {
			return "", err
		}
	}
	if link.Jitter, err = argDur(c, "jitter", link.Jitter); err != nil {
		return "", err
	}
	if link.Loss, err = argFloat(c, "loss", link.Loss); err != nil {
		return "", err
	}
	if link.Dup, err = argFloat(c, "dup", link.Dup); err != nil {
		return "", err
	}
	if link.Reorder, err = argFloat(c, "reorder", link.Reorder); err != nil {
		return "", err
	}
	bw, err := argInt(c, "bandwidth", int(link.Bandwidth))
	if err != nil {
		return "", err
	}
	link.Bandwidth = int64(bw)
	cfg.Link = link
	if cfg.TickEvery, err = argDur(c, "tick", cfg.TickEvery); err != nil {
		return "", err
	}
	if v, ok := argVal(c, "regions"); ok && v == "true" {
		cfg.Regions = DefaultRegions()
	}
	// Scenario files drive writes and faults themselves.
	cfg.Workload = Workload{Duration: 1}
	cfg.Faults = nil
	s, err := New(cfg)
	if err != nil {
		return "", err
	}
	e.Sim = s
	return fmt.Sprintf("%d nodes: %s, %s\n", n, s.scen.Graph, s.scen.Strategy.Name()), nil
}
