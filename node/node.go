package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// ErrClosed is returned by a Node or Doc after Close.
var ErrNodeClosed = errors.New("node: closed")

// maxAlerts is how many alerts a node keeps for the API.
const maxAlerts = 1000

// Node is a convergenode peer: a libp2p host, gossipsub, the sync stream
// protocol, a store, discovery and (optionally) the local API, driving one
// replica per joined document. All methods are safe for concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	core    coreFuncs
	caches  checkCaches // verified signatures and checked envelopes, shared by validators and replicas
	host    host.Host
	ps      *pubsub.PubSub
	dht     *dht.IpfsDHT
	dhtDisc *drouting.RoutingDiscovery
	store   Storage
	reg     *prometheus.Registry
	met     *metrics
	sync    *streams
	start   time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	api   *http.Server
	apiLn net.Listener

	openMu    sync.Mutex // serialises document opens with each other and Close
	mu        sync.Mutex
	docs      map[string]*Doc
	alerts    []Alert
	penalty   map[peer.ID]*penalty // app-specific score, from engine alerts
	scores    map[peer.ID]float64  // last gossipsub scores
	closed    bool
	closeErr  error
	closeOnce sync.Once
}

// New starts a node: opens the store, starts the libp2p host, gossipsub,
// discovery and the API, and joins cfg.Docs and every document found in
// the store (replaying its log). ctx bounds only the start; use Close to
// stop the node.
func New(ctx context.Context, cfg Config) (*Node, error) {
	return newNode(ctx, cfg, replicaCore)
}

// sigCacheSize bounds the node's verified-signature cache (about 150 bytes
// per entry, so ≈ 5 MB). An entry only has to live from a change's
// gossipsub validation to its Step in the document's loop (the
// subscription buffer and the inbox hold about 5,000 messages per
// document); a miss only costs a second verification.
const sigCacheSize = 1 << 15

// envCacheSize bounds the node's checked-envelope cache. An entry only has
// to live from a change's gossipsub validation to its Step (milliseconds
// at most: the document's loop drains its inbox continuously), and unlike
// the signature cache it holds decoded changes that the collector scans,
// so it is kept small; a miss only costs a second decode and hash.
const envCacheSize = 1 << 11

func newNode(ctx context.Context, cfg Config, core coreFuncs) (_ *Node, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:     cfg,
		log:     cfg.Logger,
		core:    core,
		docs:    map[string]*Doc{},
		penalty: map[peer.ID]*penalty{},
		scores:  map[peer.ID]float64{},
		start:   time.Now(),
	}
	if cfg.Replica != nil && cfg.Replica.SigCache != nil {
		n.caches.sigs = cfg.Replica.SigCache
	} else {
		n.caches.sigs = bft.NewSigCache(sigCacheSize)
	}
	if cfg.Replica != nil && cfg.Replica.EnvCache != nil {
		n.caches.envs = cfg.Replica.EnvCache
	} else {
		n.caches.envs = bft.NewEnvCache(envCacheSize)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	n.reg = prometheus.NewRegistry()
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.met = newMetrics(n.reg)

	switch {
	case cfg.Storage != nil:
		n.store = cfg.Storage
	case cfg.DataDir != "":
		if n.store, err = OpenPebble(cfg.DataDir, nil); err != nil {
			return nil, err
		}
	default:
		n.store = NewMemStorage()
	}
	if err := n.startHost(); err != nil {
		return nil, err
	}
	if err := n.startPubsub(); err != nil {
		return nil, err
	}
	n.sync = newStreams(n)
	n.host.SetStreamHandler(SyncProtocol, n.sync.handle)
	if err := n.startDiscovery(ctx); err != nil {
		return nil, err
	}
	if cfg.APIAddr != "" {
		if err := n.startAPI(); err != nil {
			return nil, err
		}
	}
	stored, err := n.store.Docs()
	if err != nil {
		return nil, fmt.Errorf("node: list stored documents: %w", err)
	}
	for _, id := range append(stored, cfg.Docs...) {
		if _, err := n.Doc(ctx, id); err != nil {
			return nil, err
		}
	}
	n.log.Info("node started", "peer", n.host.ID(), "addrs", n.Addrs())
	return n, nil
}

func (n *Node) startHost() error {
	if n.cfg.Host != nil {
		return n.useHost(n.cfg.Host)
	}
	lk, err := libp2pKey(n.cfg.Key)
	if err != nil {
		return err
	}
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()))
	if err != nil {
		return fmt.Errorf("node: resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(64, 256, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return fmt.Errorf("node: connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(lk),
		libp2p.ListenAddrStrings(n.cfg.Listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(tls.ID, tls.New),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.PrometheusRegisterer(n.reg),
		libp2p.UserAgent("convergenode/0.1"),
	}
	if !n.cfg.PreferQUICOnLAN {
		opts = append(opts, libp2p.SwarmOpts(swarm.WithDialRanker(lanTCPFirst)))
	}
	if n.cfg.NAT {
		opts = append(opts, libp2p.NATPortMap(), libp2p.EnableHolePunching(), libp2p.EnableNATService(), libp2p.EnableRelay())
		if relays, err := parseAddrInfos(n.cfg.Bootstrap); err == nil && len(relays) > 0 {
			opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(relays))
		}
	} else {
		opts = append(opts, libp2p.DisableRelay())
	}
	if len(n.cfg.Listen) == 0 {
		opts = append(opts, libp2p.NoListenAddrs)
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return fmt.Errorf("node: libp2p host: %w", err)
	}
	n.host = h
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			n.log.Debug("peer connected", "peer", c.RemotePeer(), "addr", c.RemoteMultiaddr())
		},
		DisconnectedF: func(_ network.Network, c network.Conn) {
			n.log.Debug("peer disconnected", "peer", c.RemotePeer())
		},
	})
	return nil
}

// ID returns the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Host returns the node's libp2p host, for embedders that run their own
// protocols beside convergenode's.
func (n *Node) Host() host.Host { return n.host }

// Addrs returns the node's listen addresses with its /p2p/ suffix, sorted.
func (n *Node) Addrs() []string {
	var out []string
	for _, a := range n.host.Addrs() {
		out = append(out, a.String()+"/p2p/"+n.host.ID().String())
	}
	slices.Sort(out)
	return out
}

// APIAddr returns the local API's address ("host:port"), or "" if the API
// is off.
func (n *Node) APIAddr() string {
	if n.apiLn == nil {
		return ""
	}
	return n.apiLn.Addr().String()
}

// Doc joins the document id (if not joined yet: replays its stored log,
// subscribes to its topics, starts its loop) and returns its handle.
func (n *Node) Doc(ctx context.Context, id string) (*Doc, error) {
	if id == "" || len(id) > crdt.MaxDocIDLen {
		return nil, fmt.Errorf("node: bad document ID %q", id)
	}
	if d := n.lookupDoc(id); d != nil {
		return d, nil
	}
	// Opening replays the log, which can take a while: it holds openMu
	// (one open at a time, and Close waits for it), not mu.
	n.openMu.Lock()
	defer n.openMu.Unlock()
	n.mu.Lock()
	closed, d := n.closed, n.docs[id]
	n.mu.Unlock()
	if closed {
		return nil, ErrNodeClosed
	}
	if d != nil {
		return d, nil
	}
	d, err := n.openDoc(ctx, id)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.docs[id] = d
	n.mu.Unlock()
	return d, nil
}

// lookupDoc returns a joined document or nil.
func (n *Node) lookupDoc(id string) *Doc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.docs[id]
}

// DocIDs returns the joined documents, sorted.
func (n *Node) DocIDs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for id := range n.docs {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Presence returns the ephemeral-state handle of document id, joining it
// if needed.
func (n *Node) Presence(id string) (*Presence, error) {
	d, err := n.Doc(context.Background(), id)
	if err != nil {
		return nil, err
	}
	return &Presence{d: d}, nil
}

// handleAlert records an alert from an engine and applies its penalty to
// the peer's app-specific gossipsub score.
func (n *Node) handleAlert(a Alert) {
	n.met.alerts.WithLabelValues(a.Reason).Inc()
	n.log.Warn("alert", "doc", a.Doc, "peer", a.Peer, "author", a.Author, "reason", a.Reason, "penalize", a.Penalize)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.alerts = append(n.alerts, a)
	if len(n.alerts) > maxAlerts {
		n.alerts = slices.Delete(n.alerts, 0, len(n.alerts)-maxAlerts)
	}
	if a.Penalize && a.Peer != "" {
		if p, err := peer.Decode(a.Peer); err == nil {
			n.penaltyLocked(p).add(time.Now(), -penaltyStep, false)
		}
	}
	if a.Kind == "equivocation" && a.Author != "" {
		// The author's key is its peer identity: score the equivocator
		// itself down, whoever relayed the proof.
		if p, err := authorPeer(a.Author); err == nil {
			n.penaltyLocked(p).add(time.Now(), -penaltyStep, true)
		}
	}
}

// Alerts returns the recent alerts, oldest first.
func (n *Node) Alerts() []Alert {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.alerts)
}

// PeerInfo describes a connected peer.
type PeerInfo struct {
	ID      string   `json:"id"`
	Addrs   []string `json:"addrs"`
	Score   float64  `json:"score"`   // gossipsub score (last inspection)
	Penalty float64  `json:"penalty"` // app-specific part of the score
	Docs    []string `json:"docs"`    // joined documents the peer subscribes to
}

// Peers returns the connected peers, sorted by ID.
func (n *Node) Peers() []PeerInfo {
	ids := n.host.Network().Peers()
	docs := n.DocIDs()
	byPeer := map[peer.ID][]string{}
	for _, d := range docs {
		for _, p := range n.ps.ListPeers(topicName(d, topicChanges)) {
			byPeer[p] = append(byPeer[p], d)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]PeerInfo, 0, len(ids))
	for _, p := range ids {
		pi := PeerInfo{ID: p.String(), Score: n.scores[p], Penalty: n.penalty[p].value(time.Now()), Docs: byPeer[p]}
		for _, c := range n.host.Network().ConnsToPeer(p) {
			pi.Addrs = append(pi.Addrs, c.RemoteMultiaddr().String())
		}
		slices.Sort(pi.Addrs)
		out = append(out, pi)
	}
	slices.SortFunc(out, func(a, b PeerInfo) int { return cmpStr(a.ID, b.ID) })
	return out
}

// graylisted reports whether p's last gossipsub score is below the
// graylist threshold.
func (n *Node) graylisted(p peer.ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.scores[p]
	return ok && s < graylistThreshold
}

// Score returns p's last gossipsub score and its app-specific penalty.
func (n *Node) Score(p peer.ID) (score, penalty float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.scores[p], n.penalty[p].value(time.Now())
}

func (n *Node) penaltyLocked(p peer.ID) *penalty {
	pen, ok := n.penalty[p]
	if !ok {
		pen = &penalty{}
		n.penalty[p] = pen
	}
	return pen
}

// penaltyHalfLife is how fast the penalties of misbehaviour that can be an
// honest accident (a malformed message, an unserved request) fade.
// Equivocation is proven and never fades.
const penaltyHalfLife = 10 * time.Minute

// penalty is a peer's app-specific score: a permanent part (equivocation
// proofs) and a part that halves every penaltyHalfLife.
type penalty struct {
	fixed, soft float64
	at          time.Time // when soft was last updated
}

func (p *penalty) value(now time.Time) float64 {
	if p == nil {
		return 0
	}
	return p.fixed + p.soft*math.Exp2(-now.Sub(p.at).Seconds()/penaltyHalfLife.Seconds())
}

func (p *penalty) add(now time.Time, v float64, fixed bool) {
	if fixed {
		p.fixed += v
		return
	}
	p.soft = p.value(now) - p.fixed + v
	p.at = now
}

// Connect dials a peer.
func (n *Node) Connect(ctx context.Context, ai peer.AddrInfo) error {
	return n.host.Connect(ctx, ai)
}

// Err returns the first storage error of any document, or nil: a node
// with a non-nil Err is unhealthy and refuses writes to that document.
func (n *Node) Err() error {
	n.mu.Lock()
	docs := make([]*Doc, 0, len(n.docs))
	for _, d := range n.docs {
		docs = append(docs, d)
	}
	n.mu.Unlock()
	for _, d := range docs {
		if err := d.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the node: the API, pubsub and the host, every document loop,
// and the store, in that order. It is safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.openMu.Lock() // wait for an open in progress
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		n.openMu.Unlock()
		var errs []error
		if n.api != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := n.api.Shutdown(ctx); err != nil {
				n.api.Close()
			}
			cancel()
		}
		n.cancel()
		if n.dht != nil {
			errs = append(errs, n.dht.Close())
		}
		if n.host != nil {
			// Closing the host ends the stream handlers and subscriptions.
			errs = append(errs, n.host.Close())
		}
		n.wg.Wait() // document loops done: nothing writes to the store now
		if n.store != nil {
			if err := n.store.Close(); err != nil && !errors.Is(err, ErrClosed) {
				errs = append(errs, err)
			}
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
