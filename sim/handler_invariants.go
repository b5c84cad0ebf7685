package sim

import (
	"fmt"
	"strings"
)

// invariants
//
// Checks the state invariants now (same change set -> same state; memory;
// no lost honest write; evidence; replay of every log) and prints the
// violations so far, or "ok".
func handleInvariants(e *Env, _ Cmd) (string, error) {
	s := e.Sim
	s.inv.checkFinal(true, true)
	if len(s.inv.violations) == 0 {
		return "ok\n", nil
	}
	var b strings.Builder
	for _, v := range s.inv.violations {
		fmt.Fprintf(&b, "%s: %s\n", v.Invariant, v.Detail)
	}
	return b.String(), nil
}

// metrics
//
// Prints the counters that depend on the scenario rather than on protocol
// details: writes, changes applied somewhere, and gossip messages the
// validator rejected.
func handleMetrics(e *Env, _ Cmd) (string, error) {
	m := e.Sim.met
	return fmt.Sprintf("writes %d, changes %d, rejected %d\n", m.writes, len(m.changes), m.rejected), nil
}
