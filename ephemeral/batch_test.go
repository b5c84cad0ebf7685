package ephemeral

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/convergenode/convergenode/crdt"
)

func sampleBatch(t testing.TB) *Batch {
	t.Helper()
	ts := Timestamp{Wall: t0.UnixMilli(), Logical: 3}
	b := &Batch{Doc: testDoc, Time: ts, Updates: []Update{
		{Namespace: "board", Key: "a", Time: ts, Value: crdt.Null()},
		{Namespace: "cursor", Key: "b", Time: Timestamp{Wall: ts.Wall - 5}, Value: crdt.Bool(true)},
		{Namespace: "cursor", Key: "c", Time: ts, Value: crdt.Int(-42)},
		{Namespace: "cursor", Key: "d", Time: ts, Value: crdt.Float(math.Copysign(0, -1))},
		{Namespace: "cursor", Key: "e", Time: ts, Value: crdt.String("héllo")},
		{Namespace: "cursor", Key: "f", Time: ts, Value: crdt.Bytes([]byte{0, 1, 2})},
		{Namespace: "cursor", Key: "g", Time: ts, Delete: true},
	}}
	if err := b.Sign(testKey(1)); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBatchRoundTrip(t *testing.T) {
	b := sampleBatch(t)
	if err := b.Verify(); err != nil {
		t.Fatal(err)
	}
	enc, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeBatch(enc)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Verify(); err != nil {
		t.Fatalf("decoded batch does not verify: %v", err)
	}
	enc2, err := d.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, enc2) {
		t.Fatalf("re-encoding differs")
	}
	if d.Author != authorOf(testKey(1)) || d.Time != b.Time || len(d.Updates) != len(b.Updates) {
		t.Fatalf("decoded header differs: %+v", d)
	}
	for i := range b.Updates {
		if b.Updates[i] != d.Updates[i] {
			t.Fatalf("update %d: got %+v, want %+v", i, d.Updates[i], b.Updates[i])
		}
	}
}

// TestDecodeBatchBadInput checks that each kind of bad input is refused with
// the error that names it.
func TestDecodeBatchBadInput(t *testing.T) {
	good, err := sampleBatch(t).Encode()
	if err != nil {
		t.Fatal(err)
	}
	// header: doc "doc-1" (1+5 bytes), author 32, ts (varint wall 6 bytes? computed), ...
	hdr := 1 + len(testDoc) + 32
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	reencode := func(f func(b *Batch)) []byte {
		b := sampleBatch(t)
		f(b)
		// bypass Validate: write the body by hand
		return append(b.body(nil), b.Sig[:]...)
	}
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"truncated", good[:len(good)-1], ErrTruncated},
		{"truncated header", good[:hdr-3], ErrTruncated},
		{"trailing", append(bytes.Clone(good), 0), ErrTrailingBytes},
		{"non-minimal doc length", mutate(func(b []byte) []byte {
			return append([]byte{0x85, 0x00}, b[1:]...)
		}), ErrNonMinimal},
		{"doc too long", append(binary.AppendUvarint(nil, MaxDocIDLen+1), make([]byte, MaxDocIDLen+1)...), ErrTooLarge},
		{"too many updates", reencode(func(b *Batch) {
			b.Updates = make([]Update, MaxBatchEntries+1)
		}), ErrTooLarge},
		{"no updates", reencode(func(b *Batch) { b.Updates = nil }), ErrMalformed},
		{"unsorted", reencode(func(b *Batch) {
			b.Updates[1], b.Updates[2] = b.Updates[2], b.Updates[1]
		}), ErrMalformed},
		{"duplicate key", reencode(func(b *Batch) { b.Updates[2].Key = "b" }), ErrMalformed},
		{"empty key", reencode(func(b *Batch) { b.Updates[0].Key = "" }), ErrMalformed},
		{"bad utf8 namespace", reencode(func(b *Batch) { b.Updates[0].Namespace = "\xff" }), ErrMalformed},
		{"bad utf8 value", reencode(func(b *Batch) { b.Updates[4].Value = crdt.String("\xc3") }), ErrMalformed},
		{"update after batch", reencode(func(b *Batch) { b.Updates[0].Time.Logical = 99 }), ErrMalformed},
		{"key too long", reencode(func(b *Batch) { b.Updates[0].Key = strings.Repeat("k", MaxKeyLen+1) }), ErrTooLarge},
		{"unknown op", mutate(func(b []byte) []byte {
			// first update: ns "board", key "a", ts, op
			i := bytes.Index(b, []byte("\x05board\x01a")) + 8
			_, n1 := binary.Varint(b[i:])
			_, n2 := binary.Uvarint(b[i+n1:])
			b[i+n1+n2] = 7
			return b
		}), ErrMalformed},
		{"unknown value kind", mutate(func(b []byte) []byte {
			i := bytes.Index(b, []byte("\x05board\x01a")) + 8
			_, n1 := binary.Varint(b[i:])
			_, n2 := binary.Uvarint(b[i+n1:])
			b[i+n1+n2+1] = 9
			return b
		}), ErrMalformed},
		{"bad bool", mutate(func(b []byte) []byte {
			i := bytes.Index(b, []byte("\x01b"))
			// after key: ts then op 0, kind 1, byte
			j := i + 2
			_, n1 := binary.Varint(b[j:])
			_, n2 := binary.Uvarint(b[j+n1:])
			b[j+n1+n2+2] = 2
			return b
		}), ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeBatch(c.in)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "ephemeral: ") && !strings.HasPrefix(err.Error(), "update ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestVerifyRefusesTampering(t *testing.T) {
	b := sampleBatch(t)
	b.Updates[2].Value = crdt.Int(43)
	if err := b.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered value: got %v", err)
	}
	b = sampleBatch(t)
	b.Doc = "doc-2"
	if err := b.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered doc: got %v", err)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	good, err := sampleBatch(f).Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Add([]byte{0x05, 'd', 'o', 'c', '-', '1'})
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := DecodeBatch(p)
		if err != nil {
			if b != nil {
				t.Fatalf("non-nil batch with error %v", err)
			}
			return
		}
		enc, err := b.Encode()
		if err != nil {
			t.Fatalf("accepted batch does not encode: %v", err)
		}
		if !bytes.Equal(enc, p) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", p, enc)
		}
		_ = b.Verify() // must not panic
	})
}
