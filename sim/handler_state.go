package sim

import (
	"fmt"
	"strings"
)

// state
//
// Prints each node: up or down, honest or its behaviours, the number of
// changes, its state group (nodes with the same letter agree) and the
// equivocators it holds proofs against.
func handleState(e *Env, _ Cmd) (string, error) {
	s := e.Sim
	letters := map[stateKey]byte{}
	var b strings.Builder
	for _, p := range s.peers {
		if !p.up {
			fmt.Fprintf(&b, "%d: down, log %d\n", p.i+1, len(p.log))
			continue
		}
		h, n := s.stateOf(p)
		k := stateKey{h, n}
		l, ok := letters[k]
		if !ok {
			l = byte('A' + len(letters)%26)
			letters[k] = l
		}
		who := "honest"
		if p.byz != nil {
			who = p.byz.b.Behaviours.String()
		}
		proofs := 0
		for _, m := range s.inv.proofs {
			if m[p.i] {
				proofs++
			}
		}
		fmt.Fprintf(&b, "%d: %s, %d changes, state %c", p.i+1, who, n, l)
		if proofs > 0 {
			fmt.Fprintf(&b, ", proofs against %d author(s)", proofs)
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}
