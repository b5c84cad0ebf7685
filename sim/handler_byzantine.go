package sim

import (
	"fmt"
	"strings"
)

// equivocate 3
// byzantine 3 forge,tamper [rounds=1]
//
// Makes node 3 Byzantine (from now on it also wraps its output: censor,
// lie) and runs attack rounds of the behaviours now. equivocate is
// byzantine with "equivocate".
func handleByzantine(e *Env, c Cmd) (string, error) {
	pos := positional(c)
	if len(pos) < 1 {
		return "", fmt.Errorf("want %s NODE [behaviours]", c.Name)
	}
	n, err := e.node(pos[0])
	if err != nil {
		return "", err
	}
	spec := "equivocate"
	if c.Name == "byzantine" {
		if len(pos) < 2 {
			return "", fmt.Errorf("want byzantine NODE behaviour[,behaviour]")
		}
		spec = strings.Join(pos[1:], ",")
	}
	b, err := ParseBehaviour(spec)
	if err != nil {
		return "", err
	}
	rounds, err := argInt(c, "rounds", 1)
	if err != nil {
		return "", err
	}
	s := e.Sim
	p := s.peers[n]
	if p.byz == nil {
		p.byz = newByzState(Byzantine{Node: n, Behaviours: b})
	} else {
		p.byz.b.Behaviours |= b
	}
	for r := 0; r < rounds; r++ {
		for _, x := range behaviourNames {
			if b.Has(x.b) {
				s.attackWith(p, x.b)
			}
		}
	}
	return fmt.Sprintf("%d is byzantine: %s\n", n+1, p.byz.b.Behaviours), nil
}
