package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/cockroachdb/datadriven"
)

type datadrivenArg = datadriven.CmdArg

// stabilize [max=30s]
//
// Runs until every honest up node has the same state, checking every
// 50ms, for at most max. Prints "stable", or what is still split. How long
// it took depends on every protocol detail, so it is left out of the
// golden output; "stabilize verbose=true" prints it.
func handleStabilize(e *Env, c Cmd) (string, error) {
	maxD, err := argDur(c, "max", 30*time.Second)
	if err != nil {
		return "", err
	}
	s := e.Sim
	start := s.Now()
	step := 50 * time.Millisecond
	for s.Now()-start < maxD {
		s.RunFor(step)
		if s.converged() {
			if v, _ := argVal(c, "verbose"); v == "true" {
				return fmt.Sprintf("stable after %v\n", s.Now()-start), nil
			}
			return "stable\n", nil
		}
	}
	return fmt.Sprintf("not stable after %v: %s\n", maxD, groupsString(s.stateGroups())), nil
}

// run 1s
//
// Advances virtual time.
func handleRun(e *Env, c Cmd) (string, error) {
	pos := positional(c)
	if len(pos) != 1 {
		return "", fmt.Errorf("want run DURATION")
	}
	d, err := time.ParseDuration(pos[0])
	if err != nil {
		return "", err
	}
	e.Sim.RunFor(d)
	return fmt.Sprintf("t=%v\n", e.Sim.Now()), nil
}

// converged? [presence=NS]
//
// Says whether every honest up node has the same state, and if not, which
// nodes agree with which. With presence=NS it compares the presence
// entries of namespace NS among the nodes subscribed to it instead.
func handleConverged(e *Env, c Cmd) (string, error) {
	if ns, ok := argVal(c, "presence"); ok {
		return presenceConverged(e.Sim, ns), nil
	}
	g := e.Sim.stateGroups()
	n := 0
	if len(g) > 0 {
		n = e.Sim.peers[g[0][0]].node.Len()
	}
	if len(g) <= 1 {
		return fmt.Sprintf("yes: %d changes\n", n), nil
	}
	return "no: " + groupsString(g) + "\n", nil
}

func groupsString(g [][]int) string {
	parts := make([]string, len(g))
	for i, ns := range g {
		parts[i] = fmtNodes(ns)
	}
	return strings.Join(parts, " | ")
}

func presenceConverged(s *Sim, ns string) string {
	idx := map[[32]byte]int{}
	var groups [][]int
	entries := 0
	for _, p := range s.peers {
		if !p.up || p.byz != nil || !s.scen.Subscribed(p.i, ns) {
			continue
		}
		h := p.node.PresenceHash(ns)
		g, ok := idx[h]
		if !ok {
			g = len(groups)
			idx[h] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], p.i)
		if rn, ok := p.node.(*ReplicaNode); ok && len(groups) == 1 {
			entries = len(rn.R.Presence().All(ns))
		}
	}
	if len(groups) <= 1 {
		n := 0
		if len(groups) == 1 {
			n = len(groups[0])
		}
		return fmt.Sprintf("yes: %d subscribers of %s agree on %d entries\n", n, ns, entries)
	}
	return "no: " + groupsString(groups) + "\n"
}
