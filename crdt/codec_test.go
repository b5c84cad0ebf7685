package crdt

import (
	"bytes"
	"errors"
	"testing"
)

func sampleChange() *Change {
	return &Change{
		Doc:     "doc-1",
		Author:  Author{1, 2, 3},
		Seq:     5,
		Lamport: 9,
		Prev:    ID{7},
		Parents: []ID{{1}, {2}},
		Time:    -42,
		Ops: []Op{
			Insert("users", "u1", map[string]Value{"name": String("ann"), "age": Int(31), "ok": Bool(true), "pic": Bytes([]byte{0, 1}), "x": Float(1.5), "n": Null()}),
			Update("users", "u1", "age", Int(-32)),
			Delete("users", "u2"),
		},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	c := sampleChange()
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeChange(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := d.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("re-encode differs")
	}
	if c.MustID() != d.MustID() {
		t.Fatal("ID differs")
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := sampleChange().Encode()
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"trailing", append(append([]byte{}, good...), 0), ErrTrailingBytes},
		{"truncated", good[:len(good)-1], ErrTruncated},
		{"empty", nil, ErrTruncated},
		{"non-minimal doc length", append([]byte{0x85, 0x00}, good[1:]...), ErrNonMinimal},
	}
	for _, tc := range cases {
		if _, err := DecodeChange(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	c := sampleChange()
	c.Parents = []ID{{2}, {1}}
	if _, err := c.Encode(); !errors.Is(err, ErrParentOrder) {
		t.Errorf("unsorted parents: %v", err)
	}
	c.Parents = []ID{{1}, {1}}
	if _, err := c.Encode(); !errors.Is(err, ErrParentOrder) {
		t.Errorf("duplicate parents: %v", err)
	}
	c = sampleChange()
	c.Lamport = MaxLamport
	if _, err := c.Encode(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("lamport limit: %v", err)
	}
}
