// Package topology builds the network graphs and the dissemination
// strategies the simulator runs the replica code over.
//
// # Overview
//
// Two choices are kept apart: who is connected to whom (a [Graph], made by
// [Star], [Mesh], [Ring], [Tree], [RandomRegular] or [SmallWorld]) and how a
// message travels over those connections (a [Strategy]: [Relay], [Flood],
// [Gossip] with a fanout and a hop limit, or [EagerLazy], a gossipsub-like
// mesh of degree D with lazy IHAVE/IWANT to the other neighbours).
// [Scenario] names a ready-made pairing, including the seed's Partition
// (a star with a partition window and a reconnect) and Filtered Star (peers
// subscribe to some namespaces).
//
// # Determinism
//
// Every random choice takes a *rand.Rand (math/rand/v2) from the caller,
// neighbour lists are sorted, and nothing reads the clock, so the same seed
// gives the same graph and the same forwarding decisions.
//
// # Usage
//
//	rng := rand.New(rand.NewPCG(seed, 0))
//	g := topology.RandomRegular(1000, 8, rng)
//	s := topology.Gossip{Fanout: 6, MaxHops: 10}
//	targets := s.Route(g, self, from, hop, rng, nil)
package topology
