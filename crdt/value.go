package crdt

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
)

// Kind is the type of a Value.
type Kind uint8

// The value kinds. The numbers are part of the wire format.
const (
	KindNull   Kind = 0
	KindBool   Kind = 1
	KindInt    Kind = 2
	KindFloat  Kind = 3
	KindString Kind = 4
	KindBytes  Kind = 5
)

func (k Kind) String() string {
	switch k {
	case KindNull:
		return "null"
	case KindBool:
		return "bool"
	case KindInt:
		return "int"
	case KindFloat:
		return "float"
	case KindString:
		return "string"
	case KindBytes:
		return "bytes"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is an immutable cell value: null, bool, int64, float64, string or
// bytes. The zero Value is null. Values are small (32 bytes) and are passed
// by value.
type Value struct {
	kind Kind
	n    uint64 // bool (0/1), int64 bits, float64 bits
	s    string // string or bytes payload
}

// Null returns the null value.
func Null() Value { return Value{} }

// Bool returns a bool value.
func Bool(b bool) Value {
	if b {
		return Value{kind: KindBool, n: 1}
	}
	return Value{kind: KindBool}
}

// Int returns an int64 value.
func Int(i int64) Value { return Value{kind: KindInt, n: uint64(i)} }

// Float returns a float64 value. The bits are kept exactly (NaN payloads
// and negative zero included).
func Float(f float64) Value { return Value{kind: KindFloat, n: math.Float64bits(f)} }

// String returns a string value. s must be valid UTF-8 to be encodable.
func String(s string) Value { return Value{kind: KindString, s: s} }

// Bytes returns a bytes value. The slice is copied.
func Bytes(b []byte) Value { return Value{kind: KindBytes, s: string(b)} }

// Kind returns the kind of v.
func (v Value) Kind() Kind { return v.kind }

// IsNull reports whether v is null.
func (v Value) IsNull() bool { return v.kind == KindNull }

// AsBool returns the bool held by v and whether v is a bool.
func (v Value) AsBool() (bool, bool) { return v.n == 1, v.kind == KindBool }

// AsInt returns the int64 held by v and whether v is an int.
func (v Value) AsInt() (int64, bool) { return int64(v.n), v.kind == KindInt }

// AsFloat returns the float64 held by v and whether v is a float.
func (v Value) AsFloat() (float64, bool) { return math.Float64frombits(v.n), v.kind == KindFloat }

// AsString returns the string held by v and whether v is a string.
func (v Value) AsString() (string, bool) { return v.s, v.kind == KindString }

// AsBytes returns a copy of the bytes held by v and whether v is bytes.
func (v Value) AsBytes() ([]byte, bool) {
	if v.kind != KindBytes {
		return nil, false
	}
	return []byte(v.s), true
}

// Equal reports whether a and b are the same value (same kind, same bits).
func (a Value) Equal(b Value) bool { return a == b }

// Compare orders values: first by kind, then by content. It is a total order
// used for stable output; it is not the merge order (that is the op order).
func (a Value) Compare(b Value) int {
	if a.kind != b.kind {
		if a.kind < b.kind {
			return -1
		}
		return 1
	}
	switch a.kind {
	case KindInt:
		ai, bi := int64(a.n), int64(b.n)
		switch {
		case ai < bi:
			return -1
		case ai > bi:
			return 1
		}
		return 0
	case KindBool, KindFloat:
		switch {
		case a.n < b.n:
			return -1
		case a.n > b.n:
			return 1
		}
		return 0
	case KindString, KindBytes:
		return bytes.Compare([]byte(a.s), []byte(b.s))
	}
	return 0
}

// Any returns v as a Go value: nil, bool, int64, float64, string or []byte.
func (v Value) Any() any {
	switch v.kind {
	case KindBool:
		return v.n == 1
	case KindInt:
		return int64(v.n)
	case KindFloat:
		return math.Float64frombits(v.n)
	case KindString:
		return v.s
	case KindBytes:
		return []byte(v.s)
	}
	return nil
}

// ValueOf converts a Go value (nil, bool, int, int64, float64, string,
// []byte or Value) to a Value.
func ValueOf(x any) (Value, error) {
	switch t := x.(type) {
	case nil:
		return Null(), nil
	case Value:
		return t, nil
	case bool:
		return Bool(t), nil
	case int:
		return Int(int64(t)), nil
	case int32:
		return Int(int64(t)), nil
	case int64:
		return Int(t), nil
	case float32:
		return Float(float64(t)), nil
	case float64:
		return Float(t), nil
	case string:
		return String(t), nil
	case []byte:
		return Bytes(t), nil
	}
	return Value{}, fmt.Errorf("crdt: unsupported value type %T", x)
}

// String formats v for humans and golden files.
func (v Value) String() string {
	switch v.kind {
	case KindNull:
		return "null"
	case KindBool:
		return strconv.FormatBool(v.n == 1)
	case KindInt:
		return strconv.FormatInt(int64(v.n), 10)
	case KindFloat:
		return strconv.FormatFloat(math.Float64frombits(v.n), 'g', -1, 64)
	case KindString:
		return strconv.Quote(v.s)
	case KindBytes:
		return fmt.Sprintf("0x%x", v.s)
	}
	return "?"
}
