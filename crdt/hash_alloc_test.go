package crdt

import (
	"bytes"
	"testing"

	"lukechampine.com/blake3"
)

// TestHashChange checks the fast paths against the plain hasher, around the
// one-chunk boundary.
func TestHashChange(t *testing.T) {
	for _, n := range []int{0, 1, 64 - len(ChangeDomain), 1024 - len(ChangeDomain) - 1, 1024 - len(ChangeDomain), 1024 - len(ChangeDomain) + 1, 5000} {
		in := bytes.Repeat([]byte{0x5a}, n)
		h := blake3.New(32, nil)
		h.Write([]byte(ChangeDomain))
		h.Write(in)
		var want ID
		h.Sum(want[:0])
		if got := HashChange(in); got != want {
			t.Errorf("len %d: got %s want %s", n, got.Short(), want.Short())
		}
	}
	small := bytes.Repeat([]byte{1}, 300)
	if a := testing.AllocsPerRun(100, func() { HashChange(small) }); a != 0 {
		t.Errorf("HashChange of 300 bytes allocates %v times", a)
	}
}

// TestStateHashReusesHashers: StateHash takes its hasher from the pool (a
// new one is several KiB, and a simulation hashes every replica's state):
// an empty document's hash allocates nothing, and hashing in turn two
// documents with pooled hashers gives each its own hash.
func TestStateHashReusesHashers(t *testing.T) {
	empty := NewDoc(DocOptions{ID: "empty"})
	if a := testing.AllocsPerRun(100, func() { empty.StateHash() }); a != 0 {
		t.Errorf("StateHash of an empty document allocates %v times", a)
	}
	d := NewDoc(DocOptions{ID: "d", Author: Author{1}})
	if _, _, err := d.Insert("t", "r", map[string]Value{"c": Int(1)}); err != nil {
		t.Fatal(err)
	}
	a, b := empty.StateHash(), d.StateHash()
	if a == b || empty.StateHash() != a || d.StateHash() != b {
		t.Fatal("pooled hashers mixed up two documents' hashes")
	}
}
