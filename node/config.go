package node

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"

	"github.com/convergenode/convergenode/replica"
	"github.com/libp2p/go-libp2p/core/host"
	"time"
)

// Config configures a Node. The zero value is not valid; start from
// DefaultConfig (a LAN node) or DefaultTestConfig (loopback only, no
// discovery, in-memory store) and override fields.
type Config struct {
	// Key is the node's Ed25519 private key: its libp2p identity and the
	// key that signs its changes. Nil generates a fresh key (an ephemeral
	// identity).
	Key ed25519.PrivateKey

	// DataDir is the Pebble store's directory. Empty keeps everything in
	// memory (see Storage).
	DataDir string
	// Storage overrides the store (DataDir is then unused). The node
	// closes it on Close.
	Storage Storage

	// Listen are the libp2p listen multiaddrs (TCP and QUIC). Default:
	// all interfaces on port 4101. Empty (after DefaultConfig) disables
	// listening; the node can still dial out.
	Listen []string
	// Bootstrap are multiaddrs (with /p2p/<id>) of peers dialled at start
	// and redialled every BootstrapInterval while disconnected.
	Bootstrap []string
	// BootstrapInterval is how often lost bootstrap peers are redialled.
	// Default 5s.
	BootstrapInterval time.Duration

	// MDNS enables local-network discovery. Default true in DefaultConfig.
	MDNS bool
	// DHT enables the Kademlia DHT and a rendezvous per document. Default
	// false (needs bootstrap peers on the Internet).
	DHT bool
	// NAT enables AutoNAT, port mapping, hole punching and the relay
	// client (through Bootstrap peers acting as static relays).
	NAT bool
	// PreferQUICOnLAN dials a peer's private and loopback QUIC addresses
	// before its TCP ones, as go-libp2p does by default. The node's default
	// (false) dials TCP first on a LAN, where it costs less CPU and gives a
	// lower tail latency than QUIC; public addresses are dialled QUIC first
	// either way. It applies to the host the node builds, not to
	// Config.Host.
	PreferQUICOnLAN bool

	// APIAddr is the local HTTP API listener (documents, presence, peers,
	// alerts, health, WebSocket feed, sync push/pull, /metrics,
	// /debug/pprof). Empty disables it. Default "127.0.0.1:4102". A
	// non-loopback address is refused unless APIAllowRemote is set.
	APIAddr string
	// APIAllowRemote allows APIAddr on a non-loopback interface.
	APIAllowRemote bool
	// MaxBodyBytes bounds an API request body. Default 4 MiB.
	MaxBodyBytes int64

	// Docs are joined at start. Other documents are joined on first use
	// (Node.Doc, the API).
	Docs []string

	// GossipD is gossipsub's mesh degree D: besides publishing its own
	// changes to every peer of the document (flood publish), a node
	// forwards each change it receives to its D mesh peers, so every node
	// receives about D copies of each change, and every copy costs a
	// transport write, a read and a trip through gossipsub's event loop on
	// both ends. Default DefaultGossipD (4; gossipsub's own default is 6);
	// at least 2. Reconciliation, not the mesh, is what makes delivery
	// certain.
	GossipD int

	// TickInterval is how often every replica gets Tick(now): timers,
	// batched presence, periodic reconciliation. Default 50ms.
	TickInterval time.Duration
	// MaxFrame bounds one sync stream frame. Default 16 MiB.
	MaxFrame int

	// TrustLog replays the store on restart without re-checking the
	// changes' signatures (each ID is still checked against its bytes, so
	// corruption is caught): several times faster on large logs, at the
	// price of trusting the local disk as much as the key file beside it.
	// Equivocations already in the log raise no new proof after a restart
	// (they were raised when first seen). Default false; the CLI's default
	// configuration turns it on (trust_log).
	TrustLog bool

	// SnapshotEvery is how many ops a document applies (local and remote)
	// between two snapshots of its state written to the store; a snapshot
	// is also written on a clean Close. On restart the node loads the
	// snapshot and replays only the log entries it does not cover. 0 means
	// DefaultSnapshotEvery; negative disables snapshots (every restart
	// replays the whole log). Taking a snapshot pauses the document's loop
	// (not its readers) for a time that grows with the number of rows.
	SnapshotEvery int

	// Replica overrides the replica's protocol settings (sync interval,
	// batch sizes, gate quotas); Doc, Key and Flush are set by the node.
	// Nil uses replica.DefaultConfig(). Its SigCache, if set, becomes the
	// node's signature cache (validators included); otherwise the node
	// makes its own, shared by its validators and replicas.
	Replica *replica.Config

	// Logger receives structured logs. Nil discards them.
	Logger *slog.Logger

	// Host, if set, is the libp2p host the node runs on instead of one it
	// builds (see hooks.go): Listen, NAT and the transports are then unused.
	// Its peer ID must be Key's. The node closes it on Close.
	Host host.Host
}

// DefaultGossipD is the default of Config.GossipD. Measured on 10 nodes in
// one group (BenchmarkNodeLatency10x1000, docs/benchmarks.md): gossipsub's
// D = 6 sent each change 48-62 times (9 of them needed), D = 4 33-45
// times; D = 4 still keeps one outbound-only mesh peer (Dout = 1) against
// eclipse attempts, which D = 3 would not.
const DefaultGossipD = 4

// DefaultConfig returns the configuration of a LAN node: listens on all
// interfaces, mDNS and NAT traversal on, Pebble store in dataDir.
func DefaultConfig(dataDir string) Config {
	return Config{
		DataDir:           dataDir,
		Listen:            []string{"/ip4/0.0.0.0/tcp/4101", "/ip4/0.0.0.0/udp/4101/quic-v1"},
		BootstrapInterval: 5 * time.Second,
		MDNS:              true,
		NAT:               true,
		APIAddr:           "127.0.0.1:4102",
		MaxBodyBytes:      4 << 20,
		TickInterval:      50 * time.Millisecond,
		MaxFrame:          16 << 20,
	}
}

// DefaultTestConfig returns DefaultConfig changed for tests: loopback
// only on random ports, no mDNS/DHT/NAT, an in-memory store, no API.
func DefaultTestConfig() Config {
	c := DefaultConfig("")
	c.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	c.MDNS, c.DHT, c.NAT = false, false, false
	c.APIAddr = ""
	c.BootstrapInterval = time.Second
	return c
}

// validate fills zero values and reports bad settings.
func (c *Config) validate() error {
	if c.Key == nil {
		k, err := GenerateKey()
		if err != nil {
			return err
		}
		c.Key = k
	}
	if len(c.Key) != ed25519.PrivateKeySize {
		return errors.New("node: Config.Key is not an Ed25519 private key")
	}
	if c.BootstrapInterval <= 0 {
		c.BootstrapInterval = 5 * time.Second
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 4 << 20
	}
	if c.GossipD == 0 {
		c.GossipD = DefaultGossipD
	}
	if c.GossipD < 2 {
		return fmt.Errorf("node: Config.GossipD %d is below 2", c.GossipD)
	}
	if c.TickInterval <= 0 {
		c.TickInterval = 50 * time.Millisecond
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = 16 << 20
	}
	if c.MaxFrame < replica.MaxMessageSize+1024 {
		return fmt.Errorf("node: Config.MaxFrame %d is below the largest replica message (%d bytes)", c.MaxFrame, replica.MaxMessageSize)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}
