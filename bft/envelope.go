package bft

import (
	"encoding/binary"
	"fmt"

	"github.com/convergenode/convergenode/crdt"
)

// EnvelopeVersion is the first byte of every encoded envelope.
const EnvelopeVersion = 1

// MaxEnvelopeSize bounds an encoded envelope: version, ID, the change's
// length varint (at most 3 bytes for crdt.MaxChangeSize), the change and
// the signature.
const MaxEnvelopeSize = 1 + 32 + 3 + crdt.MaxChangeSize + 64

// minEnvelopeSize is version + ID + a 1-byte length + signature.
const minEnvelopeSize = 1 + 32 + 1 + 64

// Envelope is a signed change: the unit gossiped, stored and passed through
// the gate. Its identity is ID (the change's hash); the signature is not
// part of it, so two envelopes of one change with different valid
// signatures are the same change.
//
// Wire form ([Envelope.Encode]):
//
//	version(1) = 1 | id[32] | uvarint len(raw) (minimal) | raw | sig[64]
//
// id is the sender's claim of HashChange(raw): it lets a receiver drop a
// duplicate before decoding (see [PeekID]) and is checked in stage 1.
//
// An Envelope is immutable once made; callers must not modify it, its
// Change or its Raw bytes.
type Envelope struct {
	Change *crdt.Change // decoded change
	ID     crdt.ID      // crdt.HashChange(Raw)
	Sig    [64]byte     // Ed25519 signature of ID by Change.Author
	Raw    []byte       // canonical encoding of Change

	// checked is set when the ID and signature have been verified
	// (CheckStateless, Sign, Envelope.Check), so the gate skips them.
	checked bool
	// decoded is set when Change was decoded from Raw (DecodeEnvelope), so
	// the two are known to match.
	decoded bool
	// wire is the encoded envelope when known (envelopes made by Sign,
	// decoded from their wire form, or shared by an EnvCache), so Wire
	// need not encode it again; Raw points into it.
	wire []byte
}

// Encode returns the canonical wire form of e.
func (e *Envelope) Encode() []byte {
	return e.AppendEncode(make([]byte, 0, 1+32+3+len(e.Raw)+64))
}

// Wire returns the canonical wire form of e, like [Envelope.Encode], but
// without a copy when e already holds it (envelopes made by [Sign] or
// decoded from their wire form, see [Envelope.Wired]): the result is then
// shared and must not be modified.
func (e *Envelope) Wire() []byte {
	if e.wire != nil {
		return e.wire
	}
	return e.Encode()
}

// Wired returns e if it holds its wire form, which every envelope made by
// [Sign], [DecodeEnvelope], [CheckStateless] or an [EnvCache] does, and
// otherwise a copy of e that holds it, its Raw pointing into it. A holder
// of many envelopes keeps them wired: one buffer each for the change bytes
// and the wire form, and Wire then copies nothing.
func (e *Envelope) Wired() *Envelope {
	if e.wire != nil {
		return e
	}
	c := *e
	c.setWire(e.Encode())
	return &c
}

// setWire makes w, e's canonical wire form, e's wire, and Raw a slice of it.
func (e *Envelope) setWire(w []byte) {
	w = w[:len(w):len(w)]
	end := len(w) - len(e.Sig)
	e.wire, e.Raw = w, w[end-len(e.Raw):end:end]
}

// AppendEncode appends the canonical wire form of e to dst.
func (e *Envelope) AppendEncode(dst []byte) []byte {
	dst = append(dst, EnvelopeVersion)
	dst = append(dst, e.ID[:]...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Raw)))
	dst = append(dst, e.Raw...)
	return append(dst, e.Sig[:]...)
}

// Size returns the length of e's wire form.
func (e *Envelope) Size() int { return 1 + 32 + uvarintLen(uint64(len(e.Raw))) + len(e.Raw) + 64 }

// Check verifies that e.Change encodes to e.Raw, then e's ID and signature
// (the last two stage 1 checks), and marks e as checked. It returns nil or
// a *Rejection. [Gate.Receive] calls it for envelopes not made by
// [CheckStateless] or [Sign].
func (e *Envelope) Check() error {
	if rej := e.check(nil); rej != nil {
		return rej
	}
	return nil
}

// check is Check with signatures verified through cache (nil: none).
func (e *Envelope) check(cache *SigCache) *Rejection {
	if e.checked {
		return nil
	}
	if e.Change == nil {
		return rejectf(RejectBadEncoding, e.ID, ErrBadEncoding, "envelope without change")
	}
	// A caller-built envelope may carry a Change that is not its Raw.
	if !e.decoded {
		if enc, err := e.Change.Encode(); err != nil || string(enc) != string(e.Raw) {
			return rejectf(RejectBadEncoding, e.ID, ErrBadEncoding, "change does not encode to the envelope's bytes")
		}
	}
	return e.verifyIDSig(cache)
}

// verifyIDSig checks the ID and the signature of an envelope whose Change
// was decoded from Raw, and marks it checked. The signature is verified
// through cache (nil: no cache).
func (e *Envelope) verifyIDSig(cache *SigCache) *Rejection {
	if crdt.HashChange(e.Raw) != e.ID {
		return reject(RejectBadID, e.ID, ErrBadID)
	}
	if !cache.Verify(e.Change.Author, e.ID, &e.Sig) {
		return reject(RejectBadSignature, e.ID, ErrBadSignature)
	}
	e.checked = true
	return nil
}

// PeekID returns the change ID an encoded envelope claims, without decoding
// or verifying anything. A receiver may drop input whose claimed ID it
// already holds (that change is known, whatever these bytes are); any other
// use must wait for [CheckStateless].
func PeekID(b []byte) (crdt.ID, bool) {
	var id crdt.ID
	if len(b) < minEnvelopeSize || b[0] != EnvelopeVersion {
		return id, false
	}
	copy(id[:], b[1:33])
	return id, true
}

// DecodeEnvelope decodes an envelope's wire form strictly: the right
// version, a minimal length, a canonical change within the limits and no
// trailing bytes; every accepted input re-encodes to the same bytes. It
// does not check the ID or the signature (see [CheckStateless] and
// [Envelope.Check]). The envelope keeps a copy of the change bytes, not b.
func DecodeEnvelope(b []byte) (*Envelope, error) {
	e, rej := decodeEnvelope(b)
	if rej != nil {
		return nil, rej.Err
	}
	c, err := crdt.DecodeChange(e.Raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadEncoding, err)
	}
	e.Change = c
	e.decoded = true
	return e, nil
}

// decodeEnvelope parses the framing only (not the change) of a copy of b,
// which the envelope keeps as its wire form.
func decodeEnvelope(b []byte) (*Envelope, *Rejection) {
	if len(b) > MaxEnvelopeSize {
		return decodeFraming(b) // the size rejection, without a copy
	}
	return decodeWire(append([]byte(nil), b...))
}

// decodeWire parses the framing of w, which the envelope keeps as its wire
// form, Raw pointing into it (w passed the framing's checks, so it is
// canonical).
func decodeWire(w []byte) (*Envelope, *Rejection) {
	e, rej := decodeFraming(w)
	if rej != nil {
		return nil, rej
	}
	e.wire = w[:len(w):len(w)]
	return e, nil
}

// decodeFraming parses the framing of b (not the change); Raw is a slice
// of b.
func decodeFraming(b []byte) (*Envelope, *Rejection) {
	if len(b) > MaxEnvelopeSize {
		return nil, rejectf(RejectBadSize, crdt.ID{}, ErrTooLarge, "envelope is %d bytes, limit %d", len(b), MaxEnvelopeSize)
	}
	if len(b) < minEnvelopeSize {
		return nil, rejectf(RejectBadEncoding, crdt.ID{}, ErrBadEncoding, "envelope is %d bytes, minimum %d", len(b), minEnvelopeSize)
	}
	if b[0] != EnvelopeVersion {
		return nil, rejectf(RejectBadEncoding, crdt.ID{}, ErrBadEncoding, "envelope version %d", b[0])
	}
	e := &Envelope{}
	copy(e.ID[:], b[1:33])
	n, k := binary.Uvarint(b[33:])
	switch {
	case k <= 0:
		return nil, rejectf(RejectBadEncoding, e.ID, ErrBadEncoding, "bad change length")
	case k != uvarintLen(n):
		return nil, rejectf(RejectBadEncoding, e.ID, ErrBadEncoding, "non-minimal change length")
	case n > crdt.MaxChangeSize:
		return nil, rejectf(RejectBadSize, e.ID, ErrTooLarge, "change is %d bytes, limit %d", n, crdt.MaxChangeSize)
	}
	off := 33 + k
	if uint64(len(b)-off) != n+64 {
		return nil, rejectf(RejectBadEncoding, e.ID, ErrBadEncoding, "envelope length %d does not match change length %d", len(b), n)
	}
	e.Raw = b[off : off+int(n) : off+int(n)]
	copy(e.Sig[:], b[off+int(n):])
	return e, nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
