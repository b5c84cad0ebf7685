// Package replicatest wires replicas together over an in-memory network
// with a fake clock and a seeded random source: messages can be lost,
// duplicated and reordered, links can be cut and healed, and some nodes
// can be Byzantine (see Liar). Everything is deterministic for a given
// seed: the same Options give the same trace.
package replicatest

import (
	"container/heap"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/ephemeral"
	"github.com/convergenode/convergenode/replica"
)

// Epoch is the fake clock's start.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Options configures a Network.
type Options struct {
	Seed  uint64        // seeds the network and every replica
	Nodes int           // honest replicas, named n1..nN
	Doc   string        // document ID; default "doc"
	Tick  time.Duration // tick interval; default 100 ms

	// Latency of a message is uniform in [MinLatency, MaxLatency]; the
	// spread reorders broadcasts. Direct (stream) messages between two
	// nodes stay in order. Defaults 5 ms and 25 ms.
	MinLatency, MaxLatency time.Duration
	Loss                   float64 // probability a message is lost
	Dup                    float64 // probability a message is delivered twice

	// Config, if set, adjusts each replica's configuration.
	Config func(i int, c *replica.Config)
}

// Handler is a node that is not an honest replica (see Liar).
type Handler interface {
	Step(n *Network, self *Node, from replica.PeerID, data []byte)
	Tick(n *Network, self *Node)
	PeerUp(n *Network, self *Node, p replica.PeerID)
}

// Node is one participant.
type Node struct {
	ID       replica.PeerID
	Key      ed25519.PrivateKey
	R        *replica.Replica // nil for a Handler node
	Handler  Handler
	Log      [][]byte // the durable log (Ready.Persist)
	Alerts   []replica.Alert
	Applied  int
	Presence []ephemeral.Event
	Crashed  bool
	idx      int
	cfg      replica.Config
}

// Stats counts network traffic.
type Stats struct {
	Msgs, Bytes      uint64
	Lost, Duplicated uint64
	ByType           map[replica.MsgType]uint64
	BytesByType      map[replica.MsgType]uint64
	Delivered        uint64
}

type packet struct {
	at       time.Time
	seq      uint64
	from, to int
	data     []byte
}

type pq []*packet

func (q pq) Len() int { return len(q) }
func (q pq) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q pq) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *pq) Push(x any)   { *q = append(*q, x.(*packet)) }
func (q *pq) Pop() any     { o := *q; x := o[len(o)-1]; *q = o[:len(o)-1]; return x }

// Network is the simulated network and its nodes.
type Network struct {
	Now   time.Time
	Rand  *rand.Rand
	Nodes []*Node
	Stats Stats
	Opts  Options

	q        pq
	seq      uint64
	cut      map[[2]int]bool
	fifo     map[[2]int]time.Time
	nextTick time.Time
	byID     map[replica.PeerID]int
	dropFrom map[int]bool
}

// KeyFor returns the deterministic key of node i (0-based).
func KeyFor(i int) ed25519.PrivateKey {
	var seed [32]byte
	binary.BigEndian.PutUint64(seed[:], uint64(i)+1)
	copy(seed[8:], "replicatest-node")
	return ed25519.NewKeyFromSeed(seed[:])
}

// New builds a network of opts.Nodes honest replicas, all connected (each
// pair gets PeerUp).
func New(opts Options) (*Network, error) {
	if opts.Doc == "" {
		opts.Doc = "doc"
	}
	if opts.Tick <= 0 {
		opts.Tick = 100 * time.Millisecond
	}
	if opts.MinLatency <= 0 {
		opts.MinLatency = 5 * time.Millisecond
	}
	if opts.MaxLatency < opts.MinLatency {
		opts.MaxLatency = opts.MinLatency + 20*time.Millisecond
	}
	n := &Network{
		Now:      Epoch,
		Rand:     rand.New(rand.NewPCG(opts.Seed, 0x6e6574)),
		Opts:     opts,
		cut:      make(map[[2]int]bool),
		fifo:     make(map[[2]int]time.Time),
		nextTick: Epoch,
		byID:     make(map[replica.PeerID]int),
		dropFrom: make(map[int]bool),
		Stats:    Stats{ByType: map[replica.MsgType]uint64{}, BytesByType: map[replica.MsgType]uint64{}},
	}
	for i := 0; i < opts.Nodes; i++ {
		if _, err := n.AddNode(false); err != nil {
			return nil, err
		}
	}
	for i := range n.Nodes {
		for j := i + 1; j < len(n.Nodes); j++ {
			n.up(i, j)
		}
	}
	return n, nil
}

func (n *Network) config(i int, key ed25519.PrivateKey) replica.Config {
	c := replica.DefaultConfig()
	c.Doc = n.Opts.Doc
	c.Key = key
	c.Rand = rand.New(rand.NewPCG(n.Opts.Seed, uint64(i)+1))
	if n.Opts.Config != nil {
		n.Opts.Config(i, &c)
	}
	return c
}

// AddNode adds an honest replica and, if connect is set, brings it up with
// every other node. It returns the node.
func (n *Network) AddNode(connect bool) (*Node, error) {
	i := len(n.Nodes)
	key := KeyFor(i)
	nd := &Node{ID: replica.PeerID(fmt.Sprintf("n%d", i+1)), Key: key, idx: i}
	nd.cfg = n.config(i, key)
	r, err := replica.New(nd.cfg)
	if err != nil {
		return nil, err
	}
	r.Tick(n.Now)
	nd.R = r
	n.Nodes = append(n.Nodes, nd)
	n.byID[nd.ID] = i
	if connect {
		n.connectAll(i)
	}
	return nd, nil
}

// AddHandler adds a non-replica node (a Byzantine peer) and connects it.
func (n *Network) AddHandler(h Handler) *Node {
	i := len(n.Nodes)
	nd := &Node{ID: replica.PeerID(fmt.Sprintf("n%d", i+1)), Key: KeyFor(i), Handler: h, idx: i}
	n.Nodes = append(n.Nodes, nd)
	n.byID[nd.ID] = i
	n.connectAll(i)
	return nd
}

func (n *Network) connectAll(i int) {
	for j := range n.Nodes {
		if j != i {
			n.up(i, j)
		}
	}
}

func key2(i, j int) [2]int {
	if i > j {
		i, j = j, i
	}
	return [2]int{i, j}
}

func (n *Network) up(i, j int) {
	for _, pr := range [][2]int{{i, j}, {j, i}} {
		a, b := n.Nodes[pr[0]], n.Nodes[pr[1]]
		if a.Crashed || b.Crashed {
			continue
		}
		switch {
		case a.R != nil:
			a.R.PeerUp(b.ID)
			n.process(a)
		case a.Handler != nil:
			a.Handler.PeerUp(n, a, b.ID)
		}
	}
}

func (n *Network) down(i, j int) {
	for _, pr := range [][2]int{{i, j}, {j, i}} {
		if a := n.Nodes[pr[0]]; a.R != nil && !a.Crashed {
			a.R.PeerDown(n.Nodes[pr[1]].ID)
		}
	}
}

// Node returns the node named id.
func (n *Network) Node(id replica.PeerID) *Node { return n.Nodes[n.byID[id]] }

// Partition cuts every link between two nodes in different groups (nodes
// named in no group keep their links) and tells the replicas (PeerDown).
func (n *Network) Partition(groups ...[]int) {
	group := make(map[int]int)
	for g, ms := range groups {
		for _, m := range ms {
			group[m] = g + 1
		}
	}
	for i := range n.Nodes {
		for j := i + 1; j < len(n.Nodes); j++ {
			gi, gj := group[i], group[j]
			if gi != 0 && gj != 0 && gi != gj && !n.cut[key2(i, j)] {
				n.cut[key2(i, j)] = true
				n.down(i, j)
			}
		}
	}
}

// Heal restores every cut link (PeerUp on both sides).
func (n *Network) Heal() {
	for i := range n.Nodes {
		for j := i + 1; j < len(n.Nodes); j++ {
			if n.cut[key2(i, j)] {
				delete(n.cut, key2(i, j))
				n.up(i, j)
			}
		}
	}
}

// Crash stops node i; its durable log survives.
func (n *Network) Crash(i int) {
	nd := n.Nodes[i]
	nd.Crashed = true
	for j := range n.Nodes {
		if j != i && n.Nodes[j].R != nil && !n.Nodes[j].Crashed {
			n.Nodes[j].R.PeerDown(nd.ID)
		}
	}
}

// Restart brings node i back from its durable log.
func (n *Network) Restart(i int) error {
	nd := n.Nodes[i]
	r, err := replica.New(nd.cfg)
	if err != nil {
		return err
	}
	r.Tick(n.Now)
	if err := r.Restore(nd.Log); err != nil {
		return err
	}
	nd.R = r
	nd.Crashed = false
	for j := range n.Nodes {
		if j != i && !n.cut[key2(i, j)] {
			n.up(i, j)
		}
	}
	return nil
}

// SetLoss changes the loss probability.
func (n *Network) SetLoss(p float64) { n.Opts.Loss = p }

// SetDup changes the duplication probability.
func (n *Network) SetDup(p float64) { n.Opts.Dup = p }

func (n *Network) latency() time.Duration {
	span := int64(n.Opts.MaxLatency - n.Opts.MinLatency)
	if span <= 0 {
		return n.Opts.MinLatency
	}
	return n.Opts.MinLatency + time.Duration(n.Rand.Int64N(span+1))
}

// Send queues data from node from to node to over their stream (in order).
func (n *Network) Send(from, to int, data []byte) {
	n.account(data)
	if n.cut[key2(from, to)] || n.lose() {
		return
	}
	copies := 1
	if n.Opts.Dup > 0 && n.Rand.Float64() < n.Opts.Dup {
		copies = 2
		n.Stats.Duplicated++
	}
	for range copies {
		at := n.Now.Add(n.latency())
		k := [2]int{from, to}
		if last := n.fifo[k]; !at.After(last) {
			at = last.Add(time.Nanosecond)
		}
		n.fifo[k] = at
		n.push(&packet{at: at, from: from, to: to, data: data})
	}
}

// Broadcast queues data from node from to every other connected node, each
// copy independently lost, duplicated and delayed.
func (n *Network) Broadcast(from int, data []byte) {
	n.account(data)
	if n.dropFrom[from] {
		n.Stats.Lost++
		return
	}
	for to := range n.Nodes {
		if to == from || n.cut[key2(from, to)] || n.lose() {
			continue
		}
		copies := 1
		if n.Opts.Dup > 0 && n.Rand.Float64() < n.Opts.Dup {
			copies = 2
			n.Stats.Duplicated++
		}
		for range copies {
			n.push(&packet{at: n.Now.Add(n.latency()), from: from, to: to, data: data})
		}
	}
}

func (n *Network) account(data []byte) {
	n.Stats.Msgs++
	n.Stats.Bytes += uint64(len(data))
	t := replica.PeekType(data)
	n.Stats.ByType[t]++
	n.Stats.BytesByType[t] += uint64(len(data))
}

func (n *Network) lose() bool {
	if n.Opts.Loss > 0 && n.Rand.Float64() < n.Opts.Loss {
		n.Stats.Lost++
		return true
	}
	return false
}

func (n *Network) push(p *packet) {
	n.seq++
	p.seq = n.seq
	heap.Push(&n.q, p)
}

// process drains a replica's Ready: the log first, then the network.
func (n *Network) process(nd *Node) {
	if nd.R == nil || nd.Crashed {
		return
	}
	for nd.R.HasReady() {
		rd := nd.R.Ready()
		nd.Log = append(nd.Log, rd.Persist...)
		for _, o := range rd.Broadcast {
			n.Broadcast(nd.idx, o.Data)
		}
		for _, d := range rd.Send {
			if j, ok := n.byID[d.To]; ok {
				n.Send(nd.idx, j, d.Data)
			}
		}
		nd.Applied += len(rd.Applied)
		nd.Alerts = append(nd.Alerts, rd.Alerts...)
		nd.Presence = append(nd.Presence, rd.Presence...)
		nd.R.Advance()
	}
}

// Process drains node i's Ready (after calling inputs on it directly).
func (n *Network) Process(i int) { n.process(n.Nodes[i]) }

// Pending returns the number of messages in flight.
func (n *Network) Pending() int { return len(n.q) }

// RunFor advances the clock by d, delivering messages and ticking every
// node at each tick boundary.
func (n *Network) RunFor(d time.Duration) {
	end := n.Now.Add(d)
	for {
		next := n.nextTick
		if len(n.q) > 0 && n.q[0].at.Before(next) {
			next = n.q[0].at
		}
		if next.After(end) {
			break
		}
		n.Now = next
		if len(n.q) > 0 && !n.q[0].at.After(next) && n.q[0].at.Before(n.nextTick) {
			n.deliver(heap.Pop(&n.q).(*packet))
			continue
		}
		n.tick()
	}
	n.Now = end
}

// Deliver delivers in-flight messages (no ticks, the clock moves to each
// delivery) until none are left or max have been delivered. It returns
// the number delivered.
func (n *Network) Deliver(max int) int {
	k := 0
	for len(n.q) > 0 && k < max {
		p := heap.Pop(&n.q).(*packet)
		if p.at.After(n.Now) {
			n.Now = p.at
		}
		n.deliver(p)
		k++
	}
	return k
}

func (n *Network) tick() {
	for _, nd := range n.Nodes {
		if nd.Crashed {
			continue
		}
		switch {
		case nd.R != nil:
			nd.R.Tick(n.Now)
			n.process(nd)
		case nd.Handler != nil:
			nd.Handler.Tick(n, nd)
		}
	}
	n.nextTick = n.nextTick.Add(n.Opts.Tick)
}

// TickAll ticks every node once at the current time.
func (n *Network) TickAll() {
	for _, nd := range n.Nodes {
		if nd.Crashed {
			continue
		}
		switch {
		case nd.R != nil:
			nd.R.Tick(n.Now)
			n.process(nd)
		case nd.Handler != nil:
			nd.Handler.Tick(n, nd)
		}
	}
}

func (n *Network) deliver(p *packet) {
	to := n.Nodes[p.to]
	if to.Crashed || n.cut[key2(p.from, p.to)] {
		return
	}
	n.Stats.Delivered++
	from := n.Nodes[p.from].ID
	switch {
	case to.R != nil:
		_ = to.R.Step(from, p.data)
		n.process(to)
	case to.Handler != nil:
		to.Handler.Step(n, to, from, p.data)
	}
}

// Honest returns the live honest replicas' nodes.
func (n *Network) Honest() []*Node {
	var out []*Node
	for _, nd := range n.Nodes {
		if nd.R != nil && !nd.Crashed {
			out = append(out, nd)
		}
	}
	return out
}

// Converged reports whether every live honest replica has the same heads
// and state hash.
func (n *Network) Converged() bool {
	hs := n.Honest()
	if len(hs) == 0 {
		return true
	}
	h0, v0 := hs[0].R.Doc().StateHash(), hs[0].R.Doc().Heads()
	for _, nd := range hs[1:] {
		if nd.R.Doc().StateHash() != h0 || !nd.R.Doc().Heads().Equal(v0) {
			return false
		}
	}
	return true
}

// RunUntilConverged runs in steps of one tick until Converged or max
// elapses; it returns the time taken and whether it
// converged.
func (n *Network) RunUntilConverged(max time.Duration) (time.Duration, bool) {
	start := n.Now
	for n.Now.Sub(start) < max {
		if n.Converged() {
			return n.Now.Sub(start), true
		}
		n.RunFor(n.Opts.Tick)
	}
	return n.Now.Sub(start), n.Converged()
}

// Write proposes ops at node i and processes its Ready (the ops become a
// change at the node's next tick, or at once with FlushOnReady).
func (n *Network) Write(i int, ops ...crdt.Op) error {
	if err := n.Nodes[i].R.Propose(ops...); err != nil {
		return err
	}
	n.process(n.Nodes[i])
	return nil
}

// Flush ticks node i at the current time so its pending ops are signed and
// sent.
func (n *Network) Flush(i int) {
	n.Nodes[i].R.Tick(n.Now)
	n.process(n.Nodes[i])
}

// DropBroadcastsFrom makes every broadcast from node i lost while drop is
// set (a publish that reached no one).
func (n *Network) DropBroadcastsFrom(i int, drop bool) { n.dropFrom[i] = drop }

// Equivocate makes node i's author sign two conflicting changes (same seq,
// same prev) and gossips the first to the nodes in a and the second to the
// nodes in b. Node i's own replica holds neither. It returns the two IDs.
func (n *Network) Equivocate(i int, a, b []int) (crdt.ID, crdt.ID, error) {
	nd := n.Nodes[i]
	var envs [2]*bft.Envelope
	for k, v := range []string{"left", "right"} {
		c, err := nd.R.Doc().Prepare([]crdt.Op{crdt.Update("fork", "row", "side", crdt.String(v))})
		if err != nil {
			return crdt.ID{}, crdt.ID{}, err
		}
		if envs[k], err = bft.Sign(nd.Key, c); err != nil {
			return crdt.ID{}, crdt.ID{}, err
		}
	}
	for k, group := range [][]int{a, b} {
		msg := replica.MustEncode(&replica.Message{Type: replica.MsgChange, Items: [][]byte{envs[k].Encode()}})
		for _, j := range group {
			n.Send(i, j, msg)
		}
	}
	return envs[0].ID, envs[1].ID, nil
}

// SetPresenceAll makes every live honest replica set ns/key to its own
// name, and processes their output.
func (n *Network) SetPresenceAll(ns, key string) error {
	for _, nd := range n.Honest() {
		if err := nd.R.SetPresence(ns, key, crdt.String(string(nd.ID))); err != nil {
			return err
		}
		n.process(nd)
	}
	return nil
}
