package sim

import (
	"fmt"
	"time"
)

// FaultKind names a scheduled fault.
type FaultKind uint8

// The faults.
const (
	// FaultPartition splits Nodes from Other (default: everyone else),
	// both ways, for For (0 = until Heal).
	FaultPartition FaultKind = iota + 1
	// FaultOneWay stops messages from Nodes to Other (default: everyone
	// else), not back, for For.
	FaultOneWay
	// FaultIsolate cuts Nodes off from everyone, for For.
	FaultIsolate
	// FaultCrash stops Nodes; after For (if set) they restart from their
	// durable log. For 0 is crash-stop.
	FaultCrash
	// FaultChurn makes a random node leave every 1/Rate seconds during
	// For; each comes back (restarted from its log) after Down.
	FaultChurn
	// FaultSkew moves the clocks of Nodes by Skew.
	FaultSkew
	// FaultJoin keeps Nodes offline from the start (empty logs) and has
	// them join at At: new members catching up from nothing.
	FaultJoin
)

var faultNames = map[FaultKind]string{
	FaultPartition: "partition", FaultOneWay: "oneway", FaultIsolate: "isolate",
	FaultCrash: "crash", FaultChurn: "churn", FaultSkew: "skew", FaultJoin: "join",
}

func (k FaultKind) String() string {
	if n, ok := faultNames[k]; ok {
		return n
	}
	return fmt.Sprintf("fault(%d)", k)
}

// Fault is one scheduled fault.
type Fault struct {
	Kind  FaultKind
	At    time.Duration // when it starts
	For   time.Duration // how long it lasts (0 = permanent, or until Heal)
	Nodes []int
	Other []int
	Skew  time.Duration // FaultSkew
	Rate  float64       // FaultChurn: leaves per second
	Down  time.Duration // FaultChurn: time a node stays away; default 1s
}

func (s *Sim) scheduleFault(f Fault) {
	end := f.At + f.For
	if f.For > 0 && int64(end) > s.lastFault {
		s.lastFault = int64(end)
	}
	if int64(f.At) > s.lastFault {
		s.lastFault = int64(f.At)
	}
	switch f.Kind {
	case FaultPartition:
		s.at(f.At, func() { s.Partition(f.Nodes, s.others(f.Nodes, f.Other)) })
		if f.For > 0 {
			s.at(end, s.Heal)
		}
	case FaultOneWay:
		s.at(f.At, func() { s.OneWay(f.Nodes, s.others(f.Nodes, f.Other)) })
		if f.For > 0 {
			s.at(end, s.Heal)
		}
	case FaultIsolate:
		s.at(f.At, func() {
			groups := [][]int{}
			for _, n := range f.Nodes {
				groups = append(groups, []int{n})
			}
			s.Partition(groups...)
		})
		if f.For > 0 {
			s.at(end, s.Heal)
		}
	case FaultCrash:
		s.at(f.At, func() {
			for _, n := range f.Nodes {
				s.Crash(n)
			}
		})
		if f.For > 0 {
			s.at(end, func() {
				for _, n := range f.Nodes {
					_ = s.Restart(n)
				}
			})
		}
	case FaultChurn:
		down := f.Down
		if down <= 0 {
			down = time.Second
		}
		if f.Rate <= 0 || f.For <= 0 {
			return
		}
		step := time.Duration(float64(time.Second) / f.Rate)
		for t := f.At; t < end; t += step {
			s.at(t, func() {
				i := s.rng.IntN(len(s.peers))
				if !s.peers[i].up {
					return
				}
				s.Crash(i)
				s.after(down, func() { _ = s.Restart(i) })
			})
		}
		if int64(end+down) > s.lastFault {
			s.lastFault = int64(end + down)
		}
	case FaultJoin:
		s.at(0, func() {
			for _, n := range f.Nodes {
				s.Crash(n)
				s.peers[n].log = nil
				delete(s.inv.crashState, n)
			}
		})
		s.at(f.At, func() {
			for _, n := range f.Nodes {
				_ = s.Restart(n)
			}
		})
	case FaultSkew:
		s.at(f.At, func() {
			for _, n := range f.Nodes {
				s.Skew(n, f.Skew)
			}
		})
	}
}

// others returns other, or every node not in nodes when other is empty.
func (s *Sim) others(nodes, other []int) []int {
	if len(other) > 0 {
		return other
	}
	in := make([]bool, len(s.peers))
	for _, n := range nodes {
		in[n] = true
	}
	var out []int
	for i := range s.peers {
		if !in[i] {
			out = append(out, i)
		}
	}
	return out
}

// Partition splits the network into the given groups, both ways; nodes
// in no group form one more group. It replaces any earlier partition (not
// the one-way cuts). Connections across groups go down (PeerDown), and
// connections an earlier partition cut that are now inside one group come
// back up (PeerUp).
func (s *Sim) Partition(groups ...[]int) {
	s.groups = make([]int32, len(s.peers))
	for g, ns := range groups {
		for _, n := range ns {
			s.groups[n] = int32(g + 1)
		}
	}
	s.noteFault()
	s.syncConns()
}

// OneWay stops messages from nodes in from to nodes in to. Connections
// stay up (the receiver just stops hearing from them).
func (s *Sim) OneWay(from, to []int) {
	c := cut{from: make([]bool, len(s.peers)), to: make([]bool, len(s.peers))}
	for _, n := range from {
		c.from[n] = true
	}
	for _, n := range to {
		c.to[n] = true
	}
	s.oneway = append(s.oneway, c)
	s.noteFault()
}

// Heal removes every partition and one-way cut; the connections the
// partition cut come back up.
func (s *Sim) Heal() {
	s.groups = nil
	s.oneway = nil
	s.noteFault()
	s.syncConns()
}

// split reports whether the partition separates i and j.
func (s *Sim) split(i, j int) bool { return s.groups != nil && s.groups[i] != s.groups[j] }

// syncConns walks every connection and takes it down when the partition
// now splits it, or back up when a partition had cut it and no longer does.
func (s *Sim) syncConns() {
	if s.cutConns == nil {
		s.cutConns = make(map[uint64]bool)
	}
	g := s.conns
	for i := range s.peers {
		for k, d := 0, g.Degree(i); k < d; k++ {
			j := g.Neighbor(i, k)
			if j < i {
				continue
			}
			key := pairKey(i, j)
			switch cut := s.split(i, j); {
			case cut && !s.cutConns[key]:
				s.cutConns[key] = true
				s.disconnect(i, j)
			case !cut && s.cutConns[key]:
				delete(s.cutConns, key)
				s.connect(i, j)
			}
		}
	}
}

func (s *Sim) noteFault() {
	if s.now > s.lastFault {
		s.lastFault = s.now
	}
}

// Crash stops node i; its durable log survives.
func (s *Sim) Crash(i int) {
	p := s.peers[i]
	if !p.up {
		return
	}
	g := s.conns
	s.inv.noteCrash(p)
	s.setUp(p, false)
	s.setNode(p, nil)
	s.forget(int32(i)) // the pubsub layer's memory is gone too
	p.dirty = true
	s.noteFault()
	s.met.crashes++
	for k, d := 0, g.Degree(i); k < d; k++ {
		q := s.peers[g.Neighbor(i, k)]
		if q.up {
			s.wakeTicks(q)
			q.node.PeerDown(p.id)
			s.flush(q)
		}
	}
}

// Restart starts node i again from its durable log.
func (s *Sim) Restart(i int) error {
	p := s.peers[i]
	if p.up {
		return nil
	}
	p.restart++
	s.setUp(p, true)
	if err := s.startNode(p, s.logOf(p)); err != nil {
		s.setUp(p, false)
		s.inv.violate("restart", fmt.Sprintf("node %d: %v", i, err))
		return err
	}
	s.regrid(p, false) // a new node: it ticked at its start
	s.noteFault()
	s.met.restarts++
	s.inv.checkRestart(p)
	s.flush(p)
	s.connectAll(i)
	return nil
}

// Skew moves node i's clock by d.
func (s *Sim) Skew(i int, d time.Duration) {
	s.wakeTicks(s.peers[i]) // the ticks it skipped were quiet on the old clock
	s.peers[i].skew = d
}

// SetLink overrides the model of the directed link a->b.
func (s *Sim) SetLink(a, b int, l Link) {
	s.links[pairKey(a, b)] = &l
}
