package bft

import (
	"fmt"
	"strconv"

	"github.com/convergenode/convergenode/crdt"
)

// Reason names why the gate refused or dropped a change. The numbers are
// stable (they appear in metrics and alerts) and never reused.
type Reason uint8

// The reasons. Stage 1 (stateless) reasons come first; see [Reason.Penalize].
const (
	RejectNone         Reason = iota // not a rejection
	RejectBadSize                    // input over the size limits
	RejectBadEncoding                // not a canonical envelope or change encoding
	RejectWrongDoc                   // the change names another document
	RejectBadID                      // the claimed ID is not the hash of the change
	RejectBadSignature               // the Ed25519 signature does not verify under the author key
	RejectBadLamport                 // lamport != 1 + max(parents' last lamport)
	RejectBadSeq                     // seq/prev do not continue the author's chain in the causal past
	RejectNotWriter                  // the author is not in the writer set as of the causal past
	RejectBadParent                  // a parent was refused, so the change can never be valid
	RejectBufferFull                 // the causal buffer quota for the peer, author or total is used up
	RejectEvicted                    // dropped from a full causal buffer to make room
	RejectExpired                    // waited in the causal buffer longer than the TTL
	RejectApply                      // the document refused the change (broken invariant)

	numReasons // keep last
)

// NumReasons is the number of defined reasons including RejectNone; valid
// reasons are below it, so it sizes arrays indexed by Reason.
const NumReasons = int(numReasons)

var reasonNames = [...]string{
	RejectNone:         "none",
	RejectBadSize:      "bad-size",
	RejectBadEncoding:  "bad-encoding",
	RejectWrongDoc:     "wrong-doc",
	RejectBadID:        "bad-id",
	RejectBadSignature: "bad-signature",
	RejectBadLamport:   "bad-lamport",
	RejectBadSeq:       "bad-seq",
	RejectNotWriter:    "not-writer",
	RejectBadParent:    "bad-parent",
	RejectBufferFull:   "buffer-full",
	RejectEvicted:      "evicted",
	RejectExpired:      "expired",
	RejectApply:        "apply-failed",
}

// String returns the reason's stable kebab-case name, e.g. "bad-signature".
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// Penalize reports whether the peer that sent a change refused for this
// reason should be penalised. It is true exactly for the stage 1
// (stateless) reasons: every honest node decides them identically from
// the bytes alone, so only a faulty or Byzantine peer forwards such input.
// Stateful reasons depend on what a node has seen (or on an author's
// misbehaviour an honest forwarder cannot detect) and are never penalised.
func (r Reason) Penalize() bool {
	switch r {
	case RejectBadSize, RejectBadEncoding, RejectWrongDoc, RejectBadID, RejectBadSignature:
		return true
	}
	return false
}

// Err returns the package's sentinel error for the reason (nil for
// RejectNone), for errors.Is tests on rejections and drops.
func (r Reason) Err() error {
	switch r {
	case RejectBadSize:
		return ErrTooLarge
	case RejectBadEncoding:
		return ErrBadEncoding
	case RejectWrongDoc:
		return ErrWrongDoc
	case RejectBadID:
		return ErrBadID
	case RejectBadSignature:
		return ErrBadSignature
	case RejectBadLamport:
		return ErrBadLamport
	case RejectBadSeq:
		return ErrBadSeq
	case RejectNotWriter:
		return ErrNotWriter
	case RejectBadParent:
		return ErrBadParent
	case RejectBufferFull:
		return ErrBufferFull
	case RejectEvicted:
		return ErrEvicted
	case RejectExpired:
		return ErrExpired
	case RejectApply:
		return ErrApply
	}
	return nil
}

// Stateless reports whether r is a stage 1 reason (see [CheckStateless]).
func (r Reason) Stateless() bool { return r.Penalize() }

// Rejection is the typed error for a refused or dropped change: the reason,
// the change (when it could be identified), the peer it came from and the
// underlying cause.
type Rejection struct {
	Reason Reason
	ID     crdt.ID // zero when the input could not be decoded far enough
	From   string  // peer the change came from ("" for local or unknown)
	Err    error   // the cause; wraps one of the package's sentinel errors
}

// Error formats the rejection for logs.
func (r *Rejection) Error() string {
	s := "bft: rejected (" + r.Reason.String() + ")"
	if !r.ID.IsZero() {
		s += " change " + r.ID.Short()
	}
	if r.From != "" {
		s += " from " + strconv.Quote(r.From)
	}
	if r.Err != nil {
		s += ": " + r.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (r *Rejection) Unwrap() error { return r.Err }

// Penalize reports whether the sending peer should be penalised; see
// [Reason.Penalize].
func (r *Rejection) Penalize() bool { return r.Reason.Penalize() }

func reject(reason Reason, id crdt.ID, err error) *Rejection {
	return &Rejection{Reason: reason, ID: id, Err: err}
}

func rejectf(reason Reason, id crdt.ID, base error, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, ID: id, Err: fmt.Errorf("%w: "+format, append([]any{base}, args...)...)}
}
