package sim

import (
	"fmt"
	"strings"
)

// chaos seed=N
//
// Runs the chaos configuration of seed N (see ChaosConfig) to the end and
// prints its description and "ok" or the violations. Regression files in
// testdata/regress/ are made of these.
func handleChaos(e *Env, c Cmd) (string, error) {
	seed, err := argInt(c, "seed", -1)
	if err != nil || seed < 0 {
		return "", fmt.Errorf("want chaos seed=N")
	}
	cfg := ChaosConfig(uint64(seed))
	r, err := Run(cfg)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", cfg.Describe())
	if r.OK() {
		fmt.Fprintf(&b, "ok: converged=%v delivery=%.3f\n", r.Converged, r.Delivery)
	}
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "%s: %s\n", v.Invariant, v.Detail)
	}
	return b.String(), nil
}
