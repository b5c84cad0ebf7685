package sim

import (
	"fmt"
	"math"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/replica"
)

// writers returns the nodes that write: the first Workload.Writers honest
// nodes, or every honest node.
func (s *Sim) writers() []int {
	var w []int
	for _, p := range s.peers {
		if p.byz == nil {
			w = append(w, p.i)
		}
	}
	if n := s.cfg.Workload.Writers; n > 0 && n < len(w) {
		w = w[:n]
	}
	return w
}

// expectOf returns the size of cfg's workload (validated) on each node:
// the durable changes it writes (expected, for a rate), their authors,
// and the rows they are expected to touch (r rows drawn c times at random
// touch r(1-(1-1/r)^c) of them on average).
func expectOf(cfg Config) Expect {
	wl := cfg.Workload
	writers := cfg.Nodes - len(cfg.Byzantine)
	if wl.Writers > 0 {
		writers = min(writers, wl.Writers)
	}
	writers = max(writers, 0)
	var c float64
	if wl.Changes > 0 {
		c = float64(wl.Changes)
	} else {
		c = wl.Rate * wl.Duration.Seconds() * float64(writers)
	}
	c = min(c*(1-wl.Ephemeral), replica.MaxExpect)
	r := float64(wl.Rows)
	rows := r * (1 - math.Pow(1-1/r, c))
	return Expect{
		Changes: int(math.Ceil(c)),
		Authors: min(writers, int(math.Ceil(c))),
		Rows:    min(int(math.Ceil(rows)), replica.MaxExpect),
	}
}

func (s *Sim) scheduleWorkload() {
	wl := s.cfg.Workload
	ws := s.writers()
	if len(ws) == 0 {
		return
	}
	if wl.Changes > 0 {
		for k := 0; k < wl.Changes; k++ {
			t := time.Duration(float64(wl.Duration) * (float64(k) + 0.5) / float64(wl.Changes))
			node := ws[k%len(ws)]
			s.at(t, func() { s.write(node) })
		}
		return
	}
	if wl.Rate <= 0 {
		return
	}
	for _, node := range ws {
		s.scheduleNextWrite(node, 0)
	}
}

func (s *Sim) scheduleNextWrite(node int, from time.Duration) {
	wl := s.cfg.Workload
	gap := time.Duration(-math.Log(1-s.rng.Float64()) / wl.Rate * float64(time.Second))
	t := from + gap
	if t >= wl.Duration {
		return
	}
	s.at(t, func() {
		s.write(node)
		s.scheduleNextWrite(node, t)
	})
}

func (s *Sim) namespaces() []string {
	if ns := s.cfg.Workload.Namespaces; len(ns) > 0 {
		return ns
	}
	if ns := s.cfg.Params.Namespaces; len(ns) > 0 {
		return ns
	}
	if s.scen.Subscriptions != nil {
		return []string{"a", "b", "c"}
	}
	return []string{"cursor"}
}

// write makes node i perform one workload write.
func (s *Sim) write(i int) {
	p := s.peers[i]
	if !p.up {
		return
	}
	wl := s.cfg.Workload
	if wl.Ephemeral > 0 && s.rng.Float64() < wl.Ephemeral {
		ns := s.namespaces()
		s.ephSeq++
		if err := s.SetPresence(i, ns[s.rng.IntN(len(ns))], p.id, crdt.Int(int64(s.ephSeq))); err == nil {
			s.met.ephemeralWrites++
		}
		return
	}
	row := fmt.Sprintf("r%d", s.rng.IntN(wl.Rows))
	v := crdt.String(fmt.Sprintf("%s@%d", p.id, s.now/int64(time.Millisecond)))
	if err := s.Propose(i, crdt.Insert("t", row, map[string]crdt.Value{"c": v})); err == nil {
		s.met.writes++
	}
}
