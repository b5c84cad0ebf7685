package node

import (
	"encoding/hex"
	"sync/atomic"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/replica"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"
)

// traceStage is one step of a change's way through a node, from the local
// write to the subscribers of every other node (see traceHook).
type traceStage uint8

const (
	// On the writer.
	traceTaken     traceStage = iota // the loop took the oldest write of the change from Doc's queue
	traceReady                       // the loop took the Ready holding the change (signed, applied)
	tracePersist                     // the persister started on the batch holding that Ready
	traceDurable                     // the batch's append (and fsync) returned
	tracePublished                   // Publish returned
	// On the writer, for each other node p (see traceHook).
	traceSendQueued  // gossipsub queued the message for p
	traceSendWritten // gossipsub wrote it to p's stream
	// On every other node.
	traceRecvRPC       // gossipsub's loop read the first RPC carrying it
	traceValidateQueue // the first copy entered gossipsub's validation pipeline
	traceValidate      // the gossipsub validator was called (first copy)
	traceDelivered     // the subscription handed the message to readTopic
	traceStep          // the loop stepped the message into the engine
	traceRReady        // the loop took the Ready that applied the change
	traceRPersist      // the persister started on the batch holding that Ready
	traceRDurable      // the batch's append returned
	traceCallback      // the subscribers are about to be called
	numTraceStages
)

var traceStageNames = [...]string{"taken", "ready", "persist", "durable", "published",
	"send-queued", "send-written", "recv-rpc", "validate-queue", "validate", "delivered", "step", "r-ready", "r-persist", "r-durable", "callback"}

func (s traceStage) String() string { return traceStageNames[s] }

// traceHook, when set, is called with the time a change reaches each
// traceStage on node n (to is the peer for traceSendQueued and
// traceSendWritten, empty otherwise). It is nil outside the latency
// benchmark (BenchmarkNodeLatency10x1000 -args -trace), which sets it
// before any node starts: the checks cost one load of a nil function per
// stage.
var traceHook func(n *Node, s traceStage, id crdt.ID, to peer.ID, t time.Time)

// traceMsg reports a stage for a gossip message when it carries a change.
func (n *Node) traceMsg(s traceStage, data []byte) {
	if id, ok := gossipChangeID(data); ok {
		traceHook(n, s, id, "", time.Now())
	}
}

// pubsubTracer returns gossipsub's raw tracer while tracing, nil otherwise.
func (n *Node) pubsubTracer() pubsub.RawTracer {
	if traceHook == nil {
		return nil
	}
	return rawTrace{n}
}

// rawTrace reports gossipsub's queueing of changes to traceHook.
type rawTrace struct{ n *Node }

func (r rawTrace) rpc(rpc *pubsub.RPC, s traceStage, to peer.ID) {
	now := time.Now()
	for _, m := range rpc.Publish {
		if id, ok := gossipChangeID(m.Data); ok {
			traceHook(r.n, s, id, to, now)
		}
	}
}

// traceGossip counts gossipsub's traffic while tracing (all nodes).
var traceGossip struct {
	rpcsOut, msgsOut, bytesOut, ihaveIDs, iwantIDs, dups, rpcsIn, dropped atomic.Int64
}

func (r rawTrace) SendRPC(rpc *pubsub.RPC, p peer.ID) {
	traceGossip.rpcsOut.Add(1)
	traceGossip.msgsOut.Add(int64(len(rpc.Publish)))
	traceGossip.bytesOut.Add(int64(proto.Size(&rpc.RPC)))
	if c := rpc.Control; c != nil {
		for _, ih := range c.Ihave {
			traceGossip.ihaveIDs.Add(int64(len(ih.MessageIDs)))
		}
		for _, iw := range c.Iwant {
			traceGossip.iwantIDs.Add(int64(len(iw.MessageIDs)))
		}
	}
	r.rpc(rpc, traceSendQueued, p)
}
func (r rawTrace) SendRPCCompleted(rpc *pubsub.RPC, p peer.ID, _ time.Duration) {
	r.rpc(rpc, traceSendWritten, p)
}
func (r rawTrace) RecvRPC(rpc *pubsub.RPC) {
	traceGossip.rpcsIn.Add(1)
	r.rpc(rpc, traceRecvRPC, "")
}
func (r rawTrace) ValidateMessage(m *pubsub.Message) {
	if m.ReceivedFrom != r.n.host.ID() {
		r.n.traceMsg(traceValidateQueue, m.Data)
	}
}
func (rawTrace) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (rawTrace) OnClosedOutboundStream(peer.ID)           {}
func (rawTrace) Join(string)                              {}
func (rawTrace) Leave(string)                             {}
func (rawTrace) Graft(peer.ID, string)                    {}
func (rawTrace) Prune(peer.ID, string)                    {}
func (rawTrace) DeliverMessage(*pubsub.Message)           {}
func (rawTrace) RejectMessage(*pubsub.Message, string)    {}
func (rawTrace) DuplicateMessage(*pubsub.Message)         { traceGossip.dups.Add(1) }
func (rawTrace) ThrottlePeer(peer.ID)                     {}
func (rawTrace) DropRPC(rpc *pubsub.RPC, _ peer.ID)       { traceGossip.dropped.Add(1) }
func (rawTrace) UndeliverableMessage(*pubsub.Message)     {}

// traceReadyStage reports a stage for every change a Ready applies; local
// selects the node's own changes (true) or the others' (false).
func (n *Node) traceReadyStage(rd *ready, s traceStage, local bool, t time.Time) {
	self := crdt.Author(n.cfg.Key[32:])
	for _, ev := range rd.Applied {
		if (ev.Change != nil && ev.Change.Author == self) == local {
			traceHook(n, s, ev.ID, "", t)
		}
	}
}

// gossipChangeID returns the change ID of a gossip message on the changes
// topic (only the tracing uses it: replica.GossipID hashes the envelope).
func gossipChangeID(data []byte) (crdt.ID, bool) {
	var id crdt.ID
	g := replica.GossipID(data)
	if len(g) < 64 {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(g[:64])); err != nil {
		return id, false
	}
	return id, true
}

// traceReady reports the Ready the loop took: traceTaken (the oldest of
// the pending writes) and traceReady for local changes, traceRReady for
// the others.
func (d *Doc) traceReady(rd *ready, pending []*writeReq) {
	now := time.Now()
	var taken time.Time
	for _, w := range pending {
		if !w.taken.IsZero() && (taken.IsZero() || w.taken.Before(taken)) {
			taken = w.taken
		}
	}
	if !taken.IsZero() {
		d.n.traceReadyStage(rd, traceTaken, true, taken)
	}
	d.n.traceReadyStage(rd, traceReady, true, now)
	d.n.traceReadyStage(rd, traceRReady, false, now)
}

// traceBatch reports a persister stage for every Ready of a batch.
func (d *Doc) traceBatch(batch []*readyBatch, local, remote traceStage) {
	now := time.Now()
	for _, b := range batch {
		d.n.traceReadyStage(&b.rd, local, true, now)
		d.n.traceReadyStage(&b.rd, remote, false, now)
	}
}
