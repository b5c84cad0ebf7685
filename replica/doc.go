// Package replica is the protocol core for one document: the crdt.Doc, the
// bft.Gate in front of it, the ephemeral presence store and the per-peer
// reconciliation state, as one deterministic state machine in the style of
// etcd raft's RawNode.
//
// # Overview
//
// A [Replica] takes inputs as method calls and returns its outputs in a
// [Ready] value:
//
//   - [Replica.Step] handles one wire [Message] from a peer: a gossiped
//     change, equivocation proof or presence batch, or a reconciliation
//     message from the peer's sync stream;
//   - [Replica.Tick] tells it the time (it never reads a clock): group
//     commit, timeouts, presence heartbeats and the periodic sync run here.
//     A tick with nothing due returns at once, and [Replica.QuietUntil]
//     says until when ticks will find nothing to do, for drivers that can
//     skip them (the simulator);
//   - [Replica.Propose] and [Replica.SetPresence] are local writes;
//   - [Replica.PeerUp] and [Replica.PeerDown] report the sync stream to a
//     peer opening and closing; [Replica.PeerLeft] drops a departed
//     author's presence at once (the node calls it with the key behind the
//     peer ID when the peer leaves the document).
//
// The replica starts no goroutines, does no I/O, reads no clock and draws
// randomness only from [Config.Rand]; for the same inputs it produces the
// same outputs, in the same order. That is what lets the node (libp2p, a
// real clock, disk) and the simulator (one goroutine, a virtual clock) run
// the same code; no protocol decision lives in either driver.
//
// # Usage
//
// The driver serialises every call and runs this loop:
//
//	r, err := replica.New(cfg)              // cfg := replica.DefaultConfig(); set Doc, Key, Rand
//	err = r.Restore(log)                    // the durable log, on start
//	// or r.RestoreSnapshot(snap, log): a snapshot (r.Snapshot()) plus the log
//	// entries it does not cover; on ErrSnapshot fall back to Restore(log)
//	for {
//		select {                            // one input at a time
//		case m := <-fromNetwork:
//			r.Step(m.From, m.Data)
//		case now := <-ticker:
//			r.Tick(now)
//		case ops := <-localWrites:
//			r.Propose(ops...)
//		}
//		for r.HasReady() {
//			rd := r.Ready()
//			storage.Append(rd.Persist)      // 1. durable first (fsync)
//			publish(rd.Broadcast)           // 2. then the network
//			send(rd.Send)
//			deliver(rd.Applied, rd.Presence, rd.Alerts) // 3. the application
//			r.Advance()                     // 4. done
//		}
//	}
//
// Pubsub validators call [ValidateGossip] (pure, goroutine-safe) for the
// stateless check; only messages it accepts should reach Step. A driver
// that validates and then steps the same message should give the validator
// and the replica one [bft.SigCache] ([ValidateGossipCached] and
// [Config.SigCache]), so each change signature is verified once.
//
// A program that hosts so many replicas that each one's state has left the
// CPU's caches by its next input (the simulator) can call
// [Replica.Prefetch] for the inputs it will deliver next, stage by stage,
// to have that state on its way: a hint that changes nothing else. A
// driver that is done with a Ready's slices by Advance (it copied or acted
// on everything, and keeps no slice) can hand them back with
// [Replica.Recycle], so that later Readys, of any replica in the process,
// reuse them; the simulator does, the node (which pipelines Readys) does
// not.
//
// # Group commit
//
// Ops proposed between two Ticks become one signed change at the next Tick
// ([FlushOnTick], the default), so many small writes cost one signature;
// with [FlushOnReady] they are packed when Ready is called instead. A group
// larger than [Config.MaxOpsPerChange] or [Config.MaxChangeBytes] is split.
// Proposed ops are visible in [Replica.Doc] once flushed.
//
// # Reconciliation
//
// Gossip is best effort; reconciliation makes delivery certain. It follows
// Kleppmann and Howard ("Byzantine Eventual Consistency and Local-First
// Collaboration"): a session exchanges heads and a Bloom filter of the
// changes added since the last successful sync with that peer; each side
// then streams, in causal order, its changes the other's filter lacks plus
// all their descendants, in batches paced by acks ([Config.SyncWindow]);
// then each side asks (needs) for the other's heads and missing parents it
// still lacks, round after round, until it holds all of them. The usual
// case is one round trip. Sessions start on PeerUp, every
// [Config.SyncInterval] with a random peer, and when a gossiped change's
// parents are missing (the sender is asked for them first, a session
// follows if that is not enough). Every session and request is bounded in
// size and time; a peer that lies or stays silent costs a timeout and is
// named in an [Alert]. See docs/wire-format.md for the messages.
//
// # Blame
//
// A peer is penalised for not serving only what it provably claimed to
// hold: the heads of its hello (an honest replica advertises its own
// document's heads) and the parents of changes it sent on its sync stream
// (it streams and serves only changes it applied), and everything below
// them. A change that came by gossip proves nothing about the peer that
// forwarded it: pubsub forwards after the stateless check, before the
// relay has the change's parents. So the parents missing below a gossiped
// change are asked for (once per session) but never owed, and a session
// that has all the owed changes completes even if the relay did not have
// them. After [Config.MaxNeedsRounds] rounds, the peer gets a
// needs-unserved alert with Penalize set only if its last answer carried
// none of the owed changes we asked for; an answer that carried some is
// progress (a serve budget cuts answers short) and ends with an
// unpenalised needs-exhausted. Silence is never penalised: sessions and
// requests time out (sync-timeout, needs-timeout), since loss, churn and
// partitions look the same.
//
// # Re-gossip
//
// A change that reaches the replica by reconciliation, not gossip, is
// published again on the changes topic once applied: gossip missed this
// replica, so it likely missed neighbours too, and on a sparse graph each
// of them would otherwise wait for its own sync (one sync interval per
// hop). The message is the author's gossip message byte for byte (same
// [GossipID]), so nodes that already saw it drop it unvalidated. A replica
// that is catching up (new, restarted, or back from having no peer, until
// a session completes) re-gossips nothing, since what it receives is what
// it alone missed. Otherwise the message waits a random delay below
// [Config.RegossipDelay] and is dropped if the change arrives by gossip
// meanwhile (when a partition heals, many replicas learn the same changes
// at once; the first to publish suppresses the others), and
// [Config.RegossipRate] caps the rest.
//
// The subpackage replicatest wires replicas over a lossy, reordering,
// duplicating in-memory network with a fake clock, plus a Byzantine peer
// that lies in reconciliation; the tests and benchmarks use it.
package replica
