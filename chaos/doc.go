// Package chaos tests the real convergenode stack (node.New: go-libp2p,
// gossipsub, the sync stream protocol, storage and the public API) under
// faults and Byzantine peers, in one process.
//
// # Overview
//
// A [Cluster] starts honest nodes on a go-libp2p mocknet (no sockets):
// links have latency and bandwidth, can be cut and restored, partitioned
// and healed, and nodes can be stopped and restarted on their stores
// (churn). A partition or cut closes the connections and, since the
// mocknet lets a stream open on a connection that has just closed, the
// honest nodes' hosts also refuse streams between the two sides. [Cluster.AddHostileNodes] starts real nodes whose hosts also
// send hostile sync-stream messages. [Attacker] values are hostile peers
// on the same mocknet built
// from the node's own parts (gossipsub with the node's message IDs and no
// pubsub signatures, the sync stream framing, the replica wire codec) that
// publish and send whatever bytes an attack needs: equivocation, forged
// and tampered changes, inflated Lamport times, fake parents, floods of
// invalid and of valid-but-useless changes, replays from another
// document, censoring, lying reconciliation, oversized messages,
// presence spoofing and message-ID poisoning ([ModePoison]).
//
// The simulator's invariants are checked on the real nodes through their
// public API: valid-only ([CheckValidOnly]), same set → same state
// ([CheckSameState]), convergence after healing ([Cluster.WaitConverged]),
// no lost acknowledged writes ([Cluster.CheckAcked]), proofs everywhere
// ([Cluster.CheckProofs]) and bounded memory ([HeapInUse]).
//
// # Usage
//
//	c := chaos.NewCluster(chaos.ClusterConfig{Seed: 5})
//	defer c.Close()
//	c.AddNodes(ctx, 4)
//	atk, _ := c.AddAttackers(ctx, 1, chaos.ModeRelay)
//	c.WireFull()
//	atk[0].Forge(ctx)
//	c.WaitConverged(ctx, 30*time.Second, 0)
//
// [Run] runs a whole scenario (workload, faults, attackers) and returns a
// [Report]; [Flood] measures an invalid-change flood; [CLI] is the
// "convergenode chaos" command.
//
// # Tests
//
// The default "go test ./chaos" is a small slice (about 40 s). The long
// suite (bigger clusters, every attack and fault for a minute, a 30 s
// flood) runs with CONVERGENODE_CHAOS_LONG=1 ("make chaos").
package chaos
