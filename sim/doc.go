// Package sim is a deterministic discrete-event simulator that runs the
// real protocol core (replica.Replica) in every simulated node.
//
// # Overview
//
// One goroutine, a virtual clock and a seeded RNG drive an event queue
// ordered by (time, sequence), so the same seed gives a byte-identical
// trace whatever GOMAXPROCS is. Around the nodes the simulator models what
// the real node's libp2p layer does: a gossip layer per node (message
// dedup, the stateless validator with a shared verdict cache, forwarding
// along a [topology.Strategy], IHAVE/IWANT for lazy push), reliable
// ordered streams for reconciliation, and links with latency, jitter,
// loss (independent or Gilbert–Elliott bursts), duplication, reordering
// and bandwidth queueing.
//
// Faults run on a schedule ([Fault]): partitions (halves, isolation,
// one-way), crash-stop, crash-restart from the node's durable log (the
// driver keeps what Ready.Persist gave it), churn and clock skew.
// [Byzantine] nodes run the real replica too, with their output wrapped
// and attacks added: equivocation, forged signatures, tampered bodies,
// inflated Lamport times, fake or withheld parents, floods, replays from
// another document, censoring and lying in reconciliation.
//
// Every run checks the invariants ([InvValidOnly], [InvSameState],
// [InvConvergence], [InvNoLoss], [InvEvidence], [InvMemory], [InvRestart])
// and reports metrics ([Report]): convergence time, delivery latency
// percentiles, messages and bytes per node, duplicates per delivery, the
// last delivery hop and inconsistent pairs over time.
//
// For scale, ticks that a node says are idle ([Quieter]) are not
// scheduled, every replica is sized for the workload up front
// ([NodeConfig.Expect]) and shares one signature cache, one envelope
// cache and one Ready buffer with the others (and hands each replica's
// Ready slices back, [replica.Replica.Recycle]), the engine calls a
// [ReplicaNode]'s replica directly, and the event queue's buckets hold
// their events in blocks from one free list. The queue keeps its next 16
// events in order in a window, and the engine starts loading the state of
// the nodes they go to a few events before each fires
// ([replica.Replica.Prefetch], in stages that follow the replica's
// pointers, and the neighbour list of a node about to forward gossip):
// at 100,000 nodes the replicas' state is gigabytes, and each
// input would otherwise wait on one cache miss after another. None of this
// changes a trace.
//
// # Usage
//
//	rep, err := sim.Run(sim.Config{Seed: 7, Nodes: 100, Topology: "gossip",
//		Workload: sim.Workload{Rate: 2}})
//
// Scenario files (testdata/*.txt, run with [RunScenarioFile]) drive a
// simulation step by step: add-nodes, partition, write, stabilize, heal,
// converged?, and so on.
package sim
