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
