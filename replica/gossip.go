package replica

import (
	"lukechampine.com/blake3"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/ephemeral"
)

// ValidateGossip is the stateless (stage 1) check of a message received on
// one of document docID's gossip topics, for a pubsub validator. It is
// pure and safe for concurrent use.
//
// It returns Reject when every honest node would refuse the message: it
// does not decode, its type does not belong on the topic, or its content
// fails stage 1 (a change's size, canonical encoding, document, ID or
// signature; a proof that does not verify or names another document; a
// presence batch that does not decode, names another document or has a bad
// signature). It returns Ignore for a message of another wire version (a
// newer peer; not a fault) and Accept otherwise. Stateful checks
// (duplicates, missing parents, causal validity, presence freshness and
// rate limits) happen in Step and never make a sender Reject-worthy.
func ValidateGossip(docID string, topic Topic, data []byte) Verdict {
	return ValidateGossipCached(docID, topic, data, nil)
}

// ValidateGossipCached is [ValidateGossip] with change signatures (of a
// change, or of the two forks of a proof) verified through cache
// ([bft.SigCache]; nil means no cache). It returns the same verdict as
// ValidateGossip for every input. Pass the cache the document's replica
// uses ([Config.SigCache]): the replica's own check of an accepted message
// in Step is then a cache hit instead of a second Ed25519 verification.
// Safe for concurrent use.
func ValidateGossipCached(docID string, topic Topic, data []byte, cache *bft.SigCache) Verdict {
	return ValidateGossipShared(docID, topic, data, cache, nil)
}

// ValidateGossipShared is [ValidateGossipCached] that also keeps an
// accepted change's checked envelope in envs ([bft.EnvCache]; nil: none).
// Pass the cache the document's replica uses ([Config.EnvCache]): Step then
// takes the envelope the validator decoded and hashed instead of doing both
// again. It returns the same verdict as ValidateGossip for every input.
// Safe for concurrent use.
func ValidateGossipShared(docID string, topic Topic, data []byte, cache *bft.SigCache, envs *bft.EnvCache) Verdict {
	if len(data) >= 1 && data[0] != WireVersion {
		return Ignore
	}
	if topic == TopicChanges {
		// The common case, decoded in place (as Step does).
		it, ok := changeItem(data)
		if !ok {
			return Reject
		}
		if _, rej := envs.Check(docID, it, cache); rej != nil {
			return Reject
		}
		return Accept
	}
	m, err := decodeMessageView(data) // nothing below keeps an item
	if err != nil {
		return Reject
	}
	switch topic {
	case TopicEvidence:
		if m.Type != MsgEvidence {
			return Reject
		}
		pr, err := bft.DecodeProof(m.Items[0])
		if err != nil || pr.Doc() != docID || pr.VerifyCached(cache) != nil {
			return Reject
		}
	case TopicEphemeral:
		if m.Type != MsgEphemeral {
			return Reject
		}
		b, err := ephemeral.DecodeBatch(m.Items[0])
		if err != nil || b.Doc != docID || b.Verify() != nil {
			return Reject
		}
	default:
		return Ignore
	}
	return Accept
}

// GossipID returns the pubsub message ID of a gossip message. For a change
// it is 40 bytes: the change ID (32 bytes, binary) followed by the first 8
// bytes of a BLAKE3 hash of the whole envelope (claimed ID, change bytes
// and signature). Binary rather than hex halves what gossipsub keeps and
// sends per message ID (seen cache, message cache, IHAVE and IWANT). So
// one change is one pubsub message whoever forwards it, yet a tampered or
// forged copy claiming an honest change's ID gets an ID of its own: pubsub
// marks an ID seen before validating, and an ID of the claim alone would
// let a fast attacker shadow the genuine change. It returns "" for other
// messages (the driver then uses its default, a hash of the data).
func GossipID(data []byte) string {
	if PeekType(data) != MsgChange || len(data) < 3 {
		return ""
	}
	// MsgChange body: uvarint length, then the envelope.
	off := 2
	for off < len(data) && data[off]&0x80 != 0 {
		off++
	}
	off++
	if off > len(data) {
		return ""
	}
	env := data[off:]
	id, ok := bft.PeekID(env)
	if !ok {
		return ""
	}
	sum := blake3.Sum256(env)
	var b [32 + 8]byte
	copy(b[:32], id[:])
	copy(b[32:], sum[:8])
	return string(b[:])
}
