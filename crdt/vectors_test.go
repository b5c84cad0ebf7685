package crdt

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"testing"
)

var updateVectors = flag.Bool("update", false, "rewrite crdt/testdata/vectors.json from the vectors defined in vectors_test.go")

const vectorsPath = "testdata/vectors.json"

// The published test vectors: testdata/vectors.json. Each valid vector has
// the canonical bytes (hex), the change ID and the change as readable JSON;
// each invalid one has bytes that every implementation must refuse, with
// the class of error.

type vectorFile struct {
	Comment string          `json:"comment"`
	Domain  string          `json:"domain"`
	Valid   []validVector   `json:"valid"`
	Invalid []invalidVector `json:"invalid"`
}

type validVector struct {
	Name   string     `json:"name"`
	Hex    string     `json:"hex"`
	ID     string     `json:"id"`
	Change jsonChange `json:"change"`
}

type invalidVector struct {
	Name  string `json:"name"`
	Hex   string `json:"hex"`
	Error string `json:"error"` // trailing, truncated, non-minimal, too-large, parent-order, invalid
}

type jsonChange struct {
	Doc     string   `json:"doc"` // hex of the document ID bytes
	Author  string   `json:"author"`
	Seq     string   `json:"seq"`
	Lamport string   `json:"lamport"`
	Prev    string   `json:"prev"`
	Parents []string `json:"parents"`
	Time    string   `json:"time"`
	Ops     []jsonOp `json:"ops"`
}

type jsonOp struct {
	Kind  string    `json:"kind"`
	Table string    `json:"table"`
	Row   string    `json:"row"`
	Cols  []jsonCol `json:"cols,omitempty"`
}

type jsonCol struct {
	Name  string    `json:"name"`
	Value jsonValue `json:"value"`
}

type jsonValue struct {
	Kind   string  `json:"kind"`
	Bool   *bool   `json:"bool,omitempty"`
	Int    string  `json:"int,omitempty"`
	Float  string  `json:"float,omitempty"` // for humans only
	Bits   string  `json:"bits,omitempty"`  // float64 bits, 16 hex digits
	String *string `json:"string,omitempty"`
	Hex    *string `json:"hex,omitempty"` // bytes
}

func toJSONChange(c *Change) jsonChange {
	j := jsonChange{
		Doc: hex.EncodeToString([]byte(c.Doc)), Author: c.Author.String(),
		Seq: strconv.FormatUint(c.Seq, 10), Lamport: strconv.FormatUint(c.Lamport, 10),
		Prev: c.Prev.String(), Parents: []string{}, Time: strconv.FormatInt(c.Time, 10),
	}
	for _, p := range c.Parents {
		j.Parents = append(j.Parents, p.String())
	}
	for _, o := range c.Ops {
		jo := jsonOp{Kind: o.Kind.String(), Table: o.Table, Row: o.Row}
		for _, col := range o.Cols {
			jo.Cols = append(jo.Cols, jsonCol{Name: col.Name, Value: toJSONValue(col.Value)})
		}
		j.Ops = append(j.Ops, jo)
	}
	return j
}

func toJSONValue(v Value) jsonValue {
	j := jsonValue{Kind: v.Kind().String()}
	switch v.Kind() {
	case KindBool:
		b, _ := v.AsBool()
		j.Bool = &b
	case KindInt:
		i, _ := v.AsInt()
		j.Int = strconv.FormatInt(i, 10)
	case KindFloat:
		f, _ := v.AsFloat()
		j.Float = strconv.FormatFloat(f, 'g', -1, 64)
		j.Bits = fmt.Sprintf("%016x", math.Float64bits(f))
	case KindString:
		s, _ := v.AsString()
		j.String = &s
	case KindBytes:
		b, _ := v.AsBytes()
		s := hex.EncodeToString(b)
		j.Hex = &s
	}
	return j
}

func fromJSONChange(j jsonChange) (*Change, error) {
	var err error
	c := &Change{}
	doc, err1 := hex.DecodeString(j.Doc)
	c.Doc = string(doc)
	c.Seq, err = strconv.ParseUint(j.Seq, 10, 64)
	err = errors.Join(err1, err)
	lam, err2 := strconv.ParseUint(j.Lamport, 10, 64)
	c.Lamport = lam
	tm, err3 := strconv.ParseInt(j.Time, 10, 64)
	c.Time = tm
	err = errors.Join(err, err2, err3, decodeHex32(j.Author, c.Author[:]), decodeHex32(j.Prev, c.Prev[:]))
	for _, p := range j.Parents {
		var id ID
		err = errors.Join(err, decodeHex32(p, id[:]))
		c.Parents = append(c.Parents, id)
	}
	for _, jo := range j.Ops {
		o := Op{Table: jo.Table, Row: jo.Row}
		switch jo.Kind {
		case "insert":
			o.Kind = OpInsert
		case "update":
			o.Kind = OpUpdate
		case "delete":
			o.Kind = OpDelete
		default:
			err = errors.Join(err, fmt.Errorf("op kind %q", jo.Kind))
		}
		for _, jc := range jo.Cols {
			v, verr := fromJSONValue(jc.Value)
			err = errors.Join(err, verr)
			o.Cols = append(o.Cols, Col{Name: jc.Name, Value: v})
		}
		c.Ops = append(c.Ops, o)
	}
	return c, err
}

func fromJSONValue(j jsonValue) (Value, error) {
	switch j.Kind {
	case "null":
		return Null(), nil
	case "bool":
		if j.Bool == nil {
			return Value{}, errors.New("bool without value")
		}
		return Bool(*j.Bool), nil
	case "int":
		i, err := strconv.ParseInt(j.Int, 10, 64)
		return Int(i), err
	case "float":
		b, err := strconv.ParseUint(j.Bits, 16, 64)
		return Float(math.Float64frombits(b)), err
	case "string":
		if j.String == nil {
			return Value{}, errors.New("string without value")
		}
		return String(*j.String), nil
	case "bytes":
		if j.Hex == nil {
			return Value{}, errors.New("bytes without value")
		}
		b, err := hex.DecodeString(*j.Hex)
		return Bytes(b), err
	}
	return Value{}, fmt.Errorf("value kind %q", j.Kind)
}

func decodeHex32(s string, dst []byte) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return fmt.Errorf("bad 32-byte hex %q", s)
	}
	copy(dst, b)
	return nil
}

func errorClass(err error) string {
	for _, e := range []struct {
		err  error
		name string
	}{
		{ErrTrailingBytes, "trailing"}, {ErrTruncated, "truncated"}, {ErrNonMinimal, "non-minimal"},
		{ErrTooLarge, "too-large"}, {ErrParentOrder, "parent-order"}, {ErrInvalid, "invalid"},
	} {
		if errors.Is(err, e.err) {
			return e.name
		}
	}
	return fmt.Sprintf("other(%v)", err)
}

// vectorChanges are the valid vectors, defined in code.
func vectorChanges() []struct {
	name string
	c    *Change
} {
	author := Author{}
	for i := range author {
		author[i] = byte(0xa0 + i)
	}
	id := func(b byte) ID {
		var x ID
		for i := range x {
			x[i] = b
		}
		return x
	}
	return []struct {
		name string
		c    *Change
	}{
		{"minimal: first change, one delete, empty doc ID", &Change{
			Author: author, Seq: 1, Lamport: 1, Ops: []Op{Delete("t", "r")},
		}},
		{"every value kind in one insert", &Change{
			Doc: "doc-1", Author: author, Seq: 1, Lamport: 1, Time: 1767225600000,
			Ops: []Op{Insert("users", "u1", map[string]Value{
				"a_null": Null(), "b_true": Bool(true), "c_false": Bool(false), "d_int": Int(-300),
				"e_float": Float(1.5), "f_string": String("ann"), "g_bytes": Bytes([]byte{0, 1, 0xff}),
				"h_empty": String(""),
			})},
		}},
		{"a transaction: insert, updates, delete; parents and negative time", &Change{
			Doc: "doc-1", Author: author, Seq: 5, Lamport: 9, Prev: id(0x07),
			Parents: []ID{id(0x01), id(0x07), id(0xfe)}, Time: -42,
			Ops: []Op{
				Insert("users", "u1", map[string]Value{"name": String("ann"), "age": Int(31)}),
				Update("users", "u1", "age", Int(32)),
				Update("users", "u2", "name", Null()),
				Delete("users", "u3"),
			},
		}},
		{"integer edges", &Change{
			Doc: "d", Author: author, Seq: 127, Lamport: 128, Prev: id(0x11), Time: math.MinInt64,
			Ops: []Op{
				Update("t", "r", "max", Int(math.MaxInt64)),
				Update("t", "r", "min", Int(math.MinInt64)),
				Update("t", "r", "zero", Int(0)),
				Update("t", "r", "m1", Int(-1)),
			},
		}},
		{"float edges: -0, +inf, NaN payload, smallest subnormal", &Change{
			Doc: "d", Author: author, Seq: 1, Lamport: 1,
			Ops: []Op{
				Update("t", "r", "negzero", Float(math.Copysign(0, -1))),
				Update("t", "r", "inf", Float(math.Inf(1))),
				Update("t", "r", "nan", Float(math.Float64frombits(0x7ff8000000000001))),
				Update("t", "r", "sub", Float(math.SmallestNonzeroFloat64)),
			},
		}},
		{"unicode names and an insert with no columns", &Change{
			Doc: "документ", Author: author, Seq: 1, Lamport: 1,
			Ops: []Op{Insert("表", "行🙂", nil), Update("表", "行🙂", "列", String("値"))},
		}},
		{"largest lamport and seq", &Change{
			Doc: "d", Author: author, Seq: MaxLamport - 2, Lamport: MaxLamport - 2, Prev: id(0x22),
			Ops: []Op{Delete("t", "a"), Delete("t", "b")},
		}},
	}
}

func invalidVectors(t testing.TB) []invalidVector {
	enc := func(c *Change) []byte {
		b, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	base := vectorChanges()[0].c // doc "", author, seq 1, lamport 1, prev 0, 0 parents, time 0, 1 delete op
	good := enc(base)
	// Offsets in good: 0 doc len | 1..32 author | 33 seq | 34 lamport | 35..66 prev |
	// 67 nparents | 68 time | 69 nops | 70 kind | 71 len "t" | 72 't' | 73 len "r" | 74 'r'.
	with := func(off int, b ...byte) []byte {
		x := append([]byte{}, good[:off]...)
		x = append(x, b...)
		return append(x, good[off+1:]...)
	}
	withParents := func(ps ...ID) []byte {
		x := append([]byte{}, good[:67]...)
		x = append(x, byte(len(ps)))
		for _, p := range ps {
			x = append(x, p[:]...)
		}
		return append(x, good[68:]...)
	}
	upd := func(v ...byte) []byte { // an update op of column "c" with raw value bytes v
		x := append([]byte{}, good[:70]...)
		x = append(x, byte(OpUpdate), 1, 't', 1, 'r', 1, 'c')
		return append(x, v...)
	}
	out := []invalidVector{
		{Name: "trailing byte", Hex: hex.EncodeToString(append(append([]byte{}, good...), 0)), Error: "trailing"},
		{Name: "truncated", Hex: hex.EncodeToString(good[:len(good)-1]), Error: "truncated"},
		{Name: "empty input", Hex: "", Error: "truncated"},
		{Name: "non-minimal varint (seq 1 as 0x81 0x00)", Hex: hex.EncodeToString(with(33, 0x81, 0x00)), Error: "non-minimal"},
		{Name: "varint over 64 bits", Hex: hex.EncodeToString(with(33, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)), Error: "invalid"},
		{Name: "seq 0", Hex: hex.EncodeToString(with(33, 0)), Error: "invalid"},
		{Name: "lamport 0", Hex: hex.EncodeToString(with(34, 0)), Error: "invalid"},
		{Name: "seq 1 with a non-zero prev", Hex: hex.EncodeToString(with(35, 1)), Error: "invalid"},
		{Name: "unsorted parents", Hex: hex.EncodeToString(withParents(ID{2}, ID{1})), Error: "parent-order"},
		{Name: "duplicate parents", Hex: hex.EncodeToString(withParents(ID{1}, ID{1})), Error: "parent-order"},
		{Name: "zero ops", Hex: hex.EncodeToString(append(append([]byte{}, good[:69]...), 0)), Error: "invalid"},
		{Name: "too many ops", Hex: hex.EncodeToString(append(append([]byte{}, good[:69]...), 0x81, 0x40)), Error: "too-large"},
		{Name: "unknown op kind", Hex: hex.EncodeToString(with(70, 9)), Error: "invalid"},
		{Name: "empty table name", Hex: hex.EncodeToString(append(append([]byte{}, good[:71]...), 0, 1, 'r')), Error: "invalid"},
		{Name: "unknown value kind", Hex: hex.EncodeToString(upd(9)), Error: "invalid"},
		{Name: "bool byte 2", Hex: hex.EncodeToString(upd(byte(KindBool), 2)), Error: "invalid"},
		{Name: "string not UTF-8", Hex: hex.EncodeToString(upd(byte(KindString), 1, 0xff)), Error: "invalid"},
		{Name: "row key over the limit", Hex: hex.EncodeToString(append(append([]byte{}, good[:73]...), 0x81, 0x08)), Error: "too-large"},
	}
	return out
}

func buildVectorFile(t testing.TB) vectorFile {
	f := vectorFile{
		Comment: "convergenode change encoding test vectors (docs/wire-format.md). valid: hex is the canonical encoding of change, id = BLAKE3-256(domain || bytes). invalid: decoders must refuse hex with the given class of error. Regenerate: go test ./crdt -run TestVectors -update",
		Domain:  ChangeDomain,
	}
	for _, v := range vectorChanges() {
		b, err := v.c.Encode()
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		f.Valid = append(f.Valid, validVector{Name: v.name, Hex: hex.EncodeToString(b), ID: HashChange(b).String(), Change: toJSONChange(v.c)})
	}
	f.Invalid = invalidVectors(t)
	return f
}

func TestVectors(t *testing.T) {
	want := buildVectorFile(t)
	if *updateVectors {
		b, err := json.MarshalIndent(want, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsPath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var got vectorFile
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Domain != ChangeDomain {
		t.Errorf("domain %q", got.Domain)
	}
	if len(got.Valid) != len(want.Valid) || len(got.Invalid) != len(want.Invalid) {
		t.Fatalf("%s is stale: run go test ./crdt -run TestVectors -update", vectorsPath)
	}
	// Check the published file on its own terms, as another implementation would.
	for i, v := range got.Valid {
		b, err := hex.DecodeString(v.Hex)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if v.Hex != want.Valid[i].Hex || v.ID != want.Valid[i].ID {
			t.Errorf("%s: file differs from the encoder (run -update if the format changed on purpose)", v.Name)
		}
		if id := HashChange(b).String(); id != v.ID {
			t.Errorf("%s: id %s, file says %s", v.Name, id, v.ID)
		}
		dec, err := DecodeChange(b)
		if err != nil {
			t.Errorf("%s: decode: %v", v.Name, err)
			continue
		}
		fromJSON, err := fromJSONChange(v.Change)
		if err != nil {
			t.Errorf("%s: json: %v", v.Name, err)
			continue
		}
		enc, err := fromJSON.Encode()
		if err != nil || !bytes.Equal(enc, b) {
			t.Errorf("%s: the JSON change does not encode to the bytes (%v)", v.Name, err)
		}
		if re, _ := dec.Encode(); !bytes.Equal(re, b) {
			t.Errorf("%s: re-encode differs", v.Name)
		}
	}
	for i, v := range got.Invalid {
		b, err := hex.DecodeString(v.Hex)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if v.Hex != want.Invalid[i].Hex {
			t.Errorf("%s: file differs (run -update)", v.Name)
		}
		_, err = DecodeChange(b)
		if err == nil {
			t.Errorf("%s: decoded, want error %s", v.Name, v.Error)
		} else if c := errorClass(err); c != v.Error {
			t.Errorf("%s: error %s (%v), want %s", v.Name, c, err, v.Error)
		}
	}
}
