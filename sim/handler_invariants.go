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
// Prints the run's counters so far (deterministic, no hashes).
func handleMetrics(e *Env, _ Cmd) (string, error) {
	m := e.Sim.met
	return fmt.Sprintf("writes %d, changes %d, messages %d, duplicates %d, lost %d, rejected %d, via reconciliation %d\n",
		m.writes, len(m.changes), m.msgs, m.dups, m.lost, m.rejected, m.viaSync), nil
}
