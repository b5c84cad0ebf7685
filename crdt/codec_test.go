package crdt

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
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

// TestDecodeOpRules: the op rules that DecodeChange checks while reading
// (UTF-8 names, row keys and string values, sorted insert columns) give
// exactly the error Validate gives for the same change, including which
// op is reported when several break a rule.
func TestDecodeOpRules(t *testing.T) {
	base := func() *Change {
		return &Change{
			Doc: "d", Author: Author{1}, Seq: 1, Lamport: 1,
			Ops: []Op{
				Update("tab", "r1", "col", Int(1)),
				Update("tab", "rA", "col", String("v1")),
				Insert("tab", "r2", map[string]Value{"c1": Int(1), "c2": String("vB")}),
				Update("tC", "r2", "cD", Int(2)),
				Update("tab", "r3", "col", Int(3)),
			},
		}
	}
	good, err := base().Encode()
	if err != nil {
		t.Fatal(err)
	}
	bad := string([]byte{0xff})
	cases := []struct {
		name     string
		from, to string
	}{
		{"row", "rA", "r" + bad},
		{"string value", "v1", "v" + bad},
		{"insert string value", "vB", "v" + bad},
		{"insert columns duplicated", "c2", "c1"},
		{"insert columns unsorted", "c2", "c0"},
		{"table", "tC", "t" + bad},
		{"column", "cD", "c" + bad},
		{"first of two", "col", "co" + bad},
		{"row repeated", "r2", "r" + bad},
	}
	for _, tc := range cases {
		if bytes.Count(good, []byte(tc.from)) == 0 {
			t.Fatalf("%s: %q not in the encoding", tc.name, tc.from)
		}
		in := bytes.ReplaceAll(good, []byte(tc.from), []byte(tc.to))
		c := base()
		fix := func(s *string) {
			if *s == tc.from {
				*s = tc.to
			}
		}
		for i := range c.Ops {
			o := &c.Ops[i]
			fix(&o.Table)
			fix(&o.Row)
			for k := range o.Cols {
				fix(&o.Cols[k].Name)
				if o.Cols[k].Value.kind == KindString {
					fix(&o.Cols[k].Value.s)
				}
			}
		}
		want := c.Validate()
		if want == nil {
			t.Fatalf("%s: the changed struct is valid", tc.name)
		}
		_, got := DecodeChange(in)
		if got == nil || got.Error() != want.Error() || !errors.Is(got, ErrInvalid) {
			t.Errorf("%s: DecodeChange: %v; Validate: %v", tc.name, got, want)
		}
	}
	// A header rule comes before any op rule, as in Validate.
	c := base()
	c.Lamport = 0
	c.Ops[1].Row = "r" + bad
	in := bytes.ReplaceAll(good, []byte("rA"), []byte("r"+bad))
	in[bytes.Index(in, []byte{1, 1, 0})+1] = 0 // lamport 1 -> 0 (seq 1, lamport 1, prev starts with 0)
	if _, got := DecodeChange(in); got == nil || got.Error() != c.Validate().Error() {
		t.Errorf("header first: DecodeChange: %v; Validate: %v", got, c.Validate())
	}
}

// TestDecodeRandomRoundTrip: random valid changes, with names, row keys
// and values on both sides of the decoder's inline paths (lengths around
// 127 bytes, non-ASCII UTF-8, repeated and changing names and keys, ints
// of every varint length, every value kind), decode and re-encode to the
// same bytes and the same ops.
func TestDecodeRandomRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	str := func(maxLen int) string {
		n := 1 + rng.IntN(maxLen)
		if rng.IntN(3) == 0 {
			n = 120 + rng.IntN(16) // around the one-byte length limit
		}
		s := strings.Repeat(string(rune('a'+rng.IntN(3))), n)
		if rng.IntN(4) == 0 {
			s = "é" + s // non-ASCII
		}
		return s[:min(len(s), maxLen)]
	}
	val := func() Value {
		switch rng.IntN(7) {
		case 0:
			return Null()
		case 1:
			return Bool(rng.IntN(2) == 0)
		case 2:
			return Float(rng.Float64())
		case 3:
			return String(str(200))
		case 4:
			return Bytes([]byte(str(10)))
		}
		return Int(rng.Int64() >> rng.IntN(64)) // every varint length, both signs
	}
	for iter := range 500 {
		var ops []Op
		table, row, col := str(8), str(8), str(8)
		for range 1 + rng.IntN(40) {
			if rng.IntN(4) == 0 {
				table = str(MaxNameLen)
			}
			if rng.IntN(2) == 0 {
				row = str(300)
			}
			if rng.IntN(4) == 0 {
				col = str(MaxNameLen)
			}
			switch rng.IntN(4) {
			case 0:
				cols := map[string]Value{}
				for range rng.IntN(4) {
					cols[str(5)] = val()
				}
				ops = append(ops, Insert(table, row, cols))
			case 1:
				ops = append(ops, Delete(table, row))
			default:
				ops = append(ops, Update(table, row, col, val()))
			}
		}
		c := &Change{Doc: str(20), Author: Author{byte(iter)}, Seq: 1, Lamport: 1 + rng.Uint64N(1<<40), Time: rng.Int64(), Ops: ops}
		b, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		d, err := DecodeChange(b)
		if err != nil {
			t.Fatalf("iteration %d: %v", iter, err)
		}
		b2, err := d.Encode()
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("iteration %d: re-encode differs (%v)", iter, err)
		}
		if d.Doc != c.Doc || len(d.Ops) != len(c.Ops) {
			t.Fatalf("iteration %d: decoded change differs", iter)
		}
		for i := range d.Ops {
			if d.Ops[i].Table != c.Ops[i].Table || d.Ops[i].Row != c.Ops[i].Row || len(d.Ops[i].Cols) != len(c.Ops[i].Cols) {
				t.Fatalf("iteration %d: op %d differs", iter, i)
			}
		}
	}
}
