package sim

import (
	"fmt"
	"strings"
	"time"
)

// link 1->2 [latency=50ms] [loss=0.5] [down=true] [bandwidth=1000]
//
// Overrides the model of one directed link (both with 1<->2).
func handleLink(e *Env, c Cmd) (string, error) {
	pos := positional(c)
	if len(pos) != 1 {
		return "", fmt.Errorf("want link A->B or A<->B")
	}
	both := strings.Contains(pos[0], "<->")
	sep := "->"
	if both {
		sep = "<->"
	}
	ends := strings.Split(pos[0], sep)
	if len(ends) != 2 {
		return "", fmt.Errorf("bad link %q", pos[0])
	}
	a, err := e.node(ends[0])
	if err != nil {
		return "", err
	}
	b, err := e.node(ends[1])
	if err != nil {
		return "", err
	}
	l := *e.Sim.link(a, b)
	if v, ok := argVal(c, "latency"); ok {
		if l.Latency, err = ParseLatency(v); err != nil {
			return "", err
		}
	}
	if l.Loss, err = argFloat(c, "loss", l.Loss); err != nil {
		return "", err
	}
	bw, err := argInt(c, "bandwidth", int(l.Bandwidth))
	if err != nil {
		return "", err
	}
	l.Bandwidth = int64(bw)
	if v, ok := argVal(c, "down"); ok {
		l.Down = v == "true"
	}
	e.Sim.SetLink(a, b, l)
	if both {
		e.Sim.SetLink(b, a, l)
	}
	return fmt.Sprintf("link %s: latency %v loss %v down %v\n", pos[0], l.Latency, l.Loss, l.Down), nil
}

// skew 2 5s
//
// Moves node 2's clock by the duration.
func handleSkew(e *Env, c Cmd) (string, error) {
	pos := positional(c)
	if len(pos) != 2 {
		return "", fmt.Errorf("want skew NODE DURATION")
	}
	n, err := e.node(pos[0])
	if err != nil {
		return "", err
	}
	d, err := time.ParseDuration(pos[1])
	if err != nil {
		return "", err
	}
	e.Sim.Skew(n, d)
	return fmt.Sprintf("node %d clock %+v\n", n+1, d), nil
}
