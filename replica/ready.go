package replica

import (
	"strconv"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/ephemeral"
)

// PeerID names a remote peer. The replica only compares and sorts peer IDs;
// the driver chooses them (the node uses libp2p peer IDs).
type PeerID string

// Topic is one of a document's gossip topics.
type Topic uint8

// The topics. The driver maps them to pubsub topic names
// (".../doc/<id>/changes" and so on).
const (
	TopicChanges   Topic = 1 // MsgChange messages
	TopicEphemeral Topic = 2 // MsgEphemeral messages
	TopicEvidence  Topic = 3 // MsgEvidence messages
)

func (t Topic) String() string {
	switch t {
	case TopicChanges:
		return "changes"
	case TopicEphemeral:
		return "ephemeral"
	case TopicEvidence:
		return "evidence"
	}
	return "topic(" + strconv.Itoa(int(t)) + ")"
}

// Verdict is a pubsub validator's answer.
type Verdict uint8

// The verdicts, matching gossipsub's ValidationResult meanings.
const (
	Accept Verdict = iota // deliver and forward
	Reject                // invalid for every honest node: drop and penalise the sender
	Ignore                // drop without penalty (unknown version, another node's business)
)

func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case Reject:
		return "reject"
	case Ignore:
		return "ignore"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// Outgoing is a message to publish on one of the document's topics.
type Outgoing struct {
	Topic Topic
	Data  []byte // an encoded Message
}

// Direct is a message for one peer over the reliable sync stream.
type Direct struct {
	To   PeerID
	Data []byte // an encoded Message
}

// AlertKind says what an Alert reports.
type AlertKind uint8

// The alert kinds.
const (
	// AlertEquivocation: an author signed two conflicting changes; Proof
	// holds the self-verifying evidence. Raised once per proof.
	AlertEquivocation AlertKind = iota + 1
	// AlertPenalty: a peer sent something invalid or abusive (Reason says
	// what); the driver lowers its score when Penalize is set.
	AlertPenalty
	// AlertNonService: a peer advertised changes it then did not deliver
	// (missing dependencies not served, or a session that timed out).
	AlertNonService
	// AlertDropped: the gate dropped buffered changes (TTL, quota); no one
	// is blamed.
	AlertDropped
)

func (k AlertKind) String() string {
	switch k {
	case AlertEquivocation:
		return "equivocation"
	case AlertPenalty:
		return "penalty"
	case AlertNonService:
		return "non-service"
	case AlertDropped:
		return "dropped"
	}
	return "alert(" + strconv.Itoa(int(k)) + ")"
}

// Alert is something the driver should know about: log it, score the peer,
// show it to the user.
type Alert struct {
	Kind     AlertKind
	Peer     PeerID                 // the peer concerned ("" if none)
	Reason   string                 // stable short reason ("bad-signature", "sync-timeout", ...)
	Penalize bool                   // lower the peer's score (gossipsub)
	Author   crdt.Author            // AlertEquivocation: the equivocating author
	Proof    *bft.EquivocationProof // AlertEquivocation
	IDs      []crdt.ID              // AlertNonService, AlertDropped: the changes concerned (at most 16)
	Count    int                    // events folded into this alert (AlertDropped: changes dropped); at least 1
}

// String formats a for logs and golden files.
func (a Alert) String() string {
	s := a.Kind.String()
	if a.Peer != "" {
		s += " peer=" + string(a.Peer)
	}
	if a.Reason != "" {
		s += " reason=" + a.Reason
	}
	if a.Penalize {
		s += " penalize"
	}
	if a.Kind == AlertEquivocation {
		s += " author=" + a.Author.Short()
	}
	if a.Count > 1 {
		s += " count=" + strconv.Itoa(a.Count)
	}
	return s
}

// maxAlertIDs bounds Alert.IDs.
const maxAlertIDs = 16

// foldAlerts merges the AlertDropped alerts of one Ready that share a peer
// and a reason into one (counting them, keeping the first IDs), so a
// flood of dropped changes is one alert per peer and reason, not one per
// change. Order: first occurrence.
func foldAlerts(as []Alert) []Alert {
	type key struct {
		peer   PeerID
		reason string
	}
	if len(as) == 0 {
		return as
	}
	at := make(map[key]int)
	out := as[:0]
	for _, a := range as {
		if a.Count == 0 {
			a.Count = 1
		}
		if a.Kind != AlertDropped {
			out = append(out, a)
			continue
		}
		k := key{a.Peer, a.Reason}
		if i, ok := at[k]; ok {
			out[i].Count += a.Count
			if room := maxAlertIDs - len(out[i].IDs); room > 0 {
				out[i].IDs = append(out[i].IDs, a.IDs[:min(room, len(a.IDs))]...)
			}
			continue
		}
		at[k] = len(out)
		out = append(out, a)
	}
	return out
}

// Ready is the work the driver must do after some inputs, in this order:
//
//  1. make every Persist entry durable (fsync);
//  2. publish Broadcast and send Send (only after step 1: a change is never
//     visible to others before it is durable locally);
//  3. deliver Applied, Presence and Alerts to the application;
//  4. call Replica.Advance.
//
// Every slice is in a deterministic order and owned by the caller (see
// Replica.Recycle for handing them back).
type Ready struct {
	// Persist holds encoded bft envelopes (bft.Envelope.Encode) of changes
	// accepted since the last Ready, local ones and remote ones, in causal
	// order. Restore takes them back.
	Persist [][]byte
	// Broadcast holds messages to publish on the document's topics.
	Broadcast []Outgoing
	// Send holds messages for single peers (reconciliation, presence
	// snapshots), in the order they must be written to each peer's stream.
	Send []Direct
	// Applied holds what each change applied to the document did, in apply
	// order.
	Applied []crdt.ChangeEvent
	// Presence holds the visible changes to the ephemeral store.
	Presence []ephemeral.Event
	// Alerts holds equivocation proofs, peer penalties and non-service.
	Alerts []Alert
}

// IsEmpty reports whether rd holds nothing to do.
func (rd *Ready) IsEmpty() bool {
	return len(rd.Persist) == 0 && len(rd.Broadcast) == 0 && len(rd.Send) == 0 &&
		len(rd.Applied) == 0 && len(rd.Presence) == 0 && len(rd.Alerts) == 0
}
