package node

import (
	"context"
	"fmt"
	"time"

	"github.com/convergenode/convergenode/replica"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"lukechampine.com/blake3"
)

// Gossip scoring. Thresholds follow the gossipsub v1.1 recommendations:
// below GossipThreshold a peer gets no gossip, below PublishThreshold it
// is not published to, below GraylistThreshold its messages are dropped.
const (
	gossipThreshold   = -10
	publishThreshold  = -50
	graylistThreshold = -80
	// penaltyStep is the app-specific score taken from a peer per
	// penalising alert (equivocation, not serving dependencies). One step
	// graylists the peer.
	penaltyStep = 100
	// invalidWeight is the topic weight of the squared count of stage-1
	// rejected messages.
	invalidWeight = -100
)

// topicName returns the gossip topic of one document.
func topicName(doc string, t topicKind) string {
	return "/convergenode/doc/" + doc + "/" + t.String()
}

func (n *Node) scoreParams() *pubsub.PeerScoreParams {
	return &pubsub.PeerScoreParams{
		Topics:            map[string]*pubsub.TopicScoreParams{},
		AppSpecificScore:  n.appScore,
		AppSpecificWeight: 1,
		// Loopback tests and LANs put many peers on one IP: no colocation
		// penalty.
		IPColocationFactorWeight:  0,
		BehaviourPenaltyWeight:    -1,
		BehaviourPenaltyDecay:     0.9,
		BehaviourPenaltyThreshold: 6,
		DecayInterval:             time.Second,
		DecayToZero:               0.01,
		RetainScore:               10 * time.Minute,
	}
}

// gossipParams are gossipsub's defaults with a mesh of degree d
// (Config.GossipD, or meshD when a benchmark sets it): Dlo = d-1,
// Dhi = 2d, Dscore = 2d/3, Dout = d/2-1 (at least one outbound mesh peer
// from d = 4 on).
func gossipParams(d int) pubsub.GossipSubParams {
	if meshD > 0 {
		d = meshD
	}
	p := pubsub.DefaultGossipSubParams()
	p.D, p.Dlo, p.Dhi, p.Dscore, p.Dout = d, max(1, d-1), 2*d, max(1, d*2/3), max(0, d/2-1)
	return p
}

// meshD overrides Config.GossipD when positive (the benchmarks' -mesh-d).
var meshD = 0

func topicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight:                    1,
		TimeInMeshWeight:               0.01,
		TimeInMeshQuantum:              time.Second,
		TimeInMeshCap:                  10,
		FirstMessageDeliveriesWeight:   0.1,
		FirstMessageDeliveriesDecay:    0.9,
		FirstMessageDeliveriesCap:      100,
		InvalidMessageDeliveriesWeight: invalidWeight,
		InvalidMessageDeliveriesDecay:  0.99,
	}
}

// appScore is gossipsub's app-specific score: the penalties from the
// engines' alerts. Called by pubsub under its score lock; must not block.
func (n *Node) appScore(p peer.ID) float64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.penalty[p].value(time.Now())
}

func (n *Node) startPubsub() error {
	var extra []pubsub.Option
	if t := n.pubsubTracer(); t != nil {
		extra = append(extra, pubsub.WithRawTracer(t))
	}
	ps, err := pubsub.NewGossipSub(n.ctx, n.host, append([]pubsub.Option{
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(n.messageID),
		pubsub.WithFloodPublish(true),
		pubsub.WithGossipSubParams(gossipParams(n.cfg.GossipD)),
		// A gossip message is one replica message (one change, proof or
		// presence batch): nothing larger is valid, so nothing larger is read.
		pubsub.WithMaxMessageSize(replica.MaxMessageSize + 64<<10),
		pubsub.WithValidateQueueSize(1024),
		pubsub.WithPeerOutboundQueueSize(1024),
		pubsub.WithPeerScore(n.scoreParams(), &pubsub.PeerScoreThresholds{
			GossipThreshold:             gossipThreshold,
			PublishThreshold:            publishThreshold,
			GraylistThreshold:           graylistThreshold,
			AcceptPXThreshold:           10,
			OpportunisticGraftThreshold: 2,
		}),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(n.inspectScores), time.Second),
	}, extra...)...)
	if err != nil {
		return fmt.Errorf("node: gossipsub: %w", err)
	}
	n.ps = ps
	return nil
}

func (n *Node) inspectScores(m map[peer.ID]float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.scores)
	for p, s := range m {
		n.scores[p] = s
	}
}

// messageID is gossipsub's message ID: replica.GossipID on a changes topic
// (the change ID bound to the envelope's hash, so a change is one message
// however many peers publish it and a tampered copy cannot take its ID), a
// hash of the data otherwise.
func (n *Node) messageID(m *pb.Message) string {
	t, ok := topicKindOf(m.GetTopic())
	if ok && n.core.msgID != nil {
		if id := n.core.msgID(t, m.Data); id != "" {
			return id
		}
	}
	h := blake3.Sum256(m.Data)
	return string(h[:])
}

// topicKindOf returns the kind of a convergenode topic name.
func topicKindOf(topic string) (topicKind, bool) {
	for t := topicKind(0); t < numTopics; t++ {
		s := "/" + t.String()
		if len(topic) > len(s) && topic[len(topic)-len(s):] == s {
			return t, true
		}
	}
	return 0, false
}

// gossip is one document's three topics.
type gossip struct {
	topics [numTopics]*pubsub.Topic
	subs   [numTopics]*pubsub.Subscription
	events *pubsub.TopicEventHandler
}

// joinGossip registers the validators and joins the topics of d.
func (n *Node) joinGossip(d *Doc) (*gossip, error) {
	g := &gossip{}
	for t := topicKind(0); t < numTopics; t++ {
		name := topicName(d.id, t)
		kind := t
		val := func(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
			if from == n.host.ID() {
				return pubsub.ValidationAccept // our own, already checked by the engine
			}
			if traceHook != nil && kind == topicChanges {
				n.traceMsg(traceValidate, m.Data)
			}
			switch n.core.validate(d.id, kind, m.Data, n.caches) {
			case verdictAccept:
				// Our validator is the topic's only one: gossipsub delivers
				// what it accepts. Hand the message to the loop now rather
				// than after one more trip through gossipsub's event loop
				// (readTopic skips it then).
				if d.tryDeliver(inMsg{from: from.String(), data: m.Data}) {
					m.ValidatorData = deliveredEarly{}
					if traceHook != nil && kind == topicChanges {
						n.traceMsg(traceDelivered, m.Data)
					}
					n.met.gossipIn.Inc()
				}
				return pubsub.ValidationAccept
			case verdictReject:
				n.met.gossipRejected.WithLabelValues(kind.String()).Inc()
				return pubsub.ValidationReject
			}
			return pubsub.ValidationIgnore
		}
		if err := n.ps.RegisterTopicValidator(name, val, pubsub.WithValidatorInline(true)); err != nil {
			g.close(n, d.id)
			return nil, fmt.Errorf("node: validator for %s: %w", name, err)
		}
		top, err := n.ps.Join(name)
		if err != nil {
			g.close(n, d.id)
			return nil, fmt.Errorf("node: join %s: %w", name, err)
		}
		g.topics[t] = top
		if err := top.SetScoreParams(topicScoreParams()); err != nil {
			g.close(n, d.id)
			return nil, fmt.Errorf("node: score params for %s: %w", name, err)
		}
		sub, err := top.Subscribe(pubsub.WithBufferSize(4096))
		if err != nil {
			g.close(n, d.id)
			return nil, fmt.Errorf("node: subscribe %s: %w", name, err)
		}
		g.subs[t] = sub
	}
	ev, err := g.topics[topicChanges].EventHandler()
	if err != nil {
		g.close(n, d.id)
		return nil, fmt.Errorf("node: topic events: %w", err)
	}
	g.events = ev
	return g, nil
}

func (g *gossip) close(n *Node, doc string) {
	if g.events != nil {
		g.events.Cancel()
	}
	for t := topicKind(0); t < numTopics; t++ {
		if g.subs[t] != nil {
			g.subs[t].Cancel()
		}
		if g.topics[t] != nil {
			g.topics[t].Close()
		}
		n.ps.UnregisterTopicValidator(topicName(doc, t))
	}
}

// deliveredEarly marks (in pubsub.Message.ValidatorData) a message the
// validator has already queued for the document's loop.
type deliveredEarly struct{}

// tryDeliver queues an input for the loop if the inbox has room.
func (d *Doc) tryDeliver(m inMsg) bool {
	select {
	case d.inbox <- m:
		return true
	default:
		return false
	}
}

// readTopic forwards messages from one subscription to the document's
// inbox until ctx ends, except those the validator already queued.
func (n *Node) readTopic(ctx context.Context, d *Doc, sub *pubsub.Subscription) {
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return
		}
		if m.ReceivedFrom == n.host.ID() {
			continue
		}
		if _, ok := m.ValidatorData.(deliveredEarly); ok {
			continue // the validator handed it to the loop
		}
		if traceHook != nil {
			n.traceMsg(traceDelivered, m.Data)
		}
		n.met.gossipIn.Inc()
		if !d.deliver(ctx, inMsg{from: m.ReceivedFrom.String(), data: m.Data}) {
			return
		}
	}
}

// readPeerEvents turns topic joins and leaves into PeerUp and PeerDown.
func (n *Node) readPeerEvents(ctx context.Context, d *Doc, ev *pubsub.TopicEventHandler) {
	for {
		e, err := ev.NextPeerEvent(ctx)
		if err != nil {
			return
		}
		m := inMsg{from: e.Peer.String(), peerEvent: peerUp}
		if e.Type == pubsub.PeerLeave {
			m.peerEvent = peerDown
		}
		n.log.Debug("topic peer event", "doc", d.id, "peer", e.Peer, "up", m.peerEvent == peerUp)
		if !d.deliver(ctx, m) {
			return
		}
	}
}
