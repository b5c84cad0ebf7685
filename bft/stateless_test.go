package bft

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/convergenode/convergenode/crdt"
)

func TestSignCheckRoundTrip(t *testing.T) {
	k := testKey(1)
	e := mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil))
	b := e.Encode()
	if len(b) != e.Size() {
		t.Fatalf("Size %d, encoded %d", e.Size(), len(b))
	}
	got, rej := CheckStateless(testDoc, b)
	if rej != nil {
		t.Fatal(rej)
	}
	if got.ID != e.ID || got.Sig != e.Sig || !bytes.Equal(got.Raw, e.Raw) || !bytes.Equal(got.Encode(), b) {
		t.Fatal("round trip differs")
	}
	if id, ok := PeekID(b); !ok || id != e.ID {
		t.Fatal("PeekID")
	}
	d, err := DecodeEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	if d.checked {
		t.Fatal("DecodeEnvelope must not mark envelopes checked")
	}
	if err := d.Check(); err != nil || !d.checked {
		t.Fatal(err)
	}
}

func TestSignWrongKey(t *testing.T) {
	c := mkChange(testKey(1), 1, 1, crdt.ZeroID, nil)
	if _, err := Sign(testKey(2), c); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("err %v, want ErrWrongKey", err)
	}
}

func TestReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for r := Reason(0); int(r) < NumReasons; r++ {
		s := r.String()
		if s == "" || seen[s] || strings.HasPrefix(s, "reason(") {
			t.Fatalf("reason %d: bad name %q", r, s)
		}
		seen[s] = true
	}
	for _, r := range []Reason{RejectBadSize, RejectBadEncoding, RejectWrongDoc, RejectBadID, RejectBadSignature} {
		if !r.Penalize() {
			t.Errorf("%v must penalise", r)
		}
	}
	for _, r := range []Reason{RejectBadLamport, RejectBadSeq, RejectNotWriter, RejectBufferFull, RejectExpired, RejectEvicted, RejectBadParent} {
		if r.Penalize() {
			t.Errorf("%v must not penalise", r)
		}
	}
}

// TestAttackTamperedOps: a forwarder changes an op. Keeping the claimed ID
// gives bad-id; recomputing it gives bad-signature.
func TestAttackTamperedOps(t *testing.T) {
	k := testKey(1)
	e := mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil, crdt.Update("t", "r", "c", crdt.String("honest"))))
	forged := *e.Change
	forged.Ops = []crdt.Op{crdt.Update("t", "r", "c", crdt.String("forged"))}
	raw, err := forged.Encode()
	if err != nil {
		t.Fatal(err)
	}
	keepID := &Envelope{ID: e.ID, Sig: e.Sig, Raw: raw}
	_, rej := CheckStateless(testDoc, keepID.Encode())
	wantReason(t, rej, RejectBadID)
	newID := &Envelope{ID: crdt.HashChange(raw), Sig: e.Sig, Raw: raw}
	_, rej = CheckStateless(testDoc, newID.Encode())
	wantReason(t, rej, RejectBadSignature)
	if !rej.Penalize() {
		t.Fatal("must penalise")
	}
}

// TestAttackTamperedParents: a forwarder rewrites the parents.
func TestAttackTamperedParents(t *testing.T) {
	k := testKey(1)
	e := mustSign(t, k, mkChange(k, 1, 2, crdt.ZeroID, []crdt.ID{{1}}))
	forged := *e.Change
	forged.Parents = []crdt.ID{{2}}
	raw, err := forged.Encode()
	if err != nil {
		t.Fatal(err)
	}
	_, rej := CheckStateless(testDoc, (&Envelope{ID: crdt.HashChange(raw), Sig: e.Sig, Raw: raw}).Encode())
	wantReason(t, rej, RejectBadSignature)
	_, rej = CheckStateless(testDoc, (&Envelope{ID: e.ID, Sig: e.Sig, Raw: raw}).Encode())
	wantReason(t, rej, RejectBadID)
}

// TestAttackForgedSignature: random and bit-flipped signatures.
func TestAttackForgedSignature(t *testing.T) {
	k := testKey(1)
	e := mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil))
	for i := 0; i < 64; i += 7 {
		f := *e
		f.Sig[i] ^= 0x01
		_, rej := CheckStateless(testDoc, f.Encode())
		wantReason(t, rej, RejectBadSignature)
	}
	f := *e
	f.Sig = [64]byte{}
	_, rej := CheckStateless(testDoc, f.Encode())
	wantReason(t, rej, RejectBadSignature)
	// S + L (non-canonical S) must not verify.
	f = *e
	addL(f.Sig[32:])
	_, rej = CheckStateless(testDoc, f.Encode())
	wantReason(t, rej, RejectBadSignature)
}

// addL adds the group order L to a 32-byte little-endian scalar.
func addL(s []byte) {
	l := [32]byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	carry := 0
	for i := range 32 {
		v := int(s[i]) + int(l[i]) + carry
		s[i] = byte(v)
		carry = v >> 8
	}
}

// TestAttackWrongKeyForAuthor: a Byzantine node signs a change that names
// another author with its own key.
func TestAttackWrongKeyForAuthor(t *testing.T) {
	victim, mallory := testKey(1), testKey(2)
	c := mkChange(victim, 1, 1, crdt.ZeroID, nil)
	raw, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	id := crdt.HashChange(raw)
	e := &Envelope{ID: id, Raw: raw}
	copy(e.Sig[:], ed25519.Sign(mallory, id[:]))
	_, rej := CheckStateless(testDoc, e.Encode())
	wantReason(t, rej, RejectBadSignature)
}

// TestAttackReplayOtherDoc: a valid change for doc-2 is replayed on doc-1.
func TestAttackReplayOtherDoc(t *testing.T) {
	k := testKey(1)
	c := mkChange(k, 1, 1, crdt.ZeroID, nil)
	c.Doc = "doc-2"
	e := mustSign(t, k, c)
	if _, rej := CheckStateless("doc-2", e.Encode()); rej != nil {
		t.Fatal(rej)
	}
	_, rej := CheckStateless(testDoc, e.Encode())
	wantReason(t, rej, RejectWrongDoc)
	if !rej.Penalize() {
		t.Fatal("must penalise")
	}
}

// TestAttackInflatedLamportEncoding: lamport 2^62 is over crdt.MaxLamport
// and cannot even be encoded canonically; a hand-made encoding is refused
// as bad encoding before any signature work.
func TestAttackInflatedLamportEncoding(t *testing.T) {
	k := testKey(1)
	c := mkChange(k, 1, 1, crdt.ZeroID, nil)
	if _, err := Sign(k, &crdt.Change{Doc: c.Doc, Author: c.Author, Seq: 1, Lamport: crdt.MaxLamport, Ops: c.Ops}); err == nil {
		t.Fatal("signing lamport 2^62 must fail")
	}
	raw := rawWithLamport(t, c, crdt.MaxLamport)
	id := crdt.HashChange(raw)
	e := &Envelope{ID: id, Raw: raw}
	copy(e.Sig[:], ed25519.Sign(k, id[:]))
	_, rej := CheckStateless(testDoc, e.Encode())
	wantReason(t, rej, RejectBadEncoding)
	if !errors.Is(rej, crdt.ErrTooLarge) {
		t.Fatalf("%v does not wrap crdt.ErrTooLarge", rej)
	}
}

// rawWithLamport encodes c with lamport 1, then splices in another lamport.
func rawWithLamport(t testing.TB, c *crdt.Change, lamport uint64) []byte {
	t.Helper()
	raw, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// doc | author[32] | seq | lamport: seq and lamport are 1-byte varints here.
	off := 1 + len(c.Doc) + 32 + 1
	if raw[off] != 1 {
		t.Fatalf("unexpected layout")
	}
	out := append([]byte(nil), raw[:off]...)
	out = binary.AppendUvarint(out, lamport)
	return append(out, raw[off+1:]...)
}

// TestAttackMalformedInput: truncations, trailing bytes, non-minimal
// lengths, bad version, garbage; each is bad-encoding (or bad-size).
func TestAttackMalformedInput(t *testing.T) {
	k := testKey(1)
	e := mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil))
	b := e.Encode()
	for n := 0; n < len(b); n++ {
		_, rej := CheckStateless(testDoc, b[:n])
		wantReason(t, rej, RejectBadEncoding)
	}
	_, rej := CheckStateless(testDoc, append(append([]byte(nil), b...), 0))
	wantReason(t, rej, RejectBadEncoding)
	bad := append([]byte(nil), b...)
	bad[0] = 2
	_, rej = CheckStateless(testDoc, bad)
	wantReason(t, rej, RejectBadEncoding)
	// Non-minimal raw length: 0x80|n, 0x00.
	nm := append([]byte(nil), b[:33]...)
	nm = append(nm, byte(len(e.Raw))|0x80, 0)
	nm = append(nm, b[34:]...)
	_, rej = CheckStateless(testDoc, nm)
	wantReason(t, rej, RejectBadEncoding)
	// A change that decodes but is not canonical (trailing byte inside raw).
	raw := append(append([]byte(nil), e.Raw...), 0)
	id := crdt.HashChange(raw)
	f := &Envelope{ID: id, Raw: raw}
	copy(f.Sig[:], ed25519.Sign(k, id[:]))
	_, rej = CheckStateless(testDoc, f.Encode())
	wantReason(t, rej, RejectBadEncoding)
	if _, err := DecodeEnvelope(f.Encode()); !errors.Is(err, ErrBadEncoding) {
		t.Fatalf("DecodeEnvelope: %v", err)
	}
}

// TestAttackOversizedInput: input over the envelope limit is refused as
// bad-size from its length alone, and a length field over the change limit
// is refused before reading the body.
func TestAttackOversizedInput(t *testing.T) {
	big := make([]byte, MaxEnvelopeSize+1)
	big[0] = EnvelopeVersion
	_, rej := CheckStateless(testDoc, big)
	wantReason(t, rej, RejectBadSize)
	hdr := make([]byte, 33, 33+3+crdt.MaxChangeSize+64+1)
	hdr[0] = EnvelopeVersion
	hdr = binary.AppendUvarint(hdr, crdt.MaxChangeSize+1)
	hdr = append(hdr, make([]byte, 200)...)
	_, rej = CheckStateless(testDoc, hdr)
	wantReason(t, rej, RejectBadSize)
	// A signed change over crdt.MaxChangeSize cannot be made.
	k := testKey(1)
	var ops []crdt.Op
	for i := 0; i < 20; i++ {
		ops = append(ops, crdt.Update("t", "r", "c", crdt.Bytes(make([]byte, crdt.MaxValueLen))))
	}
	if _, err := Sign(k, mkChange(k, 1, 1, crdt.ZeroID, nil, ops...)); err == nil {
		t.Fatal("oversized change signed")
	}
}

func TestReasonErrs(t *testing.T) {
	for r := Reason(1); int(r) < NumReasons; r++ {
		if r.Err() == nil {
			t.Errorf("%v has no sentinel", r)
		}
		d := Dropped{Reason: r}
		if !errors.Is(d.Rejection(), r.Err()) {
			t.Errorf("%v: Dropped.Rejection does not wrap its sentinel", r)
		}
	}
	if RejectNone.Err() != nil {
		t.Error("RejectNone has an error")
	}
}

// TestWired: every way of making an envelope leaves it holding its wire
// form, Raw inside it; an envelope built by hand gets a wired copy from
// Wired and is left as it was.
func TestWired(t *testing.T) {
	k := testKey(1)
	e := mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil))
	b := e.Encode()
	checked, rej := CheckStateless(testDoc, b)
	if rej != nil {
		t.Fatal(rej)
	}
	decoded, err := DecodeEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	for name, x := range map[string]*Envelope{"Sign": e, "CheckStateless": checked, "DecodeEnvelope": decoded} {
		w := x.Wire()
		if x.Wired() != x || !bytes.Equal(w, b) || &w[0] == &b[0] {
			t.Fatalf("%s: not wired with its own copy of the wire form", name)
		}
		end := len(w) - 64
		if &x.Raw[len(x.Raw)-1] != &w[end-1] || !bytes.Equal(x.Raw, w[end-len(x.Raw):end]) {
			t.Fatalf("%s: Raw is not the change bytes inside the wire form", name)
		}
	}
	byHand := &Envelope{Change: e.Change, ID: e.ID, Sig: e.Sig, Raw: bytes.Clone(e.Raw)}
	raw := byHand.Raw
	w := byHand.Wired()
	if w == byHand || byHand.wire != nil || &byHand.Raw[0] != &raw[0] {
		t.Fatal("Wired changed an envelope without a wire form instead of copying it")
	}
	if !bytes.Equal(w.Wire(), b) || !bytes.Equal(w.Raw, raw) || w.ID != e.ID || w.Sig != e.Sig || w.Change != e.Change {
		t.Fatal("the wired copy differs")
	}
	if &w.Raw[0] != &w.Wire()[len(b)-64-len(raw)] {
		t.Fatal("the wired copy's Raw is not inside its wire form")
	}
}
