package bft

import (
	"bytes"
	"testing"

	"github.com/convergenode/convergenode/crdt"
)

func envelopeSeeds(t testing.TB) [][]byte {
	k := testKey(1)
	a := mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil))
	b := mustSign(t, k, mkChange(k, 2, 2, a.ID, []crdt.ID{a.ID},
		crdt.Insert("users", "u1", map[string]crdt.Value{"name": crdt.String("ann"), "n": crdt.Int(-3)}),
		crdt.Delete("users", "u2")))
	x, y := forkPair(t)
	bad := a.Encode()
	bad[len(bad)-1] ^= 1
	return [][]byte{a.Encode(), b.Encode(), x.Encode(), y.Encode(), bad, {}, {EnvelopeVersion}, NewProof(x, y).Encode()}
}

func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range envelopeSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEnvelope(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Encode(), b) {
			t.Fatalf("decoded input does not re-encode to itself")
		}
		if w := e.Wire(); !bytes.Equal(w, b) || &w[0] == &b[0] {
			t.Fatalf("the envelope's wire form is not its own copy of the input")
		}
		raw, err := e.Change.Encode()
		if err != nil || !bytes.Equal(raw, e.Raw) {
			t.Fatalf("change does not re-encode: %v", err)
		}
	})
}

func FuzzDecodeProof(f *testing.F) {
	x, y := forkPair(f)
	f.Add(NewProof(x, y).Encode())
	for _, s := range envelopeSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeProof(b)
		if err != nil {
			return
		}
		if !bytes.Equal(p.Encode(), b) {
			t.Fatalf("decoded proof does not re-encode to itself")
		}
		if err := p.Verify(); err == nil {
			// A verified proof really is two signed, conflicting changes.
			if p.A.ID == p.B.ID || p.A.Change.Author != p.B.Change.Author || !Conflicts(p.A.Change, p.B.Change) {
				t.Fatal("Verify accepted a non-proof")
			}
		}
	})
}

func FuzzCheckStateless(f *testing.F) {
	for _, s := range envelopeSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, rej := CheckStateless(testDoc, b)
		if (e == nil) == (rej == nil) {
			t.Fatal("want exactly one of envelope and rejection")
		}
		if rej != nil {
			if !rej.Reason.Penalize() || rej.Err == nil {
				t.Fatalf("stage 1 rejection %v must be penalised and have a cause", rej.Reason)
			}
			return
		}
		if !bytes.Equal(e.Encode(), b) || e.Change.Doc != testDoc || crdt.HashChange(e.Raw) != e.ID ||
			!Verify(e.Change.Author, e.ID, &e.Sig) {
			t.Fatal("accepted envelope is not canonical, for this doc and signed")
		}
	})
}
