package ephemeral

import (
	"errors"
	"fmt"
)

// CheckStateless runs the checks that need no store state on an encoded
// batch received from the network: canonical decoding and limits, the
// document ID, and the signature. Every honest node decides the same way, so
// a pubsub validator may reject (not just ignore) what it refuses. It is
// safe to call from several goroutines at once. A batch it returns may be
// handed to Store.MergeVerified, which skips the signature check.
func CheckStateless(doc string, p []byte) (*Batch, error) {
	b, err := DecodeBatch(p)
	if err != nil {
		return nil, err
	}
	if b.Doc != doc {
		return nil, fmt.Errorf("%w: %q, want %q", ErrWrongDoc, b.Doc, doc)
	}
	if err := b.Verify(); err != nil {
		return nil, fmt.Errorf("ephemeral: batch from %s at %v: %w", b.Author.Short(), b.Time, err)
	}
	return b, nil
}

// Penalize reports whether err (from DecodeBatch, CheckStateless or
// Store.Merge) shows the sending peer is faulty or malicious: a bad
// signature, a malformed or oversized batch, or another document's batch on
// this document's topic. Duplicates, stale or slightly early batches (clock
// skew), rate and entry limits are not held against the peer that forwarded
// the batch; they can happen to honest peers.
func Penalize(err error) bool {
	for _, e := range []error{ErrBadSignature, ErrWrongDoc, ErrMalformed, ErrTooLarge,
		ErrTruncated, ErrTrailingBytes, ErrNonMinimal} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
