package topology

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// Params are the knobs of the named scenarios. Zero fields take the
// defaults listed.
type Params struct {
	Fanout    int     // gossip: random neighbours per forward; default 6
	MaxHops   int     // gossip: hop limit; default 10
	Degree    int     // gossip, regular, gossipsub: connections per node; default 2*Fanout (gossip) or 8
	Branching int     // tree: children per node; default 3
	RingK     int     // ring: neighbours on each side; default 1
	Beta      float64 // smallworld: rewiring probability; default 0.1
	D         int     // gossipsub: mesh degree; default 6
	DLazy     int     // gossipsub: IHAVE targets; default 6

	// PartitionAt and HealAt bound the partition window of "partition";
	// defaults 1s and 3s.
	PartitionAt, HealAt time.Duration
	// Namespaces are the namespaces of "filtered"; default a, b, c.
	Namespaces []string
}

// Window is a timed partition: from At until Heal the nodes are split into
// Groups (nodes in no group form one more group of their own).
type Window struct {
	At, Heal time.Duration
	Groups   [][]int
}

// Scenario is a ready-made pairing of a graph and a strategy, plus the
// seed's extras: a partition window and per-node namespace subscriptions.
type Scenario struct {
	Name      string
	Graph     *Graph
	Strategy  Strategy
	Partition *Window
	// Subscriptions lists, per node, the namespaces it subscribes to;
	// nil means every node takes everything.
	Subscriptions [][]string
}

// Subscribed reports whether node i takes namespace ns.
func (s *Scenario) Subscribed(i int, ns string) bool {
	if s.Subscriptions == nil || i >= len(s.Subscriptions) || s.Subscriptions[i] == nil {
		return true
	}
	for _, x := range s.Subscriptions[i] {
		if x == ns {
			return true
		}
	}
	return false
}

// Follows returns the namespaces node i subscribes to, or nil when it
// takes every namespace.
func (s *Scenario) Follows(i int) []string {
	if s.Subscriptions == nil || i >= len(s.Subscriptions) {
		return nil
	}
	return s.Subscriptions[i]
}

// Names lists the scenario names New accepts, sorted.
func Names() []string {
	n := []string{"star", "gossip", "mesh", "partition", "filtered", "ring", "tree", "regular", "smallworld", "gossipsub", "flood"}
	sort.Strings(n)
	return n
}

// New builds the named scenario over n nodes.
//
//   - star: a hub (node 0) relays for everyone (Relay).
//   - gossip: random regular graph of Degree, fanout gossip with a hop limit.
//   - mesh: everyone connected to everyone, flood.
//   - partition: star, split into two halves from PartitionAt to HealAt.
//   - filtered: star whose leaves subscribe to some of Namespaces.
//   - ring, tree, regular, smallworld: that graph, flood.
//   - gossipsub: random regular graph of Degree (at least 12), eager/lazy
//     push with flood publishing.
//   - flood: random regular graph of Degree, flood.
func New(name string, n int, p Params, rng *rand.Rand) (*Scenario, error) {
	if n < 1 {
		return nil, fmt.Errorf("topology: %d nodes", n)
	}
	if p.Fanout <= 0 {
		p.Fanout = 6
	}
	deg := p.Degree
	if deg <= 0 {
		deg = 8
	}
	s := &Scenario{Name: name}
	switch name {
	case "star":
		s.Graph, s.Strategy = Star(n), Relay{}
	case "gossip":
		if p.Degree <= 0 {
			deg = 2 * p.Fanout
		}
		s.Graph, s.Strategy = RandomRegular(n, min(deg, n-1), rng), Gossip{Fanout: p.Fanout, MaxHops: p.MaxHops}
	case "mesh":
		s.Graph, s.Strategy = Mesh(n), Flood{}
	case "partition":
		s.Graph, s.Strategy = Star(n), Relay{}
		at, heal := p.PartitionAt, p.HealAt
		if at <= 0 {
			at = time.Second
		}
		if heal <= at {
			heal = at + 2*time.Second
		}
		var a, b []int
		for i := 0; i < n; i++ {
			if i < (n+1)/2 {
				a = append(a, i)
			} else {
				b = append(b, i)
			}
		}
		s.Partition = &Window{At: at, Heal: heal, Groups: [][]int{a, b}}
	case "filtered":
		s.Graph, s.Strategy = Star(n), Relay{}
		ns := p.Namespaces
		if len(ns) == 0 {
			ns = []string{"a", "b", "c"}
		}
		s.Subscriptions = make([][]string, n)
		for i := 1; i < n; i++ {
			// Each leaf takes one namespace, and every third leaf a second.
			sub := []string{ns[i%len(ns)]}
			if i%3 == 0 && len(ns) > 1 {
				sub = append(sub, ns[(i+1)%len(ns)])
			}
			sort.Strings(sub)
			s.Subscriptions[i] = sub
		}
	case "ring":
		s.Graph, s.Strategy = Ring(n, max(p.RingK, 1)), Flood{}
	case "tree":
		br := p.Branching
		if br <= 0 {
			br = 3
		}
		s.Graph, s.Strategy = Tree(n, br), Flood{}
	case "regular", "flood":
		s.Graph, s.Strategy = RandomRegular(n, min(deg, n-1), rng), Flood{}
	case "smallworld":
		beta := p.Beta
		if beta <= 0 {
			beta = 0.1
		}
		s.Graph, s.Strategy = SmallWorld(n, min(deg, n-1), beta, rng), Flood{}
	case "gossipsub":
		s.Graph, s.Strategy = RandomRegular(n, min(max(deg, 12), n-1), rng), EagerLazy{D: p.D, DLazy: p.DLazy, FloodPublish: true}
	default:
		return nil, fmt.Errorf("topology: unknown scenario %q (want one of %s)", name, strings.Join(Names(), ", "))
	}
	return s, nil
}
