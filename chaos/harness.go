package chaos

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/node"
	"github.com/convergenode/convergenode/replica"
	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/multiformats/go-multiaddr"
	"lukechampine.com/blake3"
)

// ClusterConfig configures a Cluster.
type ClusterConfig struct {
	// Doc is the document every member joins. Default "chaos".
	Doc string
	// ExtraDocs are more documents every honest node joins at start.
	ExtraDocs []string
	// Seed derives every member's key (and so its peer ID): the same seed
	// gives the same identities.
	Seed uint64
	// Link is the default of every link: one-way latency and bandwidth in
	// bytes per second (0: unlimited). Default: no latency, unlimited.
	Link mocknet.LinkOptions
	// TickInterval is the nodes' tick. Default 50 ms.
	TickInterval time.Duration
	// SyncInterval is the replicas' periodic reconciliation. Default 2 s
	// (shorter than a node's default 10 s, so short runs heal quickly).
	SyncInterval time.Duration
	// SyncTimeout bounds a reconciliation session. Default 3 s.
	SyncTimeout time.Duration
	// Logger receives the nodes' logs. Nil discards them.
	Logger *slog.Logger
}

func (c *ClusterConfig) fill() {
	if c.Doc == "" {
		c.Doc = "chaos"
	}
	if c.TickInterval <= 0 {
		c.TickInterval = 50 * time.Millisecond
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = 2 * time.Second
	}
	if c.SyncTimeout <= 0 {
		c.SyncTimeout = 3 * time.Second
	}
}

// Member is one peer of a Cluster: an honest node (Node set while it runs),
// an attacker (Attacker set) or a hostile node (both set).
type Member struct {
	Index int
	Key   ed25519.PrivateKey
	ID    peer.ID
	// Author is the member's change author (its public key).
	Author crdt.Author
	// Store is the honest node's durable log; it survives Stop and Restart.
	Store *node.MemStorage

	node     *node.Node
	doc      *node.Doc
	Attacker *Attacker
}

// Node returns the running node, or nil if the member is stopped or an
// attacker.
func (m *Member) Node() *node.Node { return m.node }

// Doc returns the running node's document handle, or nil.
func (m *Member) Doc() *node.Doc { return m.doc }

// Up reports whether the member runs (an attacker always does).
func (m *Member) Up() bool { return m.node != nil || m.Attacker != nil }

// Cluster is N real nodes (node.New, gossipsub, sync streams, stores) and
// attackers in one process, on a go-libp2p mocknet: links with latency and
// bandwidth, cut and restored at will, nodes stopped and restarted on their
// stores. It never opens a socket.
//
// Links follow a desired graph (Wire) filtered by the current partition
// (Partition, Heal), cut links (Cut, Restore) and which members run; each
// change re-applies the filter to the mocknet. All methods are safe for
// concurrent use.
type Cluster struct {
	cfg ClusterConfig
	mn  mocknet.Mocknet

	mu      sync.Mutex
	members []*Member
	wired   map[[2]int]bool // desired links (i < j)
	cut     map[[2]int]bool
	group   map[int]int // partition group per member; absent: group 0
	opts    map[[2]int]mocknet.LinkOptions
}

// NewCluster returns an empty cluster.
func NewCluster(cfg ClusterConfig) *Cluster {
	cfg.fill()
	mn := mocknet.New()
	mn.SetLinkDefaults(cfg.Link)
	c := &Cluster{
		cfg:   cfg,
		mn:    mn,
		wired: map[[2]int]bool{},
		cut:   map[[2]int]bool{},
		group: map[int]int{},
		opts:  map[[2]int]mocknet.LinkOptions{},
	}
	return c
}

// Doc returns the cluster's document ID.
func (c *Cluster) Doc() string { return c.cfg.Doc }

// key derives member i's key from the seed.
func (c *Cluster) key(i int) ed25519.PrivateKey {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], c.cfg.Seed)
	binary.LittleEndian.PutUint64(b[8:], uint64(i))
	seed := blake3.Sum256(append([]byte("convergenode/chaos/key"), b[:]...))
	return ed25519.NewKeyFromSeed(seed[:])
}

// addHost adds member i's host to the mocknet. The address is a label: the
// mocknet never opens a socket.
func (c *Cluster) addHost(m *Member) (host.Host, error) {
	lk, err := lcrypto.UnmarshalEd25519PrivateKey(m.Key)
	if err != nil {
		return nil, err
	}
	addr, err := multiaddr.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 30000+m.Index))
	if err != nil {
		return nil, err
	}
	h, err := c.mn.AddPeer(lk, addr)
	if err != nil {
		return nil, fmt.Errorf("chaos: mocknet host %d: %w", m.Index, err)
	}
	return h, nil
}

// fwHost is an honest member's host: the mocknet host, with streams
// between members that the partition or a cut keeps apart refused at both
// ends. Closing the connections (apply) is not enough on the mocknet: a
// stream opened on a connection object taken just before it was closed
// still reaches the other side's handlers (the mocknet does not check
// that a connection is closed when a stream is opened on it), and so
// gossip could leak across a fresh partition.
type fwHost struct {
	host.Host
	c *Cluster
}

var errPartitioned = errors.New("chaos: peer is on the other side of a partition or cut")

func (h fwHost) guard(handler network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		if !h.c.allowed(h.ID(), s.Conn().RemotePeer()) {
			s.Reset()
			return
		}
		handler(s)
	}
}

func (h fwHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, h.guard(handler))
}

func (h fwHost) SetStreamHandlerMatch(pid protocol.ID, m func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, m, h.guard(handler))
}

func (h fwHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	if !h.c.allowed(h.ID(), p) {
		return nil, errPartitioned
	}
	return h.Host.NewStream(ctx, p, pids...)
}

// allowed reports whether members a and b may talk now: the same rule as
// apply's, without the Up check (a member being started is not up yet when
// its first streams come).
func (c *Cluster) allowed(a, b peer.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, j := -1, -1
	for k, m := range c.members {
		switch m.ID {
		case a:
			i = k
		case b:
			j = k
		}
	}
	if i < 0 || j < 0 {
		return true // not a member (cannot happen on the cluster's mocknet)
	}
	return c.linkedLocked(i, j)
}

// linkedLocked reports whether members i and j should be linked: wired,
// not cut, on the same side of any partition. The caller holds c.mu.
func (c *Cluster) linkedLocked(i, j int) bool {
	k := norm(i, j)
	return c.wired[k] && !c.cut[k] && c.group[i] == c.group[j]
}

func (c *Cluster) newMember() *Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := len(c.members)
	k := c.key(i)
	id, err := node.PeerID(k)
	if err != nil {
		panic(err) // a key from NewKeyFromSeed always converts
	}
	var a crdt.Author
	copy(a[:], k.Public().(ed25519.PublicKey))
	m := &Member{Index: i, Key: k, ID: id, Author: a}
	c.members = append(c.members, m)
	return m
}

// AddNodes starts n honest nodes, each on a fresh in-memory store.
func (c *Cluster) AddNodes(ctx context.Context, n int) ([]*Member, error) {
	var out []*Member
	for range n {
		m := c.newMember()
		m.Store = node.NewMemStorage()
		if err := c.start(ctx, m, m.Store); err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, c.apply()
}

// start runs member m's node on store.
func (c *Cluster) start(ctx context.Context, m *Member, store node.Storage) error {
	h, err := c.addHost(m)
	if err != nil {
		return err
	}
	cfg := node.DefaultTestConfig()
	cfg.Key, cfg.Host, cfg.Storage = m.Key, fwHost{Host: h, c: c}, store
	cfg.Docs = append([]string{c.cfg.Doc}, c.cfg.ExtraDocs...)
	cfg.TickInterval = c.cfg.TickInterval
	cfg.Logger = c.cfg.Logger
	rc := replica.DefaultConfig()
	rc.SyncInterval, rc.SyncTimeout = c.cfg.SyncInterval, c.cfg.SyncTimeout
	rc.SyncBackoff = time.Second
	cfg.Replica = &rc
	n, err := node.New(ctx, cfg)
	if err != nil {
		h.Close()
		return fmt.Errorf("chaos: start node %d: %w", m.Index, err)
	}
	d, err := n.Doc(ctx, c.cfg.Doc)
	if err != nil {
		n.Close()
		return err
	}
	c.mu.Lock()
	m.node, m.doc = n, d
	c.mu.Unlock()
	return nil
}

// Members returns every member, by index.
func (c *Cluster) Members() []*Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.members)
}

// Honest returns the honest members (running or not).
func (c *Cluster) Honest() []*Member {
	var out []*Member
	for _, m := range c.Members() {
		if m.Attacker == nil {
			out = append(out, m)
		}
	}
	return out
}

// Running returns the honest members whose node runs.
func (c *Cluster) Running() []*Member {
	var out []*Member
	for _, m := range c.Honest() {
		if c.isUp(m) {
			out = append(out, m)
		}
	}
	return out
}

func (c *Cluster) isUp(m *Member) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return m.Up()
}

// Stop closes member i's node (its host leaves the mocknet); its store
// keeps the log for Restart.
func (c *Cluster) Stop(i int) error {
	c.mu.Lock()
	m := c.members[i]
	n := m.node
	m.node, m.doc = nil, nil
	c.mu.Unlock()
	if n == nil {
		return nil
	}
	err := n.Close()
	c.unlinkAll(m.ID)
	return err
}

// Restart starts member i's node again on its store (a reopened copy, as
// a restarted process would find it on disk) and relinks it.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	c.mu.Lock()
	m := c.members[i]
	running := m.node != nil
	c.mu.Unlock()
	if running {
		return nil
	}
	m.Store = m.Store.Reopen()
	if err := c.start(ctx, m, m.Store); err != nil {
		return err
	}
	return c.apply()
}

// WireFull makes the desired graph a full mesh.
func (c *Cluster) WireFull() error {
	c.mu.Lock()
	for i := range c.members {
		for j := i + 1; j < len(c.members); j++ {
			c.wired[[2]int{i, j}] = true
		}
	}
	c.mu.Unlock()
	return c.apply()
}

// Wire adds links i-j to the desired graph.
func (c *Cluster) Wire(pairs ...[2]int) error {
	c.mu.Lock()
	for _, p := range pairs {
		c.wired[norm(p[0], p[1])] = true
	}
	c.mu.Unlock()
	return c.apply()
}

// SetLink sets the latency and bandwidth of link i-j (now and after it is
// restored).
func (c *Cluster) SetLink(i, j int, o mocknet.LinkOptions) {
	c.mu.Lock()
	c.opts[norm(i, j)] = o
	a, b := c.members[i].ID, c.members[j].ID
	c.mu.Unlock()
	for _, l := range c.mn.LinksBetweenPeers(a, b) {
		l.SetOptions(o)
	}
}

// Cut removes link i-j (closing its connections) until Restore.
func (c *Cluster) Cut(i, j int) error {
	c.mu.Lock()
	c.cut[norm(i, j)] = true
	c.mu.Unlock()
	return c.apply()
}

// Restore brings back a cut link.
func (c *Cluster) Restore(i, j int) error {
	c.mu.Lock()
	delete(c.cut, norm(i, j))
	c.mu.Unlock()
	return c.apply()
}

// Partition splits the members: groups[k] lists the members of group k;
// members in no group form group 0 with groups[0]. Only links inside a
// group stay up.
func (c *Cluster) Partition(groups ...[]int) error {
	c.mu.Lock()
	clear(c.group)
	for g, ms := range groups {
		for _, i := range ms {
			c.group[i] = g
		}
	}
	c.mu.Unlock()
	return c.apply()
}

// Heal ends the partition and restores every cut link.
func (c *Cluster) Heal() error {
	c.mu.Lock()
	clear(c.group)
	clear(c.cut)
	c.mu.Unlock()
	return c.apply()
}

func norm(i, j int) [2]int {
	if i > j {
		i, j = j, i
	}
	return [2]int{i, j}
}

// apply makes the mocknet's links match the desired graph under the
// partition, the cuts and who runs: it links and dials the pairs that
// should be up and unlinks and disconnects the others.
func (c *Cluster) apply() error {
	c.mu.Lock()
	type pair struct {
		a, b peer.ID
		up   bool
		opts mocknet.LinkOptions
		has  bool
	}
	var pairs []pair
	for i, mi := range c.members {
		for j := i + 1; j < len(c.members); j++ {
			mj := c.members[j]
			k := [2]int{i, j}
			up := c.linkedLocked(i, j) && mi.Up() && mj.Up()
			o, has := c.opts[k]
			pairs = append(pairs, pair{a: mi.ID, b: mj.ID, up: up, opts: o, has: has})
		}
	}
	c.mu.Unlock()
	var errs []error
	for _, p := range pairs {
		links := c.mn.LinksBetweenPeers(p.a, p.b)
		switch {
		case p.up && len(links) == 0:
			l, err := c.mn.LinkPeers(p.a, p.b)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if p.has {
				l.SetOptions(p.opts)
			}
			if _, err := c.mn.ConnectPeers(p.a, p.b); err != nil {
				errs = append(errs, fmt.Errorf("chaos: connect: %w", err))
			}
		case !p.up && len(links) > 0:
			for _, l := range links {
				c.mn.Unlink(l)
			}
			c.disconnect(p.a, p.b)
		}
	}
	return errors.Join(errs...)
}

// disconnect closes the connections between a and b on both sides.
func (c *Cluster) disconnect(a, b peer.ID) {
	if n := c.mn.Net(a); n != nil {
		n.ClosePeer(b)
	}
	if n := c.mn.Net(b); n != nil {
		n.ClosePeer(a)
	}
}

// unlinkAll removes every link of p (its host is gone: the links hold the
// old network).
func (c *Cluster) unlinkAll(p peer.ID) {
	for _, q := range c.mn.Peers() {
		if q == p {
			continue
		}
		for _, l := range c.mn.LinksBetweenPeers(p, q) {
			c.mn.Unlink(l)
		}
		if n := c.mn.Net(q); n != nil {
			n.ClosePeer(p)
		}
	}
}

// Close stops every node and attacker and the mocknet.
func (c *Cluster) Close() error {
	var errs []error
	for _, m := range c.Members() {
		if m.Attacker != nil {
			errs = append(errs, m.Attacker.Close())
		}
		errs = append(errs, c.Stop(m.Index))
	}
	errs = append(errs, c.mn.Close())
	return errors.Join(errs...)
}
