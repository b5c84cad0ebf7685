// Package ephemeral is convergenode's presence layer: cursors, selections,
// player positions and other short-lived values that peers who do not trust
// each other share beside a document, with no history and nothing persisted.
//
// # Overview
//
// A [Store] maps namespace → key → a last-writer-wins entry {value, HLC
// timestamp, author}. Entries are ordered by (timestamp, author), then a
// tombstone after a set, then the value ([crdt.Value.Compare]): a total
// order, so every replica that has merged the same batches holds the same
// entries whatever the delivery order.
//
// Ownership: by default a key belongs to its author. An entry in an owned
// namespace is identified by (namespace, author, key), so a batch signed by
// one peer can only ever set or delete that peer's own entries: nobody can
// move another peer's cursor. Namespaces listed in [Config.Shared] have one
// entry per key that any author may write (LWW). A peer that follows only
// some namespaces lists them in [Config.Namespaces]: remote updates in other
// namespaces are verified with their batch, then dropped.
//
// Timestamps come from a hybrid logical clock ([Clock]); physical time is
// always passed in as a value. The store never reads the wall clock, starts
// no goroutines, uses no randomness and emits everything in a stable order.
//
// # Batches
//
// Local writes ([Store.Set], [Store.Delete]) are visible at once and are
// packed by [Store.Flush] or [Store.Tick] into a [Batch]: every update the
// author made in that tick (deletes travel as tombstones), one Ed25519
// signature over BLAKE3-256([Domain] || canonical body). The batch carries
// the document ID (no replay across documents), the author's public key and
// the batch time (the author's HLC; strictly increasing per author, it
// identifies the batch). [Batch.Encode] and [DecodeBatch] give the one
// canonical encoding; the decoder refuses anything that would not re-encode
// to the same bytes.
//
// [Store.Merge] refuses, cheapest check first and before storing anything:
// another document ([ErrWrongDoc]); a batch time more than [Config.MaxSkew]
// ahead of local time ([ErrFuture]) or already [Config.TTL] old ([ErrStale]);
// a batch already accepted (same author, time and signature), or one at or
// before the newest batch seen before [Store.RemoveAuthor] ([ErrReplay]); an invalid batch or a
// bad signature ([ErrBadSignature]); an author over its token bucket
// ([ErrRateLimited], [Config.Rate] updates per second, [Config.Burst]) or
// over [Config.MaxEntriesPerAuthor] ([ErrTooManyEntries]). Batches from the
// same author may arrive in any order within the TTL: each update wins or
// loses by its own timestamp.
//
// # Expiry
//
// An entry (or tombstone) expires TTL (default 30 s) after the time of the
// newest batch that carried it ([Entry.Expires]), so replicas that received
// the same batches expire the same entries. [Store.Tick] re-sends the local
// author's live entries in a fresh signed batch once they are
// [Config.Heartbeat] old (default 15 s) and returns that heartbeat for
// broadcast. A heartbeat keeps each update's original timestamp: it renews
// the entry but never wins a last-writer-wins race it had not already won.
// An author that stops sending vanishes within TTL; [Store.RemoveAuthor]
// drops a peer's entries at once when it leaves.
//
// # Usage
//
// The driver (the replica) owns the store and calls it from one goroutine:
//
//	s, err := ephemeral.NewStore(ephemeral.Config{Doc: "doc-1", Key: key})
//	cancel := s.Watch(func(e ephemeral.Event) { /* synchronous */ })
//	defer cancel()
//
//	s.Set("cursor", "pos", crdt.Int(42), now)  // local write, visible at once
//
//	// every tick:
//	batches, expired := s.Tick(now)            // pending writes + heartbeat
//	for _, b := range batches {
//		data, _ := b.Encode()
//		publish(data)                         // ephemeral gossip topic
//	}
//
//	// on a message from the ephemeral topic:
//	b, err := ephemeral.DecodeBatch(data)
//	if err == nil {
//		events, err = s.Merge(b, now)          // errors.Is(err, ephemeral.ErrBadSignature) ...
//	}
//
//	// a newcomer asks for the state:
//	for _, b := range s.Snapshot() { send(b) } // signed; the newcomer Merges them
//
//	s.RemoveAuthor(peerKey)                    // the peer left
//
// Events ([Event]: [EventSet], [EventDelete], [EventExpire], [EventRemove])
// are returned from Merge, Tick and RemoveAuthor and passed, in the same
// order, to every watcher; local Set and Delete report theirs to watchers.
//
// A pubsub validator may call [CheckStateless] (decode, document, signature)
// from several goroutines; the driver then hands the batch to
// [Store.MergeVerified]. [Penalize] says which errors mark the sending peer
// as faulty. The store itself is not safe for concurrent use.
package ephemeral
