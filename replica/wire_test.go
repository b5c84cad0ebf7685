package replica

import (
	"bytes"
	"errors"
	"testing"

	"github.com/convergenode/convergenode/crdt"
)

func testID(b byte) crdt.ID {
	var id crdt.ID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

func sampleMessages() []*Message {
	bl := NewBloom(10, 0.01, 42)
	bl.Add(testID(1))
	return []*Message{
		{Type: MsgChange, Items: [][]byte{[]byte("env")}},
		{Type: MsgEvidence, Items: [][]byte{{}}},
		{Type: MsgEphemeral, Items: [][]byte{[]byte("batch")}},
		{Type: MsgHello, Session: 7, Count: 300, IDs: []crdt.ID{testID(1), testID(2)}, Bloom: bl},
		{Type: MsgHello, Session: 1 << 40, Reply: true},
		{Type: MsgNeeds, Session: 0, IDs: []crdt.ID{testID(3)}},
		{Type: MsgChanges, Session: 9, Seq: 3, Last: true, Items: [][]byte{[]byte("a"), []byte("bb")}},
		{Type: MsgChanges, Session: 9, Seq: 0},
		{Type: MsgAck, Session: 9, Seq: 3},
		{Type: MsgPresence, Items: [][]byte{[]byte("x")}},
		{Type: MsgDone, Session: 12},
	}
}

func TestWireRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		b, err := EncodeMessage(m)
		if err != nil {
			t.Fatalf("%s: %v", m.Type, err)
		}
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("%s: decode: %v", m.Type, err)
		}
		b2, err := EncodeMessage(got)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("%s: re-encode differs: %v", m.Type, err)
		}
		if PeekType(b) != m.Type {
			t.Fatalf("PeekType = %v", PeekType(b))
		}
	}
}

func TestWireStrict(t *testing.T) {
	good := MustEncode(&Message{Type: MsgNeeds, Session: 1, IDs: []crdt.ID{testID(1), testID(2)}})
	cases := map[string][]byte{
		"empty":       nil,
		"version":     append([]byte{2}, good[1:]...),
		"type":        {WireVersion, 99},
		"trailing":    append(bytes.Clone(good), 0),
		"truncated":   good[:len(good)-1],
		"nonminimal":  {WireVersion, byte(MsgAck), 0x81, 0x00, 0},
		"unsorted":    MustEncodeRaw(t, MsgNeeds, testID(2), testID(1)),
		"flags":       {WireVersion, byte(MsgHello), 1, 0x80, 0, 0, 0},
		"hugecount":   {WireVersion, byte(MsgPresence), 0xff, 0xff, 0x03},
		"emptybloom":  {WireVersion, byte(MsgHello), 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"bloomk":      {WireVersion, byte(MsgHello), 1, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0},
		"changeitems": {WireVersion, byte(MsgChange)},
	}
	for name, b := range cases {
		if _, err := DecodeMessage(b); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: err = %v, want ErrBadMessage", name, err)
		}
	}
	if _, err := EncodeMessage(&Message{Type: MsgNeeds, IDs: []crdt.ID{testID(2), testID(1)}}); err == nil {
		t.Error("encoded unsorted IDs")
	}
	if _, err := EncodeMessage(&Message{Type: MsgChange}); err == nil {
		t.Error("encoded change without item")
	}
}

// MustEncodeRaw builds a needs message with IDs in the given order,
// bypassing the encoder's checks.
func MustEncodeRaw(t *testing.T, typ MsgType, ids ...crdt.ID) []byte {
	t.Helper()
	b := []byte{WireVersion, byte(typ), 0, byte(len(ids))}
	for _, id := range ids {
		b = append(b, id[:]...)
	}
	return b
}

func TestBloom(t *testing.T) {
	const n = 10000
	b := NewBloom(n, 0.001, 1)
	for i := 0; i < n; i++ {
		b.Add(crdt.HashChange([]byte{byte(i), byte(i >> 8), 1}))
	}
	for i := 0; i < n; i++ {
		if !b.Has(crdt.HashChange([]byte{byte(i), byte(i >> 8), 1})) {
			t.Fatal("false negative")
		}
	}
	fp := 0
	for i := 0; i < n; i++ {
		if b.Has(crdt.HashChange([]byte{byte(i), byte(i >> 8), 2})) {
			fp++
		}
	}
	if fp > n/200 {
		t.Fatalf("false positive rate %d/%d, want about 0.1%%", fp, n)
	}
	// Deterministic: same seed, same bits.
	c := NewBloom(n, 0.001, 1)
	for i := 0; i < n; i++ {
		c.Add(crdt.HashChange([]byte{byte(i), byte(i >> 8), 1}))
	}
	if !bytes.Equal(MustEncode(&Message{Type: MsgHello, Bloom: b}), MustEncode(&Message{Type: MsgHello, Bloom: c})) {
		t.Fatal("bloom not deterministic")
	}
	var nb *Bloom
	if nb.Has(testID(1)) {
		t.Fatal("nil bloom has an entry")
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(MustEncode(m))
	}
	f.Add([]byte{WireVersion, byte(MsgHello), 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		// changeItem, Step's fast path, accepts exactly the MsgChanges
		// DecodeMessage accepts, with the same item.
		it, ok := changeItem(b)
		if want := err == nil && m.Type == MsgChange; ok != want || ok && !bytes.Equal(it, m.Items[0]) {
			t.Fatalf("changeItem = %x, %v; DecodeMessage = %+v, %v", it, ok, m, err)
		}
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error does not wrap ErrBadMessage: %v", err)
			}
			return
		}
		b2, err := EncodeMessage(m)
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		if !bytes.Equal(b, b2) {
			t.Fatalf("not canonical:\n in %x\nout %x", b, b2)
		}
	})
}
