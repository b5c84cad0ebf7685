package bft

import (
	"bytes"
	"errors"
	"testing"

	"github.com/convergenode/convergenode/crdt"
)

func forkPair(t testing.TB) (*Envelope, *Envelope) {
	k := testKey(3)
	a := mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil, crdt.Update("t", "r", "c", crdt.String("left"))))
	b := mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil, crdt.Update("t", "r", "c", crdt.String("right"))))
	return a, b
}

func TestProofRoundTrip(t *testing.T) {
	a, b := forkPair(t)
	p := NewProof(b, a)
	q := NewProof(a, b)
	if !bytes.Equal(p.Encode(), q.Encode()) {
		t.Fatal("proof encoding depends on argument order")
	}
	if err := p.Verify(); err != nil {
		t.Fatal(err)
	}
	d, err := DecodeProof(p.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Verify(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Encode(), p.Encode()) || d.Author() != a.Change.Author || d.Doc() != testDoc {
		t.Fatal("decoded proof differs")
	}
}

func TestProofRejectsNonConflicts(t *testing.T) {
	k := testKey(3)
	a := mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil))
	b := mustSign(t, k, mkChange(k, 2, 2, a.ID, []crdt.ID{a.ID}))
	if err := NewProof(a, b).Verify(); !errors.Is(err, ErrNotEquivocation) {
		t.Fatalf("chain as proof: %v", err)
	}
	if err := NewProof(a, a).Verify(); !errors.Is(err, ErrNotEquivocation) {
		t.Fatalf("same change: %v", err)
	}
	o := testKey(4)
	c := mustSign(t, o, mkChange(o, 1, 1, crdt.ZeroID, nil))
	if err := NewProof(a, c).Verify(); !errors.Is(err, ErrNotEquivocation) {
		t.Fatalf("two authors: %v", err)
	}
	// Same prev, disjoint seq: still a conflict (two successors of one prev).
	d := mustSign(t, k, mkChange(k, 7, 2, a.ID, []crdt.ID{a.ID}))
	if err := NewProof(b, d).Verify(); err != nil {
		t.Fatalf("same prev: %v", err)
	}
}

func TestProofRejectsForgery(t *testing.T) {
	a, b := forkPair(t)
	p := NewProof(a, b)
	enc := p.Encode()
	// Flip a signature bit of the second envelope (the last byte).
	bad := append([]byte(nil), enc...)
	bad[len(bad)-1] ^= 1
	d, err := DecodeProof(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged proof: %v", err)
	}
	// Reordered envelopes, truncation and trailing bytes are not canonical.
	sw := &EquivocationProof{A: p.B, B: p.A}
	if _, err := DecodeProof(sw.Encode()); err == nil {
		t.Fatal("unordered proof decoded")
	}
	for _, in := range [][]byte{nil, enc[:len(enc)-1], append(append([]byte(nil), enc...), 0), {2}} {
		if _, err := DecodeProof(in); err == nil {
			t.Fatalf("decoded %d bytes", len(in))
		}
	}
}
