package sim

import (
	"fmt"
	"strings"
)

// partition 1,2 | 3,4,5
//
// Splits the network into the groups (both ways); unlisted nodes form one
// more group.
func handlePartition(e *Env, c Cmd) (string, error) {
	groups, err := e.groupArgs(c, "|")
	if err != nil {
		return "", err
	}
	e.Sim.Partition(groups...)
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = fmtNodes(g)
	}
	return "partitioned " + strings.Join(parts, " | ") + "\n", nil
}

// oneway 1,2 -> 3,4
//
// Stops messages from the left nodes to the right nodes only.
func handleOneWay(e *Env, c Cmd) (string, error) {
	groups, err := e.groupArgs(c, "->")
	if err != nil {
		return "", err
	}
	if len(groups) != 2 {
		return "", fmt.Errorf("want oneway A -> B")
	}
	e.Sim.OneWay(groups[0], groups[1])
	return fmt.Sprintf("cut %s -> %s\n", fmtNodes(groups[0]), fmtNodes(groups[1])), nil
}

// isolate 3[,4]
//
// Cuts each listed node off from everyone.
func handleIsolate(e *Env, c Cmd) (string, error) {
	ns, err := e.nodeList(strings.Join(positional(c), ","))
	if err != nil {
		return "", err
	}
	groups := make([][]int, len(ns))
	for i, n := range ns {
		groups[i] = []int{n}
	}
	e.Sim.Partition(groups...)
	return "isolated " + fmtNodes(ns) + "\n", nil
}

// groupArgs splits the positional arguments at sep into node groups.
func (e *Env) groupArgs(c Cmd, sep string) ([][]int, error) {
	var groups [][]int
	var cur []string
	flush := func() error {
		if len(cur) == 0 {
			return nil
		}
		g, err := e.nodeList(strings.Join(cur, ","))
		if err != nil {
			return err
		}
		groups = append(groups, g)
		cur = nil
		return nil
	}
	for _, p := range positional(c) {
		for i, part := range strings.Split(p, sep) {
			if i > 0 {
				if err := flush(); err != nil {
					return nil, err
				}
			}
			if part != "" {
				cur = append(cur, part)
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if len(groups) == 0 {
		return nil, fmt.Errorf("no nodes given")
	}
	return groups, nil
}
