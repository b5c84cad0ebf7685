package crdt

import (
	"bytes"
	"encoding/hex"
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
