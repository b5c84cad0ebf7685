package sim

import "strings"

// crash 3[,4]
//
// Stops the nodes; their durable logs survive.
func handleCrash(e *Env, c Cmd) (string, error) {
	ns, err := e.nodeList(strings.Join(positional(c), ","))
	if err != nil {
		return "", err
	}
	for _, n := range ns {
		e.Sim.Crash(n)
	}
	return "crashed " + fmtNodes(ns) + "\n", nil
}

// restart 3[,4]
//
// Restarts crashed nodes from their durable logs.
func handleRestart(e *Env, c Cmd) (string, error) {
	ns, err := e.nodeList(strings.Join(positional(c), ","))
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, n := range ns {
		if err := e.Sim.Restart(n); err != nil {
			return "", err
		}
		b.WriteString("restarted " + fmtNodes([]int{n}) + " from a log of " + itoa(len(e.Sim.peers[n].log)) + " entries\n")
	}
	return b.String(), nil
}
