package sim

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Behaviour is a set of Byzantine behaviours (bit flags).
type Behaviour uint32

// The Byzantine behaviours. Attacks that make changes build them from the
// real wire formats (crdt changes signed with bft.Sign, wrapped in replica
// messages), so they exercise the real gate.
const (
	BehaviourEquivocate   Behaviour = 1 << iota // two signed changes with the same seq/prev
	BehaviourForge                              // changes whose signature is not the author's
	BehaviourTamper                             // valid envelopes with a body byte flipped
	BehaviourLamport                            // validly signed changes with an inflated lamport
	BehaviourFakeParents                        // validly signed changes with parents nobody has
	BehaviourWithhold                           // publish a child, never the parent it needs
	BehaviourFloodInvalid                       // a flood of garbage and invalid changes
	BehaviourFloodValid                         // a flood of valid but useless changes
	BehaviourReplay                             // changes signed for another document
	BehaviourCensor                             // forward nothing, answer no IWANT
	BehaviourLie                                // lie in reconciliation: corrupt or fake sync messages
)

var behaviourNames = []struct {
	b    Behaviour
	name string
}{
	{BehaviourEquivocate, "equivocate"},
	{BehaviourForge, "forge"},
	{BehaviourTamper, "tamper"},
	{BehaviourLamport, "lamport"},
	{BehaviourFakeParents, "fake-parents"},
	{BehaviourWithhold, "withhold"},
	{BehaviourFloodInvalid, "flood-invalid"},
	{BehaviourFloodValid, "flood-valid"},
	{BehaviourReplay, "replay"},
	{BehaviourCensor, "censor"},
	{BehaviourLie, "lie"},
}

// Has reports whether b includes x.
func (b Behaviour) Has(x Behaviour) bool { return b&x != 0 }

func (b Behaviour) String() string {
	var parts []string
	for _, n := range behaviourNames {
		if b.Has(n.b) {
			parts = append(parts, n.name)
		}
	}
	if len(parts) == 0 {
		return "honest"
	}
	return strings.Join(parts, "+")
}

// ParseBehaviour reads names joined by "+" or ",", or "all".
func ParseBehaviour(s string) (Behaviour, error) {
	var b Behaviour
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '+' || r == ',' }) {
		if part == "all" {
			b |= AllBehaviours
			continue
		}
		found := false
		for _, n := range behaviourNames {
			if n.name == part {
				b |= n.b
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("sim: unknown behaviour %q (want %s)", part, strings.Join(BehaviourNames(), ", "))
		}
	}
	return b, nil
}

// AllBehaviours is every behaviour.
const AllBehaviours = BehaviourLie<<1 - 1

// BehaviourNames lists the behaviour names, sorted.
func BehaviourNames() []string {
	var n []string
	for _, x := range behaviourNames {
		n = append(n, x.name)
	}
	sort.Strings(n)
	return n
}

// Byzantine makes one node misbehave. The node still runs the real replica
// (so it has a real view of the document to attack from); the simulator
// wraps its output and adds attacks.
type Byzantine struct {
	Node       int
	Behaviours Behaviour
	// Rate is attacks per second while active; default 5.
	Rate float64
	// From and Until bound the attack window; Until 0 = the workload's end.
	From, Until time.Duration
	// Flood is the number of messages per flood attack; default 50.
	Flood int
}

// byzState is the Byzantine side of a peer.
type byzState struct {
	b        Byzantine
	attacks  int
	own      *chain // the node's own chain, for equivocation
	flood    *chain // the puppet of valid floods
	floodLam uint64
}

func newByzState(b Byzantine) *byzState {
	if b.Rate <= 0 {
		b.Rate = 5
	}
	if b.Flood <= 0 {
		b.Flood = 50
	}
	return &byzState{b: b}
}

// scheduleByzantine schedules the attacks of every Byzantine node.
func (s *Sim) scheduleByzantine() {
	for _, p := range s.peers {
		if p.byz == nil {
			continue
		}
		b := p.byz.b
		until := b.Until
		if until <= 0 {
			until = s.cfg.Workload.Duration
		}
		step := time.Duration(float64(time.Second) / p.byz.b.Rate)
		if step <= 0 {
			step = time.Millisecond
		}
		for t := b.From; t < until; t += step {
			i := p.i
			s.at(t, func() { s.attack(s.peers[i]) })
		}
		if int64(until) > s.lastFault {
			s.lastFault = int64(until)
		}
	}
}

// byzPublish handles a Byzantine node's own gossip output.
func (s *Sim) byzPublish(p *peer, o Outgoing) {
	s.publish(p, o.Topic, o.Data)
}

// byzSend handles a Byzantine node's stream output; it returns true when
// it took care of it (dropped or replaced it).
func (s *Sim) byzSend(p *peer, to int, data []byte) bool {
	if p.byz.b.Behaviours.Has(BehaviourCensor) && censored(data) {
		return true
	}
	if !p.byz.b.Behaviours.Has(BehaviourLie) {
		return false
	}
	s.sendDirect(p.i, to, s.lie(p, data))
	return true
}

// attack runs one round of a Byzantine node's active behaviours.
func (s *Sim) attack(p *peer) {
	if !p.up {
		return
	}
	p.byz.attacks++
	bs := p.byz.b.Behaviours
	for _, n := range behaviourNames {
		if bs.Has(n.b) {
			s.attackWith(p, n.b)
		}
	}
}

// garbage returns n pseudo-random bytes.
func (s *Sim) garbage(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(s.rng.Uint32())
	}
	return b
}
