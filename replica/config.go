package replica

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/ephemeral"
)

// FlushPolicy says when proposed ops are packed into a signed change.
type FlushPolicy uint8

// The flush policies.
const (
	// FlushOnTick packs every op proposed since the previous Tick into one
	// change at the next Tick: one signature per tick however many writes.
	FlushOnTick FlushPolicy = iota
	// FlushOnReady packs the ops proposed since the previous Ready into one
	// change when Ready is called: lower latency, one change per driver
	// loop iteration.
	FlushOnReady
)

// Config configures a Replica. Zero fields take the value of DefaultConfig
// (New fills them in); Doc and Key are required.
type Config struct {
	// Doc is the document ID. Required.
	Doc string
	// Key is the local author's Ed25519 private key: it signs local changes
	// and ephemeral batches. Required.
	Key ed25519.PrivateKey
	// Rand is the only source of randomness (session numbers, Bloom filter
	// seeds, the random peer of periodic syncs). Pass a seeded source for
	// reproducible runs. Default: a PCG seeded from the public key.
	Rand *rand.Rand

	// Gate configures the BFT gate (causal buffer quotas and TTL, writer
	// set). Default: bft.DefaultGateConfig().
	Gate bft.GateConfig
	// Ephemeral configures the presence store; its Doc and Key are set from
	// this Config. Default: ephemeral.DefaultConfig().
	Ephemeral ephemeral.Config

	// SigCache, if not nil, remembers successful Ed25519 verifications of
	// changes (keyed by author key, change ID and signature; see
	// bft.SigCache) for Step, Restore and the gate. Share one cache
	// between the replicas of a process and the pubsub validators that
	// call [ValidateGossipCached] with it, so a gossiped change is
	// verified once, not twice. It never changes what is accepted, only
	// what it costs; it is safe for concurrent use, so sharing it does not
	// break the replica's determinism. It replaces Gate.SigCache (a
	// non-nil Gate.SigCache is used when this is nil). Default nil: no
	// cache.
	SigCache *bft.SigCache
	// EnvCache, if not nil, shares checked envelopes (the bytes and the
	// decoded change, see bft.EnvCache) between the replicas of a process:
	// Step decodes a change's bytes once per cache, not once per replica,
	// and every replica that accepts it keeps the same copy. It never
	// changes what is accepted; it is safe for concurrent use. A simulator
	// running many replicas of one document holds each change once.
	// Default nil: every replica decodes and keeps its own copy.
	EnvCache *bft.EnvCache

	// TrustLog makes Restore skip the Ed25519 check of the durable log's
	// entries (it still checks every ID against its bytes, so corruption
	// is caught): restarts are several times faster, at the price of
	// trusting the local disk, and equivocations already in the log yield
	// no proof after the restart (they were raised before it). Restore
	// trusts the log only into an empty replica. Default false.
	TrustLog bool

	// Flush says when proposed ops become a signed change (group commit).
	// Default FlushOnTick.
	Flush FlushPolicy
	// MaxOpsPerChange caps the ops in one local change; a group larger than
	// this is split into several changes. Default crdt.MaxOps (4096).
	MaxOpsPerChange int
	// MaxChangeBytes caps the estimated encoded size of one local change, in
	// bytes; a larger group is split. Default 512 KiB (crdt.MaxChangeSize/2).
	MaxChangeBytes int

	// SyncInterval is how often, in Tick time, the replica starts a
	// reconciliation with one up peer chosen at random with Rand (each gap
	// drawn from [0.5, 1.5) × SyncInterval; peers already in a session are
	// skipped, peers in back-off too unless all are). Negative disables it.
	// Default 10 s.
	SyncInterval time.Duration
	// SyncTimeout bounds a reconciliation session and an outstanding
	// request for missing changes, in Tick time: a session not finished
	// this long after its last progress fails. Default 10 s.
	SyncTimeout time.Duration
	// SyncBackoff is how long, after a failed session, periodic syncs skip
	// the peer: SyncBackoff × 2^(failures-1), at most 64 × SyncBackoff.
	// Default 5 s.
	SyncBackoff time.Duration
	// MinHelloGap paces the sessions a peer may open with us, in Tick time:
	// a peer may open 4 back to back, then one per MinHelloGap. Hellos
	// beyond that are ignored (a flood costs one decode each), and 8
	// ignored in a row raise a hello-flood penalty alert. Default 200 ms.
	MinHelloGap time.Duration
	// MaxBatchChanges caps the changes in one reconciliation batch message.
	// Default 512.
	MaxBatchChanges int
	// MaxBatchBytes caps the envelope bytes in one batch message (a single
	// larger change still travels alone). Default 256 KiB.
	MaxBatchBytes int
	// SyncWindow is how many batches of one stream may be unacknowledged;
	// the sender waits for acks beyond it, so a catch-up of any size holds
	// at most SyncWindow × MaxBatchBytes in flight. Default 8.
	SyncWindow int
	// MaxNeedsRounds caps the needs → changes rounds in one session after
	// the Bloom step (each round asks for the changes still missing). A
	// session that needs more fails with a non-service alert. Default 16.
	MaxNeedsRounds int
	// BloomFPRate is the target false-positive rate of the Bloom filter in
	// a hello. Each false positive costs about one extra round trip.
	// Default 0.001 (about 1.8 bytes per change).
	BloomFPRate float64
	// MaxBloomEntries caps the changes a hello's Bloom filter covers (the
	// newest since the last sync); older ones are then sent even if the
	// peer has them. Default 200,000 (about 360 KiB at 0.1%).
	MaxBloomEntries int
	// ServeRate is the sustained rate, in bytes per second of Tick time, at
	// which the replica sends one peer changes (session streams and needs
	// answers); ServeBurst is the bucket size. Beyond it a stream waits for
	// the next Tick and a needs answer is cut short (an honest peer asks
	// again), so a peer asking for the history over and over gets it at
	// ServeRate. Defaults 16 MiB/s and 8 MiB (at least MaxBatchBytes).
	ServeRate  int
	ServeBurst int
	// MaxOutstandingNeeds caps the change IDs the replica tracks as asked
	// for from one peer outside a session, and the missing parents it
	// tracks per session. Default 4096.
	MaxOutstandingNeeds int

	// RegossipRate caps, per second of Tick time (a bucket of one
	// second's worth), the changes the replica publishes again on the
	// changes topic because they reached it by reconciliation rather than
	// gossip: its gossip neighbours probably missed them too. A replica
	// catching up after being away (new, restarted, or back from having
	// no peer) does not re-gossip until a session completes. Beyond the
	// rate, changes are left to reconciliation. Negative disables
	// re-gossip. Default 256.
	RegossipRate int
	// RegossipDelay: a change to re-gossip waits a random delay in
	// [0, RegossipDelay) of Tick time, and is not published if it arrives
	// by gossip meanwhile (another replica re-gossiped it first). Negative
	// publishes at once. Default 1 s.
	RegossipDelay time.Duration

	// NoEventRows leaves the Rows of Ready.Applied's events empty
	// (crdt.DocOptions.NoEventRows): for a driver that reads only which
	// changes were applied, such as the simulator. Default false.
	NoEventRows bool

	// ExpectChanges, ExpectAuthors and ExpectRows are size hints: about
	// how many changes, from how many authors, the replica will hold, and
	// how many rows each table will have. New sizes the per-change
	// structures (the graph's nodes, parents and index, the gate's author
	// index, the held envelopes, each table's row index) for them up front
	// instead of growing them as changes arrive: a program holding
	// thousands of replicas of a known workload, such as the simulator,
	// saves the copies and the slack of growing each one. Beyond the hint
	// they grow as usual. Hints never change a result. Each is at most
	// MaxExpect. Default 0: no hint.
	ExpectChanges int
	ExpectAuthors int
	ExpectRows    int
}

// DefaultConfig returns the default configuration; set Doc and Key (and
// normally Rand) before use.
func DefaultConfig() Config {
	return Config{
		Gate:                bft.DefaultGateConfig(),
		Ephemeral:           ephemeral.DefaultConfig(),
		Flush:               FlushOnTick,
		MaxOpsPerChange:     crdt.MaxOps,
		MaxChangeBytes:      crdt.MaxChangeSize / 2,
		SyncInterval:        10 * time.Second,
		SyncTimeout:         10 * time.Second,
		SyncBackoff:         5 * time.Second,
		MinHelloGap:         200 * time.Millisecond,
		MaxBatchChanges:     512,
		MaxBatchBytes:       256 << 10,
		SyncWindow:          8,
		MaxNeedsRounds:      16,
		BloomFPRate:         0.001,
		MaxBloomEntries:     200_000,
		ServeRate:           16 << 20,
		ServeBurst:          8 << 20,
		MaxOutstandingNeeds: 4096,
		RegossipRate:        256,
		RegossipDelay:       time.Second,
	}
}

// MaxExpect bounds the size hints (Config.ExpectChanges and the others),
// so that a mistyped hint fails New instead of allocating gigabytes.
const MaxExpect = 1 << 24

// ErrConfig is wrapped by New's configuration errors.
var ErrConfig = errors.New("replica: bad config")

func (c *Config) validate() error {
	if len(c.Key) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: Key is %d bytes, want %d", ErrConfig, len(c.Key), ed25519.PrivateKeySize)
	}
	if len(c.Doc) > crdt.MaxDocIDLen {
		return fmt.Errorf("%w: Doc is %d bytes, limit %d", ErrConfig, len(c.Doc), crdt.MaxDocIDLen)
	}
	for _, h := range []struct {
		name string
		v    int
	}{{"ExpectChanges", c.ExpectChanges}, {"ExpectAuthors", c.ExpectAuthors}, {"ExpectRows", c.ExpectRows}} {
		if h.v < 0 || h.v > MaxExpect {
			return fmt.Errorf("%w: %s is %d, want 0 to %d", ErrConfig, h.name, h.v, MaxExpect)
		}
	}
	d := DefaultConfig()
	if c.Rand == nil {
		var s [4]uint64
		for i := range s {
			for j := 0; j < 8; j++ {
				s[i] = s[i]<<8 | uint64(c.Key[32+i*8+j])
			}
		}
		c.Rand = rand.New(rand.NewPCG(s[0]^s[2], s[1]^s[3]))
	}
	fillInt := func(p *int, def int) {
		if *p <= 0 {
			*p = def
		}
	}
	fillDur := func(p *time.Duration, def time.Duration) {
		if *p == 0 {
			*p = def
		}
	}
	fillInt(&c.MaxOpsPerChange, d.MaxOpsPerChange)
	c.MaxOpsPerChange = min(c.MaxOpsPerChange, crdt.MaxOps)
	fillInt(&c.MaxChangeBytes, d.MaxChangeBytes)
	c.MaxChangeBytes = min(c.MaxChangeBytes, crdt.MaxChangeSize/2)
	fillDur(&c.SyncInterval, d.SyncInterval)
	fillDur(&c.SyncTimeout, d.SyncTimeout)
	fillDur(&c.SyncBackoff, d.SyncBackoff)
	fillDur(&c.MinHelloGap, d.MinHelloGap)
	fillInt(&c.MaxBatchChanges, d.MaxBatchChanges)
	c.MaxBatchChanges = min(c.MaxBatchChanges, MaxMsgItems)
	fillInt(&c.MaxBatchBytes, d.MaxBatchBytes)
	c.MaxBatchBytes = min(c.MaxBatchBytes, MaxMessageSize/2)
	fillInt(&c.SyncWindow, d.SyncWindow)
	fillInt(&c.MaxNeedsRounds, d.MaxNeedsRounds)
	if !(c.BloomFPRate > 0 && c.BloomFPRate < 1) {
		c.BloomFPRate = d.BloomFPRate
	}
	fillInt(&c.MaxBloomEntries, d.MaxBloomEntries)
	for c.MaxBloomEntries > 1 && bloomSizeBytes(c.MaxBloomEntries, c.BloomFPRate) > MaxBloomBytes {
		c.MaxBloomEntries /= 2
	}
	fillInt(&c.ServeRate, d.ServeRate)
	fillInt(&c.ServeBurst, d.ServeBurst)
	c.ServeBurst = max(c.ServeBurst, c.MaxBatchBytes)
	fillInt(&c.MaxOutstandingNeeds, d.MaxOutstandingNeeds)
	if c.RegossipRate == 0 {
		c.RegossipRate = d.RegossipRate
	}
	fillDur(&c.RegossipDelay, d.RegossipDelay)
	if c.SigCache == nil {
		c.SigCache = c.Gate.SigCache
	}
	c.Gate.SigCache = c.SigCache
	c.Ephemeral.Doc = c.Doc
	c.Ephemeral.Key = c.Key
	return nil
}
