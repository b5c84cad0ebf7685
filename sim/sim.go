package sim

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/internal/prefetch"
	"github.com/convergenode/convergenode/replica"
	"github.com/convergenode/convergenode/topology"
	"lukechampine.com/blake3"
)

// Epoch is the wall-clock time of virtual time zero.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Sim is a deterministic discrete-event simulation of a network of nodes.
// It runs on the caller's goroutine and is not safe for concurrent use.
type Sim struct {
	cfg    Config
	rng    *rand.Rand // network and workload randomness
	now    int64      // virtual nanoseconds since Epoch
	q      queue
	slots  []slot  // what events keep outside the queue (see event)
	free   []int32 // unused slots
	peers  []*peer
	scen   *topology.Scenario
	router topology.Router
	conns  *topology.Graph // who keeps a stream to whom (PeerUp/PeerDown)
	// cutConns are the connections a partition has taken down.
	cutConns map[uint64]bool
	index    map[string]int // peer ID -> index
	author   map[crdt.Author]int

	msgs     []*msgInfo         // interned gossip messages
	hot      []hotPeer          // per node: what every delivery reads (see hotPeer)
	rns      []*replica.Replica // per node: peer.rn, for prefetch
	ids      []string           // per node: peers[i].id, dense (a sender's is read per delivery)
	eager    []int              // forward's routing buffers
	lazy     []int
	headsBuf []crdt.ID          // stateOf's buffer
	ready    Ready              // the nodes' shared Ready buffer (see NodeConfig)
	msgIdx   map[[32]byte]int32 // content hash -> index into msgs
	// Durable log entries, interned: every node persists the same
	// envelopes, so a node's log is a list of numbers into logData.
	logData [][]byte
	logIdx  map[string]int32
	ge      map[uint64]bool  // Gilbert–Elliott state per directed link (true = bad)
	fifo    map[uint64]int64 // last arrival per directed stream
	groups  []int32          // partition group per node (nil = none)
	oneway  []cut            // one-way cuts
	links   map[uint64]*Link // per directed link overrides

	h        *blake3.Hasher // see hasher
	sigCache *bft.SigCache  // shared by every replica and the validator
	envCache *bft.EnvCache  // shared by every replica
	expect   Expect         // the workload's size, a hint for the nodes

	trace     uint64 // running FNV-1a trace hash
	events    uint64
	curHop    int32 // hop of the packet being stepped (-1: stream)
	inv       *invariants
	met       *metrics
	lastFault int64
	stopped   bool
	ephSeq    int
}

// slot holds an event's function or direct packet bytes.
type slot struct {
	fn   func()
	data []byte
}

// hold stores sl in a free slot and returns its number.
func (s *Sim) hold(sl slot) int32 {
	if n := len(s.free); n > 0 {
		i := s.free[n-1]
		s.free = s.free[:n-1]
		s.slots[i] = sl
		return i
	}
	s.slots = append(s.slots, sl)
	return int32(len(s.slots) - 1)
}

// release frees slot i and returns what it held.
func (s *Sim) release(i int32) slot {
	sl := s.slots[i]
	s.slots[i] = slot{}
	s.free = append(s.free, i)
	return sl
}

// cut blocks messages from nodes in From to nodes in To.
type cut struct {
	from, to []bool
}

// hotPeer is the part of a node's state that every delivery reads,
// duplicates included. The simulator keeps it in one dense slice, apart
// from the peer structs and the nodes' own state: in a large run most
// deliveries are duplicates, which then touch only this slice and the
// message's seen-by bitset, both small enough to stay in cache, instead of
// a peer struct that is a cache miss.
type hotPeer struct {
	cpu int64 // CPU busy until
	up  bool  // mirrors peer.up (see setUp)
}

type peer struct {
	up   bool
	i    int
	node Node
	// rn is node's replica when node is a *ReplicaNode (the default
	// factory's): the engine calls it directly, a load less per input
	// than through the adapter, each cold in the cache on a big run.
	// Set both with setNode.
	rn *replica.Replica
	// The node's ticks (see wakeTicks): the last one it ran, the one
	// scheduled next and that event's generation (a tick event of an
	// older generation was superseded and does nothing).
	tickGen          int32
	lastTick, tickAt int64

	id      string
	key     ed25519.PrivateKey
	author  crdt.Author
	log     []int32 // durable log: indexes into Sim.logData
	skew    time.Duration
	byz     *byzState
	busy    int64 // uplink busy until
	restart int   // restarts so far (reseeds the node's RNG)

	dirty     bool // heads changed since headsKey
	hashDirty bool // state changed since stateHash
	headsKey  [32]byte
	stateHash [32]byte

	sentMsgs, sentBytes, delivered int64
}

// setNode makes n p's node (nil: none).
func (s *Sim) setNode(p *peer, n Node) {
	p.node, p.rn = n, nil
	if rn, ok := n.(*ReplicaNode); ok {
		p.rn = rn.R
	}
	s.rns[p.i] = p.rn
}

// step, tick, quietUntil and hasReady call the node, directly if it is a
// replica (see peer.rn).
func (p *peer) step(from string, data []byte) error {
	if p.rn != nil {
		return p.rn.Step(replica.PeerID(from), data)
	}
	return p.node.Step(from, data)
}

func (p *peer) tick(now time.Time) {
	if p.rn != nil {
		p.rn.Tick(now)
		return
	}
	p.node.Tick(now)
}

func (p *peer) quietUntil() (time.Time, bool) {
	if p.rn != nil {
		return p.rn.QuietUntil(), true
	}
	if q, ok := p.node.(Quieter); ok {
		return q.QuietUntil(), true
	}
	return time.Time{}, false
}

func (p *peer) hasReady() bool {
	if p.rn != nil {
		return p.rn.HasReady()
	}
	return p.node.HasReady()
}

// msgInfo is one distinct gossip message.
type msgInfo struct {
	topic   Topic
	data    []byte
	verdict Verdict
	checked bool
	ns      string   // ephemeral namespace, for filtering
	seenBy  []uint64 // bitset over nodes: the pubsub layer has seen it
}

// packet kinds.
const (
	pkGossip uint8 = iota + 1
	pkIHave
	pkIWant
	pkDirect
)

type packet struct {
	kind uint8
	msg  int32 // gossip, IHAVE, IWANT
	data []byte
}

func (p *packet) size() int {
	switch p.kind {
	case pkIHave, pkIWant:
		return 40
	}
	return len(p.data) + 8
}

// New builds a simulation: the topology, the nodes and the schedule of
// workload, faults and Byzantine behaviour. Nothing runs until Run or
// RunFor.
func New(cfg Config) (*Sim, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Sim{
		cfg:    cfg,
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x5eed)),
		index:  make(map[string]int, cfg.Nodes),
		author: make(map[crdt.Author]int, cfg.Nodes),
		msgIdx: make(map[[32]byte]int32),
		logIdx: make(map[string]int32),
		ge:     make(map[uint64]bool),
		fifo:   make(map[uint64]int64),
		links:  make(map[uint64]*Link),
		trace:  14695981039346656037,
	}
	if cfg.SigCacheSize > 0 {
		s.sigCache = bft.NewSigCache(cfg.SigCacheSize)
	}
	if cfg.EnvCacheSize > 0 {
		s.envCache = bft.NewEnvCache(cfg.EnvCacheSize)
	}
	if s.cfg.Validator == nil {
		s.cfg.Validator = cachedValidator(s.sigCache)
	}
	s.inv = newInvariants(s)
	s.met = newMetrics(s)
	scen, err := topology.New(cfg.Topology, cfg.Nodes, cfg.Params, rand.New(rand.NewPCG(cfg.Seed, 0x7090)))
	if err != nil {
		return nil, err
	}
	s.scen = scen
	s.router = scen.Strategy.Router(scen.Graph, rand.New(rand.NewPCG(cfg.Seed, 0x2007)))
	s.conns = scen.Graph
	if scen.Graph.Complete() && cfg.Nodes > 64 {
		// A large mesh floods gossip to everyone, but no node keeps a
		// reconciliation stream to every other: each has about 16.
		s.conns = topology.RandomRegular(cfg.Nodes, 16, rand.New(rand.NewPCG(cfg.Seed, 0xc0)))
	}
	s.expect = expectOf(s.cfg)
	s.met.reserve(s.expect.Changes * cfg.Nodes)
	keys := nodeKeys(cfg.Seed, cfg.Nodes)
	for i := 0; i < cfg.Nodes; i++ {
		if err := s.addPeer(i, keys[i]); err != nil {
			return nil, err
		}
	}
	for _, b := range cfg.Byzantine {
		s.peers[b.Node].byz = newByzState(b)
	}
	for i := range s.peers {
		s.connectAll(i)
	}
	if w := scen.Partition; w != nil {
		groups := w.Groups
		s.at(w.At, func() { s.Partition(groups...) })
		s.at(w.Heal, func() { s.Heal() })
		if int64(w.Heal) > s.lastFault {
			s.lastFault = int64(w.Heal)
		}
	}
	s.scheduleWorkload()
	for _, f := range cfg.Faults {
		s.scheduleFault(f)
	}
	s.scheduleByzantine()
	s.at(0, s.sample)
	return s, nil
}

// nodeKey returns node i's signing key: a function of the seed and i.
func nodeKey(seed uint64, i int) ed25519.PrivateKey {
	var b [32]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	binary.LittleEndian.PutUint64(b[8:], uint64(i))
	copy(b[16:], "convergenode-sim")
	return ed25519.NewKeyFromSeed(b[:])
}

// nodeKeys returns the keys of nodes 0 to n-1, derived on every CPU (a
// 100,000-node run spends over a second on them): each is a function of
// the seed and its node's number alone, so the result does not depend on
// how the work is split.
func nodeKeys(seed uint64, n int) []ed25519.PrivateKey {
	keys := make([]ed25519.PrivateKey, n)
	workers := min(runtime.GOMAXPROCS(0), max(n/1024, 1))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				keys[i] = nodeKey(seed, i)
			}
		})
	}
	wg.Wait()
	return keys
}

func (s *Sim) addPeer(i int, key ed25519.PrivateKey) error {
	p := &peer{i: i, id: fmt.Sprintf("n%d", i), key: key, dirty: true}
	copy(p.author[:], key.Public().(ed25519.PublicKey))
	s.index[p.id] = i
	s.author[p.author] = i
	s.peers = append(s.peers, p)
	s.hot = append(s.hot, hotPeer{})
	s.rns = append(s.rns, nil)
	s.ids = append(s.ids, p.id)
	s.setUp(p, true)
	if err := s.startNode(p, nil); err != nil {
		return err
	}
	// Every node ticks with its own phase so that ticks do not pile up.
	phase := s.rng.Int64N(int64(s.cfg.TickEvery))
	p.lastTick, p.tickAt = phase-int64(s.cfg.TickEvery), phase
	s.push(event{at: phase, kind: evTick, node: int32(i), aux: p.tickGen})
	return nil
}

func (s *Sim) startNode(p *peer, log [][]byte) error {
	n, err := s.cfg.Factory(NodeConfig{
		Index:      p.i,
		Peer:       p.id,
		Doc:        s.cfg.Doc,
		Key:        p.key,
		Rand:       rand.New(rand.NewPCG(s.cfg.Seed^uint64(p.i)<<20, uint64(p.restart))),
		Log:        log,
		Now:        s.nodeNow(p),
		SigCache:   s.sigCache,
		EnvCache:   s.envCache,
		Namespaces: s.scen.Follows(p.i),
		Expect:     s.expect,
		ready:      &s.ready,
	})
	if err != nil {
		return fmt.Errorf("sim: start node %d: %w", p.i, err)
	}
	s.setNode(p, n)
	p.dirty = true
	return nil
}

// connectAll tells node i and its graph neighbours that they are connected
// (when the link is not cut and both are up).
func (s *Sim) connectAll(i int) {
	g := s.conns
	for k, d := 0, g.Degree(i); k < d; k++ {
		j := g.Neighbor(i, k)
		s.connect(i, j)
	}
}

func (s *Sim) connect(i, j int) {
	a, b := s.peers[i], s.peers[j]
	if !a.up || !b.up || s.split(i, j) {
		return
	}
	s.wakeTicks(a)
	s.wakeTicks(b)
	a.node.PeerUp(b.id)
	b.node.PeerUp(a.id)
	s.flush(a)
	s.flush(b)
}

func (s *Sim) disconnect(i, j int) {
	a, b := s.peers[i], s.peers[j]
	if a.up {
		s.wakeTicks(a)
		a.node.PeerDown(b.id)
		s.flush(a)
	}
	if b.up {
		s.wakeTicks(b)
		b.node.PeerDown(a.id)
		s.flush(b)
	}
}

// wakeTicks runs before every input to node p but a tick (a message, a
// write, a peer coming or going): the input ends the node's quiet period,
// so its next tick must be the next on its grid, not the one scheduled
// after the quiet ticks it was skipping (see Quieter). If it skipped
// ticks up to now, it first runs the last of them, which finds nothing to
// do but set the node's clock, so the node sees the input at the time it
// would have had with every tick run.
func (s *Sim) wakeTicks(p *peer) {
	if p.up {
		s.regrid(p, true)
	}
}

// regrid schedules node p's next tick at the next time on its grid, if
// ticks were being skipped, first running the last skipped one if catchUp.
func (s *Sim) regrid(p *peer, catchUp bool) {
	te := int64(s.cfg.TickEvery)
	if p.tickAt-p.lastTick == te {
		return // no tick skipped
	}
	last := p.lastTick + (s.now-p.lastTick)/te*te // the last tick due at or before now
	if last > p.lastTick {
		if catchUp {
			p.tick(Epoch.Add(time.Duration(last) + p.skew))
		}
		p.lastTick = last
	}
	if next := last + te; next < p.tickAt {
		p.tickGen++
		p.tickAt = next
		s.push(event{at: next, kind: evTick, node: int32(p.i), aux: p.tickGen})
	}
}

// Now returns the virtual time.
func (s *Sim) Now() time.Duration { return time.Duration(s.now) }

func (s *Sim) nodeNow(p *peer) time.Time {
	return Epoch.Add(time.Duration(s.now) + p.skew)
}

func (s *Sim) push(e event) {
	s.q.push(e)
}

// at schedules fn at virtual time t (or now, if t has passed).
func (s *Sim) at(t time.Duration, fn func()) {
	at := int64(t)
	if at < s.now {
		at = s.now
	}
	s.push(event{at: at, kind: evFunc, aux: s.hold(slot{fn: fn}), node: -1})
}

// after schedules fn d after now.
func (s *Sim) after(d time.Duration, fn func()) { s.at(time.Duration(s.now)+d, fn) }

func (s *Sim) mix(vs ...uint64) {
	h := s.trace
	for _, v := range vs {
		for k := 0; k < 8; k++ {
			h ^= v & 0xff
			h *= 1099511628211
			v >>= 8
		}
	}
	s.trace = h
}

// TraceHash returns the hash of every event fired so far but the ticks.
func (s *Sim) TraceHash() string { return fmt.Sprintf("%016x", s.trace) }

// Events returns how many events have fired.
func (s *Sim) Events() uint64 { return s.events }

// step fires the next event. It returns false when the queue is empty.
func (s *Sim) step() bool {
	if s.q.Len() == 0 {
		return false
	}
	e := s.q.pop()
	s.prefetch()
	s.now = e.at
	s.events++
	var msg, size uint64
	if e.kind == evDeliver {
		msg = uint64(uint32(e.msg))
		switch e.pkind {
		case pkGossip:
			size = uint64(len(s.msgs[e.msg].data))
		case pkDirect:
			size = uint64(len(s.slots[e.aux].data))
		}
	}
	if e.kind != evTick {
		// Ticks are not in the trace: the ones with work show by what
		// they send, and the others may be skipped (see Quieter).
		s.mix(uint64(e.at), uint64(e.kind), uint64(uint32(e.node)), uint64(uint32(e.from)), msg, size)
	}
	switch e.kind {
	case evDeliver:
		s.deliver(e)
	case evTick:
		p := s.peers[e.node]
		if e.aux != p.tickGen {
			break // superseded (see wakeTicks)
		}
		te := int64(s.cfg.TickEvery)
		next := s.now + te
		if p.up {
			p.tick(s.nodeNow(p))
			s.flush(p)
			if until, ok := p.quietUntil(); ok && p.up {
				// Skip the ticks that would find nothing to do (at most
				// an hour of them at once).
				if d := until.Sub(s.nodeNow(p)); d > 0 {
					if quiet := s.now + int64(min(d, time.Hour)); quiet > next {
						next += (quiet - next + te - 1) / te * te
					}
				}
			}
		}
		p.lastTick, p.tickAt = s.now, next
		s.push(event{at: next, kind: evTick, node: e.node, aux: p.tickGen})
	case evFunc:
		s.release(e.aux).fn()
	}
	return true
}

// The engine starts loading the state of the node an event goes to
// prefetchAhead events before the event fires, and runs each later stage
// of the load (see replica.Replica.Prefetch) prefetchGap events later:
// the last stage runs a few events ahead, so that its loads have arrived
// and are still in the cache when the event fires. Measured at 30,000 and
// 10,000 nodes (docs/benchmarks.md).
const (
	prefetchAhead = 13
	prefetchGap   = 2
)

// prefetchOff turns prefetch off (for the test that it changes nothing).
var prefetchOff bool

// prefetch starts loading the state of the nodes the next events go to,
// a few events before each fires: on a big run the replicas' state is far
// larger than the CPU's caches, and handling an input would otherwise
// wait on one cache miss after another. It skips the events that do not
// reach a node's state (a gossip copy the node has seen, IHAVE and IWANT,
// functions). It changes nothing but what the caches hold, so traces and
// reports are the same without it (TestPrefetchChangesNothing).
func (s *Sim) prefetch() {
	if prefetchOff {
		return
	}
	for st, k := 0, prefetchAhead; st < replica.PrefetchStages && k >= 0; st, k = st+1, k-prefetchGap {
		e := s.q.ahead(k)
		if e == nil || e.kind == evFunc || e.kind == evDeliver && (e.pkind == pkIHave || e.pkind == pkIWant ||
			e.pkind == pkGossip && s.hasSeen(e.node, e.msg)) {
			continue // not for the node's state
		}
		switch st {
		case 0:
			prefetch.Of(s.peers[e.node])
			if int(e.node) < len(s.met.applied) {
				prefetch.Of(&s.met.applied[e.node])
			}
		case 1:
			// What flush writes for a change the node applies.
			p := s.peers[e.node]
			prefetch.Next(p.log)
			if int(e.node) < len(s.met.applied) {
				if bs := s.met.applied[e.node]; len(bs) > 0 {
					prefetch.Of(&bs[0])
				}
			}
		}
		if e.kind == evDeliver && e.pkind == pkGossip && (st == 2 || st == 3) {
			// The node forwards the message: the router reads its
			// neighbour list.
			s.scen.Graph.Prefetch(int(e.node), st-2)
		}
		if rn := s.rns[e.node]; rn != nil {
			var data []byte
			if e.kind == evDeliver && e.pkind == pkGossip && st >= 2 {
				data = s.msgs[e.msg].data
			}
			rn.Prefetch(st, data)
		}
	}
}

// RunFor advances virtual time by d, firing every event due.
func (s *Sim) RunFor(d time.Duration) {
	s.RunUntil(time.Duration(s.now) + d)
}

// RunUntil fires every event due at or before virtual time t.
func (s *Sim) RunUntil(t time.Duration) {
	end := int64(t)
	for s.q.Len() > 0 && s.q.peek().at <= end {
		s.step()
	}
	if s.now < end {
		s.now = end
	}
}

// flush drains a node's Ready output: persist, publish, send, record.
func (s *Sim) flush(p *peer) {
	for p.up && p.hasReady() {
		rd := p.node.Ready()
		for _, b := range rd.Persist {
			p.log = append(p.log, s.logEntry(b))
		}
		for _, a := range rd.Applied {
			s.onApplied(p, a)
		}
		if len(rd.Applied) > 0 {
			p.dirty = true
		}
		for _, a := range rd.Alerts {
			s.inv.onAlert(p, a)
		}
		for _, b := range rd.Broadcast {
			if p.byz != nil {
				s.byzPublish(p, b)
				continue
			}
			s.publish(p, b.Topic, b.Data)
		}
		for _, d := range rd.Send {
			j, ok := s.index[d.To]
			if !ok {
				continue
			}
			if p.byz != nil && s.byzSend(p, j, d.Data) {
				continue
			}
			s.sendDirect(p.i, j, d.Data)
		}
		p.node.Advance()
	}
}

// logEntry returns the number of a durable log entry, adding it if new.
func (s *Sim) logEntry(b []byte) int32 {
	if i, ok := s.logIdx[string(b)]; ok {
		return i
	}
	i := int32(len(s.logData))
	s.logData = append(s.logData, b)
	s.logIdx[string(b)] = i
	return i
}

// logOf returns node p's durable log.
func (s *Sim) logOf(p *peer) [][]byte {
	if p.log == nil {
		return nil // as a node that never persisted anything
	}
	out := make([][]byte, len(p.log))
	for k, i := range p.log {
		out[k] = s.logData[i]
	}
	return out
}

// hasher returns the simulation's BLAKE3 hasher, reset (one for the whole
// run: a hasher is a few kilobytes).
func (s *Sim) hasher() *blake3.Hasher {
	if s.h == nil {
		s.h = blake3.New(32, nil)
	}
	s.h.Reset()
	return s.h
}

// intern returns the index of a gossip message, adding it if new.
func (s *Sim) intern(topic Topic, data []byte) int32 {
	h := s.hasher()
	h.Write([]byte{byte(topic)})
	h.Write(data)
	var k [32]byte
	h.Sum(k[:0])
	if i, ok := s.msgIdx[k]; ok {
		return i
	}
	i := int32(len(s.msgs))
	m := &msgInfo{topic: topic, data: data, seenBy: make([]uint64, (len(s.peers)+63)/64)}
	if topic == TopicEphemeral && s.scen.Subscriptions != nil {
		m.ns = s.cfg.Namespace(data)
	}
	s.msgs = append(s.msgs, m)
	s.msgIdx[k] = i
	return i
}

// setUp sets whether p runs, in the peer and in its hot state.
func (s *Sim) setUp(p *peer, up bool) {
	p.up = up
	s.hot[p.i].up = up
}

// hasSeen reports whether node i's pubsub layer has seen message m.
func (s *Sim) hasSeen(i int32, m int32) bool {
	b := s.msgs[m].seenBy
	w := int(i >> 6)
	return w < len(b) && b[w]&(1<<(uint(i)&63)) != 0
}

// markSeen records that node i's pubsub layer has seen message m.
func (s *Sim) markSeen(i int32, m int32) {
	mi := s.msgs[m]
	w := int(i >> 6)
	if w >= len(mi.seenBy) {
		mi.seenBy = append(mi.seenBy, make([]uint64, w+1-len(mi.seenBy))...)
	}
	mi.seenBy[w] |= 1 << (uint(i) & 63)
}

// forget clears everything node i's pubsub layer has seen (a crash).
func (s *Sim) forget(i int32) {
	w, bit := int(i>>6), uint64(1)<<(uint(i)&63)
	for _, mi := range s.msgs {
		if w < len(mi.seenBy) {
			mi.seenBy[w] &^= bit
		}
	}
}

// verdict runs the stateless validator once per distinct message: the
// simulator's signature cache keyed by the message bytes (and so by key,
// ID and signature).
func (s *Sim) verdict(m int32) Verdict {
	mi := s.msgs[m]
	if !mi.checked {
		mi.verdict = s.cfg.Validator(s.cfg.Doc, mi.topic, mi.data)
		mi.checked = true
		s.met.verifications++
	}
	return mi.verdict
}

// publish sends a node's own gossip message along the strategy.
func (s *Sim) publish(p *peer, topic Topic, data []byte) {
	m := s.intern(topic, data)
	s.markSeen(int32(p.i), m)
	s.forward(p, m, -1, 0)
}

// forward passes message m on from p, which got it from `from` at hop.
func (s *Sim) forward(p *peer, m int32, from int, hop int32) {
	if p.byz != nil && p.byz.b.Behaviours.Has(BehaviourCensor) && from >= 0 {
		return
	}
	eager, lazy := s.router.Route(p.i, from, int(hop), s.rng, s.eager[:0], s.lazy[:0])
	s.eager, s.lazy = eager, lazy // reused: transmit never forwards
	ns := s.msgs[m].ns
	pk := packet{kind: pkGossip, msg: m, data: s.msgs[m].data}
	for _, j := range eager {
		if ns != "" && !s.scen.Subscribed(j, ns) {
			continue
		}
		s.transmit(p.i, j, pk, hop+1, false)
	}
	if len(lazy) > 0 {
		ih := packet{kind: pkIHave, msg: m}
		for _, j := range lazy {
			if ns != "" && !s.scen.Subscribed(j, ns) {
				continue
			}
			s.transmit(p.i, j, ih, hop+1, false)
		}
	}
}

func (s *Sim) sendDirect(from, to int, data []byte) {
	s.transmit(from, to, packet{kind: pkDirect, msg: -1, data: data}, -1, true)
}

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// link returns the model of the directed link a->b.
func (s *Sim) link(a, b int) *Link {
	if len(s.links) > 0 {
		if l, ok := s.links[pairKey(a, b)]; ok {
			return l
		}
	}
	return &s.cfg.Link
}

// blocked reports whether a partition stops a->b.
func (s *Sim) blocked(a, b int) bool {
	if s.groups != nil && s.groups[a] != s.groups[b] {
		return true
	}
	for _, c := range s.oneway {
		if c.from[a] && c.to[b] {
			return true
		}
	}
	return false
}

// transmit puts one packet on the wire from a to b. A gossip packet
// travels as its message number; a direct packet's bytes wait in a slot
// (see event). Direct packets go only on streams (sendDirect), which
// deliver each once.
func (s *Sim) transmit(a, b int, pk packet, hop int32, stream bool) {
	pa := s.peers[a]
	size := int64(pk.size())
	pa.sentMsgs++
	pa.sentBytes += size
	s.met.msgs++
	s.met.bytes += size
	if s.blocked(a, b) {
		s.met.dropped++
		return
	}
	l := s.link(a, b)
	if l.Down {
		s.met.dropped++
		return
	}
	dep := s.now
	if l.Bandwidth > 0 {
		if pa.busy > dep {
			dep = pa.busy
		}
		dep += size * int64(time.Second) / l.Bandwidth
		pa.busy = dep
	}
	lat := s.latency(a, b, l)
	ev := event{kind: evDeliver, pkind: pk.kind, node: int32(b), from: int32(a), hop: hop, msg: pk.msg}
	if stream {
		if pk.kind == pkDirect {
			ev.aux = s.hold(slot{data: pk.data})
		}
		// A stream is reliable and ordered: a loss costs a retransmission
		// timeout, and nothing overtakes an earlier message.
		rto := 2*l.Latency.Base + 200*time.Millisecond
		for tries := 0; tries < 8 && s.lost(a, b, l); tries++ {
			lat += rto
			s.met.retransmits++
		}
		at := dep + int64(lat)
		k := pairKey(a, b)
		if last := s.fifo[k]; at < last {
			at = last
		}
		s.fifo[k] = at
		ev.at = at
		s.push(ev)
		return
	}
	if pk.kind == pkDirect {
		// A datagram could be lost or duplicated, and its slot with it.
		panic("sim: a direct packet off a stream")
	}
	if s.lost(a, b, l) {
		s.met.lost++
		return
	}
	if l.Reorder > 0 && s.rng.Float64() < l.Reorder {
		rm := l.ReorderMax
		if rm <= 0 {
			rm = 4 * l.Latency.Base
		}
		if rm > 0 {
			lat += time.Duration(s.rng.Int64N(int64(rm)))
		}
	}
	ev.at = dep + int64(lat)
	s.push(ev)
	if l.Dup > 0 && s.rng.Float64() < l.Dup {
		s.met.duplicated++
		extra := s.latency(a, b, l)
		ev.at = dep + int64(lat+extra/2)
		s.push(ev)
	}
}

func (s *Sim) latency(a, b int, l *Link) time.Duration {
	var d time.Duration
	if r := s.cfg.Regions; r != nil {
		d = r.Matrix[r.of(a)][r.of(b)]
	} else {
		d = l.Latency.Sample(s.rng)
	}
	if l.Jitter > 0 {
		d += time.Duration(s.rng.Int64N(int64(l.Jitter)))
	}
	return d
}

// lost draws whether one message on a->b is lost.
func (s *Sim) lost(a, b int, l *Link) bool {
	p := l.Loss
	if bu := l.Burst; bu != nil {
		k := pairKey(a, b)
		bad := s.ge[k]
		if bad {
			if s.rng.Float64() < bu.PGood {
				bad = false
			}
		} else if s.rng.Float64() < bu.PBad {
			bad = true
		}
		s.ge[k] = bad
		if bad {
			p = bu.LossBad
		}
	}
	return p > 0 && s.rng.Float64() < p
}

// deliver handles a packet arriving at a node. A duplicate gossip packet
// reads only s.hot and the message's seen-by bitset (see hotPeer).
func (s *Sim) deliver(e event) {
	h := &s.hot[e.node]
	if !h.up {
		if e.pkind == pkDirect {
			s.release(e.aux)
		}
		s.met.dropped++
		return
	}
	switch e.pkind {
	case pkIHave:
		if !s.hasSeen(e.node, e.msg) {
			s.transmit(int(e.node), int(e.from), packet{kind: pkIWant, msg: e.msg}, e.hop, false)
		}
		return
	case pkIWant:
		if p := s.peers[e.node]; s.hasSeen(e.node, e.msg) && (p.byz == nil || !p.byz.b.Behaviours.Has(BehaviourCensor)) {
			s.transmit(int(e.node), int(e.from), packet{kind: pkGossip, msg: e.msg, data: s.msgs[e.msg].data}, e.hop, false)
		}
		return
	}
	// CPU model: every packet costs the receiving node CPU time (a
	// signature check for a new gossip message, a cache hit otherwise); a
	// busy node handles the packet when it is free.
	if !e.charged {
		cost := int64(s.cfg.CachedCost)
		switch {
		case e.pkind == pkGossip && !s.hasSeen(e.node, e.msg):
			cost = int64(s.cfg.VerifyCost)
		case e.pkind == pkDirect:
			// A reconciliation batch: one signature check per envelope.
			cost += int64(s.cfg.VerifyCost) * int64(batchItems(s.slots[e.aux].data))
		}
		start := s.now
		if h.cpu > start {
			start = h.cpu
		}
		h.cpu = start + cost
		if start > s.now {
			e.at = start
			e.charged = true
			s.push(e)
			return
		}
	}
	p, from := s.peers[e.node], s.ids[e.from]
	if e.pkind == pkGossip {
		if s.hasSeen(e.node, e.msg) {
			s.met.dups++
			return
		}
		s.markSeen(e.node, e.msg)
		switch s.verdict(e.msg) {
		case Reject:
			s.met.rejected++
			return
		case Ignore:
			s.met.ignored++
			return
		}
		mi := s.msgs[e.msg]
		if mi.ns == "" || s.scen.Subscribed(p.i, mi.ns) {
			s.stepNode(p, from, mi.data, e.hop)
		}
		if p.up {
			s.forward(p, e.msg, int(e.from), e.hop)
		}
		return
	}
	s.stepNode(p, from, s.release(e.aux).data, -1)
}

func (s *Sim) stepNode(p *peer, from string, data []byte, hop int32) {
	s.wakeTicks(p)
	s.curHop = hop
	if err := p.step(from, data); err != nil {
		s.met.stepErrors++
	}
	s.flush(p)
	s.curHop = -1
}

// Propose makes node i write ops now.
func (s *Sim) Propose(i int, ops ...crdt.Op) error {
	p := s.peers[i]
	if !p.up {
		return fmt.Errorf("sim: node %d is down", i)
	}
	s.wakeTicks(p)
	if err := p.node.Propose(ops...); err != nil {
		return err
	}
	s.flush(p)
	return nil
}

// SetPresence makes node i set an ephemeral value now.
func (s *Sim) SetPresence(i int, ns, key string, v crdt.Value) error {
	p := s.peers[i]
	if !p.up {
		return fmt.Errorf("sim: node %d is down", i)
	}
	s.wakeTicks(p)
	if err := p.node.SetPresence(ns, key, v); err != nil {
		return err
	}
	s.flush(p)
	return nil
}

// Len returns the number of nodes.
func (s *Sim) Len() int { return len(s.peers) }

// Node returns node i's core (for inspection; do not drive it directly).
func (s *Sim) Node(i int) Node { return s.peers[i].node }

// Up reports whether node i is running.
func (s *Sim) Up(i int) bool { return s.hot[i].up }

// Honest reports whether node i runs no Byzantine behaviour.
func (s *Sim) Honest(i int) bool { return s.peers[i].byz == nil }

// Scenario returns the topology scenario.
func (s *Sim) Scenario() *topology.Scenario { return s.scen }
