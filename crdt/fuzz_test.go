package crdt

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// FuzzDecodeChange: decoding never panics, and every accepted input
// re-encodes to exactly the same bytes (and so has exactly one ID).
// Seeds: the published vectors (valid and invalid) and the sample change.
func FuzzDecodeChange(f *testing.F) {
	for _, v := range vectorChanges() {
		b, err := v.c.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, v := range invalidVectors(f) {
		b, _ := hex.DecodeString(v.Hex)
		f.Add(b)
	}
	b, _ := sampleChange().Encode()
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := DecodeChange(in)
		if err != nil {
			if c != nil {
				t.Fatal("change returned with an error")
			}
			return
		}
		out, err := c.Encode()
		if err != nil {
			t.Fatalf("accepted change does not encode: %v", err)
		}
		if !bytes.Equal(in, out) {
			t.Fatalf("re-encode differs:\n in %x\nout %x", in, out)
		}
		if c.MustID() != HashChange(in) {
			t.Fatal("ID differs")
		}
		// An accepted change must also be appliable (or give a clean error)
		// without panicking.
		d := NewDoc(DocOptions{ID: c.Doc})
		if len(c.Parents) == 0 {
			if _, err := d.Apply(c.MustID(), c); err != nil {
				t.Fatalf("apply: %v", err)
			}
		}
	})
}

// FuzzMergeOrder: a random history (from seed) delivered in two orders
// chosen by the fuzzer gives the same state and heads.
func FuzzMergeOrder(f *testing.F) {
	f.Add(uint64(1), uint64(2), uint64(3))
	f.Add(uint64(42), uint64(7), uint64(7))
	f.Fuzz(func(t *testing.T, seed, order1, order2 uint64) {
		rng := rand.New(rand.NewPCG(seed, 0))
		h := genHistory(t, rng, 2+rng.IntN(4), 5+rng.IntN(40))
		if len(h.changes) == 0 {
			return
		}
		a := deliver(t, rand.New(rand.NewPCG(order1, 1)), h.changes)
		b := deliver(t, rand.New(rand.NewPCG(order2, 2)), h.changes)
		if a.StateHash() != b.StateHash() || !a.Heads().Equal(b.Heads()) {
			t.Fatalf("seed %d: orders %d and %d diverge", seed, order1, order2)
		}
	})
}
