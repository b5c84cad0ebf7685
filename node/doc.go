// Package node is the convergenode peer: a libp2p host that replicates
// documents with other peers, and the library API to embed one.
//
// # Overview
//
// A [Node] runs one [replica.Replica] per joined document and moves bytes
// between it, the network and the disk; every protocol decision (what to
// accept, what to send, when to reconcile, whom to blame) is the
// replica's. The node provides:
//
//   - a libp2p host (TCP and QUIC, Noise and TLS, the resource manager and
//     a connection manager) whose identity is the Ed25519 key that also
//     signs the node's changes; a peer's LAN and loopback addresses are
//     dialled TCP first, public ones QUIC first ([Config.PreferQUICOnLAN]);
//   - gossipsub with three topics per document,
//     /convergenode/doc/<id>/changes, .../ephemeral and .../evidence:
//     message ID = change ID bound to the envelope hash on the changes
//     topic (replica.GossipID), pubsub signing off
//     (StrictNoSign; changes carry their own signatures), flood publish and
//     peer scoring on, mesh degree [Config.GossipD] (4). The topic
//     validator runs the replica's stateless check
//     ([replica.ValidateGossipShared]): Reject (a stage-1 failure: the
//     invalid-message penalty) or Ignore, never a stateful verdict; what it
//     accepts it hands to the document's loop itself. The
//     validators and the node's replicas share one bft.SigCache and one
//     bft.EnvCache per node, so a gossiped change is decoded, hashed and
//     verified once (by the validator) and Step takes the checked
//     envelope from the cache. The
//     replica's alerts (equivocation, non-service, abuse) lower the peer's
//     app-specific score;
//   - the sync stream protocol [SyncProtocol] that carries the replica's
//     direct messages (reconciliation in bounded batches), with a frame
//     size limit, a rate limit on the frames of graylisted peers
//     ([GraylistFrameRate]) and a progress report in the log while a large
//     catch-up runs;
//   - a [Storage] (Pebble by default, [MemStorage] for tests): the log of
//     accepted envelopes and, if it implements [SnapshotStorage] (both
//     built-in stores do), a snapshot of each document's state written
//     every [Config].SnapshotEvery ops and on Close; a restart loads the
//     snapshot and replays only the log entries it does not cover (the
//     whole log, through the gate, when there is no usable snapshot);
//   - discovery: static bootstrap peers, mDNS on the LAN, the Kademlia DHT
//     with a rendezvous per document, and AutoNAT, hole punching and the
//     relay client (all off in [DefaultTestConfig]);
//   - the local API on loopback ([Node.Handler]): HTTP/JSON documents,
//     presence, peers, alerts, equivocation proofs ([Doc.Proofs], never
//     dropped) and health, a WebSocket feed, HTTP push/pull
//     sync for clients without libp2p, Prometheus /metrics and pprof.
//
// # Usage
//
//	n, err := node.New(ctx, node.DefaultConfig("/var/lib/convergenode"))
//	if err != nil { ... }
//	defer n.Close()
//	doc, err := n.Doc(ctx, "todos")
//	err = doc.Insert(ctx, "items", "1", node.Cols{"title": "milk"})
//	row, ok := doc.Get("items", "1")
//	cancel := doc.Subscribe(func(ev crdt.ChangeEvent) { ... })
//
// A write ([Doc.Insert], [Doc.Update], [Doc.Delete], [Doc.Change]) returns
// once its change is signed and durable (fsync); only then is it
// published. Writes that arrive while the previous group is being written
// become one change (group commit: one signature for many ops).
//
// # The driver loop
//
// Each document has three goroutines. The loop is the only one that calls
// the replica's inputs (Step for gossip and stream messages, Tick every
// [Config.TickInterval], Propose, PeerUp and PeerDown from topic joins and
// leaves) and takes its Ready values. The persister acts on each Ready in
// order, as [replica.Ready] prescribes:
//
//	rd := r.Ready()
//	store.Append(doc, rd.Persist, sync)   // durable first
//	publish(rd.Broadcast); send(rd.Send)  // then the network
//	deliver(rd.Applied, rd.Presence, rd.Alerts)
//	ack the local writes                  // then the loop calls r.Advance()
//
// The third goroutine publishes what the persister hands it, in order,
// so gossipsub's event loop never holds up the next append or the events
// behind a local change; readies of peers' changes queued ahead of a
// local change are written and delivered without waiting for its fsync.
// A Ready that only persists changes received from peers is written
// without fsync, even when it sends (it survives a process crash; the next synced write, or
// reconciliation after a machine crash, covers the rest). Storage errors
// stop the document's writes and make the node unhealthy ([Node.Err],
// /healthz); they are never ignored.
//
// Readers ([Doc.Get], [Doc.Scan], [Doc.At], ...) hold the document's lock
// briefly and see the replica's materialized state, which may include
// changes still being written.
package node
