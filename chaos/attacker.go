package chaos

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/node"
	"github.com/convergenode/convergenode/replica"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"lukechampine.com/blake3"
)

// Topic names one of a document's gossip topics, as the node names them.
type Topic string

// The topics of a document.
const (
	TopicChanges   Topic = "changes"
	TopicEphemeral Topic = "ephemeral"
	TopicEvidence  Topic = "evidence"
)

// topicName is the node's gossip topic name for doc.
func topicName(doc string, t Topic) string { return "/convergenode/doc/" + doc + "/" + string(t) }

// Mode is how an attacker treats what it receives.
type Mode uint8

const (
	// ModeRelay relays gossip like an honest peer and ignores sync
	// messages (it never starts or answers a reconciliation).
	ModeRelay Mode = iota
	// ModeCensor receives everything and forwards nothing: its gossip
	// validator drops every message (so it is never relayed) and it
	// never answers a sync message. It still sits in the honest meshes.
	ModeCensor
	// ModeLiar answers every reconciliation with lies: a hello claiming
	// heads that do not exist, then a batch of forged changes; needs are
	// answered with garbage.
	ModeLiar
	// ModePoison races every honest change it receives: it does not relay
	// it but publishes a tampered copy under the same change ID, so that
	// peers it reaches first mark the ID as seen and drop the genuine
	// change as a duplicate. (Its own gossipsub uses a hash of the data as
	// message ID, or it would drop its copy itself.)
	ModePoison
)

// Attacker is a hostile peer: a libp2p host on the cluster's mocknet with
// the node's own stack (gossipsub with the node's message IDs and no
// pubsub signatures, the sync stream protocol and its framing, the
// replica wire codec) and no honest driver: it publishes and sends the raw
// bytes it is told to.
type Attacker struct {
	c    *Cluster
	m    *Member
	mode Mode
	h    host.Host
	ps   *pubsub.PubSub

	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	topics map[string]*pubsub.Topic
	subs   []*pubsub.Subscription
	out    map[peer.ID]*syncOut
	chains map[uint64]*chain
	rnd    *rand.Rand
	// captured holds the gossip messages seen on other documents' topics
	// (material for replays).
	captured map[string][][]byte

	// Received counts the gossip and sync messages that reached it.
	Received atomic.Int64
	// Poisoned counts tampered copies published by a ModePoison attacker.
	Poisoned atomic.Int64
	// SyncIn counts sync messages received.
	SyncIn atomic.Int64
	sent   atomic.Int64
}

type syncOut struct {
	mu sync.Mutex
	st network.Stream
	w  *bufio.Writer
}

// AddAttackers starts n attackers in mode, each subscribed to the
// cluster's document topics, and wires them to the desired graph as
// WireFull or Wire says.
func (c *Cluster) AddAttackers(ctx context.Context, n int, mode Mode) ([]*Attacker, error) {
	var out []*Attacker
	for range n {
		m := c.newMember()
		a, err := c.newAttacker(m, mode)
		if err != nil {
			return out, err
		}
		c.mu.Lock()
		m.Attacker = a
		c.mu.Unlock()
		out = append(out, a)
	}
	return out, c.apply()
}

func (c *Cluster) newAttacker(m *Member, mode Mode) (*Attacker, error) {
	h, err := c.addHost(m)
	if err != nil {
		return nil, err
	}
	a := &Attacker{c: c, m: m, mode: mode, h: h, topics: map[string]*pubsub.Topic{},
		out: map[peer.ID]*syncOut{}, chains: map[uint64]*chain{}, captured: map[string][][]byte{}}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	idFn := messageID
	if mode == ModePoison {
		idFn = func(m *pb.Message) string { h := blake3.Sum256(m.Data); return string(h[:]) }
	}
	a.ps, err = pubsub.NewGossipSub(a.ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(idFn),
		pubsub.WithFloodPublish(true),
		pubsub.WithMaxMessageSize(32<<20),
		pubsub.WithValidateQueueSize(4096),
		pubsub.WithPeerOutboundQueueSize(4096),
	)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("chaos: attacker gossipsub: %w", err)
	}
	h.SetStreamHandler(node.SyncProtocol, a.handleSync)
	for _, t := range []Topic{TopicChanges, TopicEphemeral, TopicEvidence} {
		if _, err := a.join(c.cfg.Doc, t); err != nil {
			a.Close()
			return nil, err
		}
	}
	return a, nil
}

// messageID is the node's gossipsub message ID function.
func messageID(m *pb.Message) string {
	if id := replica.GossipID(m.Data); id != "" && len(m.GetTopic()) > 8 && m.GetTopic()[len(m.GetTopic())-8:] == "/changes" {
		return id
	}
	h := blake3.Sum256(m.Data)
	return string(h[:])
}

// errNoGossip is returned by the gossip methods of a hostile node's
// attacker: the node owns the host's gossipsub.
var errNoGossip = errors.New("chaos: a hostile node's attacker has no gossip of its own")

// AddHostileNodes starts n real nodes (node.New with the honest core: they
// write, gossip and reconcile like any node) whose libp2p hosts their
// attackers also use to open extra sync streams and send hostile messages
// on them (Send, SendRaw: lies, forged changes, oversized frames). Their
// gossip methods return an error: gossipsub belongs to the node.
func (c *Cluster) AddHostileNodes(ctx context.Context, n int) ([]*Attacker, error) {
	var out []*Attacker
	for range n {
		m := c.newMember()
		m.Store = node.NewMemStorage()
		if err := c.start(ctx, m, m.Store); err != nil {
			return out, err
		}
		a := &Attacker{c: c, m: m, mode: ModeRelay, h: m.Node().Host(), topics: map[string]*pubsub.Topic{},
			out: map[peer.ID]*syncOut{}, chains: map[uint64]*chain{}, captured: map[string][][]byte{}}
		a.ctx, a.cancel = context.WithCancel(context.Background())
		c.mu.Lock()
		m.Attacker = a
		c.mu.Unlock()
		out = append(out, a)
	}
	return out, c.apply()
}

// join joins and subscribes to one topic of doc (once).
func (a *Attacker) join(doc string, t Topic) (*pubsub.Topic, error) {
	if a.ps == nil {
		return nil, errNoGossip
	}
	name := topicName(doc, t)
	a.mu.Lock()
	defer a.mu.Unlock()
	if top, ok := a.topics[name]; ok {
		return top, nil
	}
	self := a.h.ID()
	censor := a.mode == ModeCensor
	val := func(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if from == self {
			return pubsub.ValidationAccept
		}
		a.Received.Add(1)
		if doc != a.c.cfg.Doc {
			a.mu.Lock()
			if len(a.captured[doc]) < 1024 {
				a.captured[doc] = append(a.captured[doc], append([]byte(nil), m.Data...))
			}
			a.mu.Unlock()
		}
		if censor {
			return pubsub.ValidationIgnore // received, never forwarded
		}
		if a.mode == ModePoison && doc == a.c.cfg.Doc && t == TopicChanges {
			if poisoned := a.poison(m.Data); poisoned != nil {
				go a.Publish(a.ctx, TopicChanges, poisoned)
				a.Poisoned.Add(1)
				return pubsub.ValidationIgnore
			}
		}
		return pubsub.ValidationAccept
	}
	if err := a.ps.RegisterTopicValidator(name, val); err != nil {
		return nil, fmt.Errorf("chaos: attacker validator: %w", err)
	}
	top, err := a.ps.Join(name)
	if err != nil {
		return nil, fmt.Errorf("chaos: attacker join %s: %w", name, err)
	}
	sub, err := top.Subscribe()
	if err != nil {
		return nil, fmt.Errorf("chaos: attacker subscribe %s: %w", name, err)
	}
	a.topics[name] = top
	a.subs = append(a.subs, sub)
	go func() { // drain: the attacker has no use for the messages
		for {
			if _, err := sub.Next(a.ctx); err != nil {
				return
			}
		}
	}()
	return top, nil
}

// ID returns the attacker's peer ID.
func (a *Attacker) ID() peer.ID { return a.h.ID() }

// Member returns the attacker's cluster member.
func (a *Attacker) Member() *Member { return a.m }

// Host returns the attacker's libp2p host.
func (a *Attacker) Host() host.Host { return a.h }

// Sent returns how many messages the attacker published or sent.
func (a *Attacker) Sent() int64 { return a.sent.Load() }

// Publish publishes data on topic t of the cluster's document.
func (a *Attacker) Publish(ctx context.Context, t Topic, data []byte) error {
	return a.PublishOn(ctx, a.c.cfg.Doc, t, data)
}

// PublishOn publishes data on topic t of document doc.
func (a *Attacker) PublishOn(ctx context.Context, doc string, t Topic, data []byte) error {
	top, err := a.join(doc, t)
	if err != nil {
		return err
	}
	a.sent.Add(1)
	return top.Publish(ctx, data)
}

// Captured returns the gossip messages the attacker has seen on document
// doc's topics (after a Watch).
func (a *Attacker) Captured(doc string) [][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([][]byte(nil), a.captured[doc]...)
}

// Watch subscribes to document doc's changes topic so Captured collects
// its messages.
func (a *Attacker) Watch(doc string) error {
	_, err := a.join(doc, TopicChanges)
	return err
}

// SendFrame writes one raw frame body (uvarint doc length, doc, message)
// with its length prefix on the attacker's sync stream to p. A wrong
// length prefix is the caller's business: see SendRaw.
func (a *Attacker) Send(ctx context.Context, p peer.ID, msg []byte) error {
	return a.SendRaw(ctx, p, appendFrame(nil, a.c.cfg.Doc, msg))
}

// SendRaw writes raw bytes on the attacker's sync stream to p, opening
// the stream if needed.
func (a *Attacker) SendRaw(ctx context.Context, p peer.ID, raw []byte) error {
	a.mu.Lock()
	o, ok := a.out[p]
	if !ok {
		o = &syncOut{}
		a.out[p] = o
	}
	a.mu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.st != nil && o.st.Conn().IsClosed() {
		o.st.Reset()
		o.st = nil
	}
	if o.st == nil {
		st, err := a.h.NewStream(ctx, p, node.SyncProtocol)
		if err != nil {
			return fmt.Errorf("chaos: attacker sync stream: %w", err)
		}
		o.st, o.w = st, bufio.NewWriter(st)
	}
	a.sent.Add(1)
	if _, err := o.w.Write(raw); err != nil {
		o.st.Reset()
		o.st = nil
		return err
	}
	if err := o.w.Flush(); err != nil {
		o.st.Reset()
		o.st = nil
		return err
	}
	return nil
}

// appendFrame appends one sync frame (node.SyncProtocol's framing).
func appendFrame(dst []byte, doc string, msg []byte) []byte {
	n := uvarintLen(uint64(len(doc))) + len(doc) + len(msg)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = binary.AppendUvarint(dst, uint64(len(doc)))
	dst = append(dst, doc...)
	return append(dst, msg...)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// handleSync reads the sync stream an honest node opened to the attacker.
func (a *Attacker) handleSync(st network.Stream) {
	from := st.Conn().RemotePeer()
	r := bufio.NewReader(st)
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			st.Reset()
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > 64<<20 {
			st.Reset()
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			st.Reset()
			return
		}
		a.Received.Add(1)
		a.SyncIn.Add(1)
		l, k := binary.Uvarint(body)
		if k <= 0 || l > uint64(len(body)-k) {
			continue
		}
		doc, msg := string(body[k:k+int(l)]), body[k+int(l):]
		if doc != a.c.cfg.Doc || a.mode != ModeLiar {
			continue // relay and censor modes never answer
		}
		a.lie(from, msg)
	}
}

// poison returns a tampered copy of a change message under the same
// change ID, or nil if msg is not a change.
func (a *Attacker) poison(msg []byte) []byte {
	m, err := replica.DecodeMessage(msg)
	if err != nil || m.Type != replica.MsgChange {
		return nil
	}
	env, err := bft.DecodeEnvelope(m.Items[0])
	if err != nil {
		return nil
	}
	raw := append([]byte(nil), env.Raw...)
	raw[len(raw)-1] ^= 0x01
	t := &bft.Envelope{ID: env.ID, Sig: env.Sig, Raw: raw}
	return changeMsg(t.Encode())
}

// lie answers one reconciliation message with lies.
func (a *Attacker) lie(to peer.ID, msg []byte) {
	m, err := replica.DecodeMessage(msg)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(a.ctx, 5*time.Second)
	defer cancel()
	switch m.Type {
	case replica.MsgHello:
		if m.Reply {
			return
		}
		fake := crdt.SortIDs([]crdt.ID{a.randID(), a.randID(), a.randID()})
		a.Send(ctx, to, replica.MustEncode(&replica.Message{Type: replica.MsgHello, Session: m.Session, Reply: true, IDs: fake}))
		// The "stream" of changes the lie promised: forgeries.
		var items [][]byte
		for range 3 {
			items = append(items, a.forgedEnvelope())
		}
		a.Send(ctx, to, replica.MustEncode(&replica.Message{Type: replica.MsgChanges, Session: m.Session, Last: true, Items: items}))
	case replica.MsgNeeds:
		a.Send(ctx, to, replica.MustEncode(&replica.Message{Type: replica.MsgChanges, Session: m.Session, Reply: true, Last: true,
			Items: [][]byte{a.garbage(200)}}))
	}
}

// Close stops the attacker and closes its host.
func (a *Attacker) Close() error {
	a.cancel()
	a.mu.Lock()
	for _, o := range a.out {
		if o.st != nil {
			o.st.Reset()
		}
	}
	a.mu.Unlock()
	if a.ps == nil {
		return nil // a hostile node's host belongs to its node
	}
	err := a.h.Close()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
