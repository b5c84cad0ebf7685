package bft

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/convergenode/convergenode/crdt"
)

// Errors returned by signing, decoding and proof verification. Rejections
// by the gate are [*Rejection] values that wrap one of these.
var (
	ErrWrongKey        = errors.New("bft: private key does not match the change author")
	ErrBadSignature    = errors.New("bft: bad signature")
	ErrBadID           = errors.New("bft: change ID does not match its encoding")
	ErrBadEncoding     = errors.New("bft: bad encoding")
	ErrTooLarge        = errors.New("bft: over a size limit")
	ErrWrongDoc        = errors.New("bft: change for another document")
	ErrBadLamport      = errors.New("bft: bad lamport time")
	ErrBadSeq          = errors.New("bft: bad sequence number or prev")
	ErrNotWriter       = errors.New("bft: author is not a writer")
	ErrBadParent       = errors.New("bft: a parent was refused")
	ErrBufferFull      = errors.New("bft: causal buffer full")
	ErrEvicted         = errors.New("bft: evicted from the causal buffer")
	ErrExpired         = errors.New("bft: expired in the causal buffer")
	ErrNotEquivocation = errors.New("bft: not an equivocation")
	ErrApply           = errors.New("bft: the document refused the change")
)

// Sign signs change c with key and returns its envelope. The key's public
// half must be c.Author. The signed message is exactly the 32-byte change
// ID, which is already domain-separated ("convergenode/change/v1"), so
// other layers signing with the same key must sign messages that can never
// be a change ID (use their own hash domain).
//
// The returned envelope is marked as checked, so [Gate.Receive] and
// [Gate.Local] do not verify it again. c must not be modified afterwards.
func Sign(key ed25519.PrivateKey, c *crdt.Change) (*Envelope, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("bft: sign: %w: key is %d bytes", ErrWrongKey, len(key))
	}
	// The public key is the second half of an ed25519.PrivateKey.
	if string(key[32:]) != string(c.Author[:]) {
		return nil, fmt.Errorf("bft: sign: %w", ErrWrongKey)
	}
	raw, err := c.Encode()
	if err != nil {
		return nil, fmt.Errorf("bft: sign: %w", err)
	}
	e := &Envelope{Change: c, ID: crdt.HashChange(raw), Raw: raw, checked: true}
	copy(e.Sig[:], ed25519.Sign(key, e.ID[:]))
	e.setWire(e.Encode())
	return e, nil
}

// Verify reports whether sig is author's signature of the change ID id
// under the protocol's verification rule: exactly the Go standard
// library's [ed25519.Verify] (see the package documentation).
func Verify(author crdt.Author, id crdt.ID, sig *[64]byte) bool {
	return ed25519.Verify(author[:], id[:], sig[:])
}

// AuthorOf returns the author key of an Ed25519 public key.
func AuthorOf(pub ed25519.PublicKey) crdt.Author {
	var a crdt.Author
	copy(a[:], pub)
	return a
}
