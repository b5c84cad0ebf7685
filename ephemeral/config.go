package ephemeral

import (
	"crypto/ed25519"
	"fmt"
	"time"
)

// Config configures a Store. Zero fields take the defaults of DefaultConfig.
// TTL, Heartbeat, MaxSkew and Shared must be the same on every peer of a
// document: they decide which batches are accepted and which entries live.
type Config struct {
	// Doc is the document ID. Batches for another document are refused
	// (ErrWrongDoc). Required.
	Doc string
	// Key is this peer's Ed25519 private key; its public key is the author
	// of every local write. Required.
	Key ed25519.PrivateKey
	// Shared lists the namespaces any author may write (one entry per key,
	// last writer wins). In every other namespace a key belongs to its
	// author: an entry is identified by (namespace, author, key), so a peer
	// can only set or delete its own. Default: none.
	Shared []string
	// Namespaces, when not nil, lists the only namespaces this store keeps
	// from remote authors (a peer that subscribed to some namespaces, as
	// in a filtered topology): a remote batch is still checked whole (its
	// signature covers every update), but its updates in other namespaces
	// are dropped. Local writes are not filtered. Default nil: every
	// namespace.
	Namespaces []string
	// TTL is how long an entry lives after its timestamp: it expires at
	// Time.Wall + TTL unless a heartbeat renews it. Batches whose time is
	// already TTL old are refused as stale (ErrStale). Default 30 s.
	TTL time.Duration
	// Heartbeat is the age at which Tick re-signs and re-sends the local
	// author's live entries with a fresh timestamp. Must be below TTL
	// (TTL - Heartbeat is the delivery slack). Default 15 s.
	Heartbeat time.Duration
	// MaxSkew bounds how far a batch's timestamp may be ahead of the local
	// physical time; later batches are refused (ErrFuture). Default 5 s.
	MaxSkew time.Duration
	// Rate is each remote author's sustained allowance, in updates per
	// second (a batch of n updates costs n tokens). Default 200.
	Rate int
	// Burst is the token bucket size per remote author, in updates: the most
	// one author can send at once after being idle. Default 2048 (at least
	// MaxBatchEntries, so a full batch always fits in a full bucket).
	Burst int
	// MaxEntriesPerAuthor bounds the live entries and tombstones one remote
	// author may hold in the store; a batch that would pass it is refused
	// (ErrTooManyEntries). Default 4096.
	MaxEntriesPerAuthor int
}

// DefaultConfig returns the defaults; set Doc and Key before use.
func DefaultConfig() Config {
	return Config{
		TTL:                 30 * time.Second,
		Heartbeat:           15 * time.Second,
		MaxSkew:             5 * time.Second,
		Rate:                200,
		Burst:               2048,
		MaxEntriesPerAuthor: 4096,
	}
}

// validate fills zero fields with defaults and checks the rest.
func (c *Config) validate() error {
	d := DefaultConfig()
	if c.TTL == 0 {
		c.TTL = d.TTL
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = d.Heartbeat
	}
	if c.MaxSkew == 0 {
		c.MaxSkew = d.MaxSkew
	}
	if c.Rate == 0 {
		c.Rate = d.Rate
	}
	if c.Burst == 0 {
		c.Burst = d.Burst
	}
	if c.MaxEntriesPerAuthor == 0 {
		c.MaxEntriesPerAuthor = d.MaxEntriesPerAuthor
	}
	switch {
	case len(c.Key) != ed25519.PrivateKeySize:
		return fmt.Errorf("ephemeral: config: Key is %d bytes, want %d", len(c.Key), ed25519.PrivateKeySize)
	case len(c.Doc) > MaxDocIDLen:
		return fmt.Errorf("ephemeral: config: Doc is %d bytes, limit %d", len(c.Doc), MaxDocIDLen)
	case c.TTL < time.Millisecond:
		return fmt.Errorf("ephemeral: config: TTL %v below 1ms", c.TTL)
	case c.Heartbeat < 0 || c.Heartbeat >= c.TTL:
		return fmt.Errorf("ephemeral: config: Heartbeat %v must be in (0, TTL %v)", c.Heartbeat, c.TTL)
	case c.MaxSkew < 0:
		return fmt.Errorf("ephemeral: config: negative MaxSkew %v", c.MaxSkew)
	case c.Rate < 0 || c.Burst < 0 || c.MaxEntriesPerAuthor < 0:
		return fmt.Errorf("ephemeral: config: negative Rate, Burst or MaxEntriesPerAuthor")
	}
	for _, ns := range c.Shared {
		if err := checkName("namespace", ns, MaxNamespaceLen); err != nil {
			return fmt.Errorf("ephemeral: config: shared %w", err)
		}
	}
	return nil
}
