package sim

import (
	"fmt"
	"strings"
)

// state
//
// Prints each node: up or down, honest or its behaviours, the number of
// changes, and its state group (nodes with the same letter agree).
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
		fmt.Fprintf(&b, "%d: %s, %d changes, state %c\n", p.i+1, who, n, l)
	}
	return b.String(), nil
}
