package bft

import (
	"time"

	"github.com/convergenode/convergenode/crdt"
)

// GateConfig configures a [Gate]. Zero fields take their defaults (see
// [DefaultGateConfig]). Writers is part of the protocol for its document
// (every replica must use the same set); the other fields are local
// resource limits and may differ between nodes without breaking
// convergence (a change refused by a full buffer is fetched again later).
type GateConfig struct {
	// Writers is the genesis writer set. Empty: an open document, anyone
	// may write. Non-empty: only writers may write, and the set changes
	// through the _writers table ([WritersTable]).
	Writers []crdt.Author

	// BufferTTL is how long a change may wait in the causal buffer for its
	// parents. Default 2 minutes.
	BufferTTL time.Duration

	// MaxBufferCount and MaxBufferBytes bound the whole causal buffer.
	// Bytes are charged as 2*len(encoded change) + 256 per change (the
	// bytes, the decoded change and bookkeeping). When a change from a
	// peer within its own quota does not fit, the oldest changes of the
	// peer holding the most bytes are evicted first; if that peer is the
	// sender, the new change is refused instead. Defaults 16384 and 64 MiB.
	MaxBufferCount int
	MaxBufferBytes int

	// MaxPeerCount and MaxPeerBytes bound what one sending peer may have
	// waiting; beyond it the peer's new changes are refused
	// (RejectBufferFull). Defaults 4096 and 16 MiB.
	MaxPeerCount int
	MaxPeerBytes int

	// MaxAuthorCount and MaxAuthorBytes bound what one author may have
	// waiting, whoever forwarded it. Defaults 4096 and 16 MiB.
	MaxAuthorCount int
	MaxAuthorBytes int

	// MaxProofsPerAuthor bounds the equivocation proofs kept (and
	// reported) per author; one proof is enough to convict, more help
	// only diagnosis. Default 4.
	MaxProofsPerAuthor int

	// SigCache, if not nil, is used for the signature checks the gate
	// makes itself (ReceiveBytes, and Receive of an envelope not yet
	// checked). It may be shared with other gates and with pubsub
	// validators ([CheckStatelessCached]); it never changes a decision.
	// Default nil: every check runs ed25519.Verify.
	SigCache *SigCache
}

// DefaultGateConfig returns the default configuration: an open document
// and the default limits.
func DefaultGateConfig() GateConfig {
	return GateConfig{
		BufferTTL:          2 * time.Minute,
		MaxBufferCount:     16384,
		MaxBufferBytes:     64 << 20,
		MaxPeerCount:       4096,
		MaxPeerBytes:       16 << 20,
		MaxAuthorCount:     4096,
		MaxAuthorBytes:     16 << 20,
		MaxProofsPerAuthor: 4,
	}
}

// withDefaults fills zero (or negative) fields with the defaults.
func (c GateConfig) withDefaults() GateConfig {
	d := DefaultGateConfig()
	fill := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	if c.BufferTTL <= 0 {
		c.BufferTTL = d.BufferTTL
	}
	fill(&c.MaxBufferCount, d.MaxBufferCount)
	fill(&c.MaxBufferBytes, d.MaxBufferBytes)
	fill(&c.MaxPeerCount, d.MaxPeerCount)
	fill(&c.MaxPeerBytes, d.MaxPeerBytes)
	fill(&c.MaxAuthorCount, d.MaxAuthorCount)
	fill(&c.MaxAuthorBytes, d.MaxAuthorBytes)
	fill(&c.MaxProofsPerAuthor, d.MaxProofsPerAuthor)
	c.Writers = append([]crdt.Author(nil), c.Writers...)
	return c
}
