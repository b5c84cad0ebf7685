package node

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/convergenode/convergenode/crdt"
)

// JSONValue is a crdt.Value in the local API's JSON form: null, true/false,
// integers as JSON integers, floats as JSON numbers with a fraction or an
// exponent (1.0, not 1), strings as strings and bytes as
// {"$bytes": "<base64>"}. Non-finite floats are {"$float": "NaN"|"+Inf"|"-Inf"}.
type JSONValue struct{ crdt.Value }

// MarshalJSON implements json.Marshaler.
func (v JSONValue) MarshalJSON() ([]byte, error) {
	switch v.Kind() {
	case crdt.KindNull:
		return []byte("null"), nil
	case crdt.KindBool:
		b, _ := v.AsBool()
		return json.Marshal(b)
	case crdt.KindInt:
		i, _ := v.AsInt()
		return strconv.AppendInt(nil, i, 10), nil
	case crdt.KindFloat:
		f, _ := v.AsFloat()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return json.Marshal(map[string]string{"$float": strconv.FormatFloat(f, 'g', -1, 64)})
		}
		s := strconv.FormatFloat(f, 'g', -1, 64)
		if !bytes.ContainsAny([]byte(s), ".eE") {
			s += ".0"
		}
		return []byte(s), nil
	case crdt.KindString:
		s, _ := v.AsString()
		return json.Marshal(s)
	case crdt.KindBytes:
		b, _ := v.AsBytes()
		return json.Marshal(map[string]string{"$bytes": base64.StdEncoding.EncodeToString(b)})
	}
	return nil, fmt.Errorf("node: unknown value kind %v", v.Kind())
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *JSONValue) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errors.New("empty value")
	}
	switch b[0] {
	case 'n':
		v.Value = crdt.Null()
		return nil
	case 't', 'f':
		var x bool
		if err := json.Unmarshal(b, &x); err != nil {
			return err
		}
		v.Value = crdt.Bool(x)
		return nil
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v.Value = crdt.String(s)
		return nil
	case '{':
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil || len(m) != 1 {
			return errors.New(`object values must be {"$bytes": "<base64>"} or {"$float": "NaN"}`)
		}
		if s, ok := m["$bytes"]; ok {
			raw, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return fmt.Errorf("$bytes: %w", err)
			}
			v.Value = crdt.Bytes(raw)
			return nil
		}
		if s, ok := m["$float"]; ok {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return fmt.Errorf("$float: %w", err)
			}
			v.Value = crdt.Float(f)
			return nil
		}
		return errors.New(`object values must be {"$bytes": "<base64>"} or {"$float": "NaN"}`)
	case '[':
		return errors.New("arrays are not values (null, bool, number, string or {\"$bytes\": ...})")
	}
	s := string(b)
	if !bytes.ContainsAny(b, ".eE") {
		i, err := strconv.ParseInt(s, 10, 64)
		if err == nil {
			v.Value = crdt.Int(i)
			return nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("bad number %s", s)
	}
	v.Value = crdt.Float(f)
	return nil
}

// JSONRow is a row in the API's JSON form.
type JSONRow struct {
	Key  string               `json:"key"`
	Cols map[string]JSONValue `json:"cols"`
}

func rowJSON(r crdt.Row) JSONRow {
	out := JSONRow{Key: r.Key, Cols: make(map[string]JSONValue, len(r.Cols))}
	for _, c := range r.Cols {
		out.Cols[c.Name] = JSONValue{c.Value}
	}
	return out
}

func rowsJSON(rs []crdt.Row) []JSONRow {
	out := make([]JSONRow, 0, len(rs))
	for _, r := range rs {
		out = append(out, rowJSON(r))
	}
	return out
}

func versionJSON(v crdt.Version) []string {
	out := make([]string, 0, len(v))
	for _, id := range v {
		out = append(out, id.String())
	}
	return out
}

// StringValue returns a string value (a shorthand for crdt.String).
func StringValue(s string) crdt.Value { return crdt.String(s) }
