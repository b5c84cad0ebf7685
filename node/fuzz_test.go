package node

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
)

// FuzzReadFrame feeds arbitrary bytes to the sync stream's frame decoder,
// as a hostile peer's stream would: it must never panic or return a frame
// over the limit, and every frame it accepts must re-encode to exactly the
// bytes it consumed.
func FuzzReadFrame(f *testing.F) {
	f.Add(appendFrame(nil, "notes", []byte("hello")))
	f.Add(appendFrame(appendFrame(nil, "a", nil), "", []byte{1, 2, 3}))
	f.Add([]byte{0, 0, 0, 5, 0x80, 0x80, 0x80, 0x80, 0x80})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 2, 9, 'x'})
	const limit = 1 << 12
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		var buf []byte
		consumed := 0
		for {
			doc, msg, b, err := readFrame(r, limit, buf)
			buf = b
			if err != nil {
				if err == io.EOF && consumed != len(in) {
					t.Fatalf("clean EOF after %d of %d bytes", consumed, len(in))
				}
				return
			}
			end := len(in) - r.Len()
			if end-consumed-4 > limit {
				t.Fatalf("accepted a frame of %d bytes, limit %d", end-consumed-4, limit)
			}
			if re := appendFrame(nil, doc, msg); !bytes.Equal(re, in[consumed:end]) {
				// A non-minimal uvarint for the document's length decodes
				// but re-encodes shorter: that is the only allowed change.
				if len(re) >= end-consumed {
					t.Fatalf("frame %q/%x re-encodes to %x, read from %x", doc, msg, re, in[consumed:end])
				}
			}
			consumed = end
		}
	})
}

// FuzzJSONValue decodes arbitrary JSON as an API value: no panic, and an
// accepted value encodes to JSON that decodes to the same value and
// encodes to the same bytes again.
func FuzzJSONValue(f *testing.F) {
	for _, s := range []string{`null`, `true`, `false`, `0`, `-1`, `9223372036854775807`, `9223372036854775808`,
		`1.5`, `-0.0`, `1e300`, `"x"`, `"\u00e9\ud800"`, `{"$bytes":"AAE="}`, `{"$float":"NaN"}`, `{"$float":"-Inf"}`,
		`{"a":"b"}`, `[1]`, ` 2 `, `1.0e`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var v JSONValue
		if err := json.Unmarshal(in, &v); err != nil {
			return
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%q decoded to %v, which does not encode: %v", in, v.Value, err)
		}
		var w JSONValue
		if err := json.Unmarshal(out, &w); err != nil {
			t.Fatalf("%q -> %s does not decode: %v", in, out, err)
		}
		if !v.Value.Equal(w.Value) { // bitwise: NaN equals NaN, -0 differs from 0
			t.Fatalf("%q -> %v -> %s -> %v", in, v.Value, out, w.Value)
		}
		if again, _ := json.Marshal(w); !bytes.Equal(again, out) {
			t.Fatalf("%q encodes to %s, then to %s", in, out, again)
		}
	})
}
