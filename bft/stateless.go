package bft

import (
	"encoding/binary"
	"fmt"

	"github.com/convergenode/convergenode/crdt"
)

// CheckStateless is stage 1 of the gate: the checks that depend only on the
// bytes and the document ID, so every honest node gives the same answer
// (a gossipsub validator returns Reject on a rejection). In order, cheapest
// first:
//
//  1. size: at most [MaxEnvelopeSize] bytes, change at most crdt.MaxChangeSize;
//  2. framing: version, minimal length, no trailing bytes;
//  3. document: the change's doc ID (a prefix of the change bytes) is docID;
//  4. canonical decoding of the change (crdt.DecodeChange: limits, field
//     rules, re-encodes to the same bytes);
//  5. ID: BLAKE3 of the change bytes equals the claimed ID;
//  6. signature: [Verify] of the ID under Change.Author.
//
// It returns the checked envelope, or a rejection whose reason is one of
// RejectBadSize, RejectBadEncoding, RejectWrongDoc, RejectBadID and
// RejectBadSignature (all of which [Reason.Penalize]). It is a pure
// function, safe to call from many goroutines; it does not retain b.
func CheckStateless(docID string, b []byte) (*Envelope, *Rejection) {
	return CheckStatelessCached(docID, b, nil)
}

// CheckStatelessCached is [CheckStateless] with the signature verified
// through cache ([SigCache.Verify]; nil means no cache). It gives the same
// answer as CheckStateless for every input; a cache hit only skips the
// Ed25519 arithmetic for a (key, ID, signature) triple that verified
// before. Safe for concurrent use, like the cache.
func CheckStatelessCached(docID string, b []byte, cache *SigCache) (*Envelope, *Rejection) {
	return checkStateless(docID, b, true, cache)
}

// checkStateless is CheckStatelessCached; copyB false makes the envelope
// keep b itself as its wire form (Raw pointing into it) instead of a copy.
func checkStateless(docID string, b []byte, copyB bool, cache *SigCache) (*Envelope, *Rejection) {
	decode := decodeWire
	if copyB {
		decode = decodeEnvelope
	}
	e, rej := decode(b)
	if rej != nil {
		return nil, rej
	}
	if rej := checkDocPrefix(docID, e); rej != nil {
		return nil, rej
	}
	c, err := crdt.DecodeChange(e.Raw)
	if err != nil {
		return nil, reject(RejectBadEncoding, e.ID, fmt.Errorf("%w: %w", ErrBadEncoding, err))
	}
	e.Change = c
	if rej := e.verifyIDSig(cache); rej != nil {
		return nil, rej
	}
	return e, nil
}

// checkDocPrefix compares the doc ID at the start of the change bytes with
// docID without decoding the rest.
func checkDocPrefix(docID string, e *Envelope) *Rejection {
	n, k := binary.Uvarint(e.Raw)
	if k <= 0 || n > uint64(len(e.Raw)-k) {
		return rejectf(RejectBadEncoding, e.ID, ErrBadEncoding, "truncated doc ID")
	}
	if string(e.Raw[k:k+int(n)]) != docID {
		got := e.Raw[k : k+int(n)]
		if len(got) > 64 {
			got = got[:64]
		}
		return rejectf(RejectWrongDoc, e.ID, ErrWrongDoc, "change for doc %q, want %q", got, docID)
	}
	return nil
}
