package replica

import "github.com/convergenode/convergenode/crdt"

// PeerLeft removes at once every presence entry written by author, as when
// the peer with that key has left the document, instead of waiting for the
// entries' TTL. The removals appear in the next Ready's Presence. Batches
// the author sent before are refused as replays; a later batch (its next
// heartbeat, if it is still reachable through other peers) brings its
// entries back. The replica's own entries are never removed.
func (r *Replica) PeerLeft(author crdt.Author) {
	r.wake()
	r.changingEph().RemoveAuthor(author)
}
