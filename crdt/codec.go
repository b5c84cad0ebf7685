package crdt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"lukechampine.com/blake3"
)

// ChangeDomain is the domain-separation string hashed before a change's
// canonical encoding to form its ID.
const ChangeDomain = "convergenode/change/v1"

// Decoding and validation errors. Every error returned by DecodeChange and
// Change.Validate wraps one of these, so callers can classify with errors.Is.
var (
	ErrTruncated     = errors.New("crdt: truncated input")
	ErrTrailingBytes = errors.New("crdt: trailing bytes after change")
	ErrNonMinimal    = errors.New("crdt: non-minimal integer encoding")
	ErrTooLarge      = errors.New("crdt: over a protocol limit")
	ErrParentOrder   = errors.New("crdt: parents not sorted or duplicated")
	ErrInvalid       = errors.New("crdt: invalid change")
)

// HashChange returns the ID of a change from its canonical encoding.
func HashChange(encoded []byte) ID {
	// Hashers are large (several KiB); reuse them.
	st := hasherPool.Get().(*hashState)
	st.h.Reset()
	st.h.Write(changeDomainBytes)
	st.h.Write(encoded)
	st.h.Sum(st.out[:0])
	id := ID(st.out)
	hasherPool.Put(st)
	return id
}

type hashState struct {
	h   *blake3.Hasher
	out [32]byte
}

var (
	hasherPool        = sync.Pool{New: func() any { return &hashState{h: blake3.New(32, nil)} }}
	changeDomainBytes = []byte(ChangeDomain)
	stateDomainBytes  = []byte(StateDomain)
)

// Validate checks the change against the protocol rules and limits that do
// not depend on any other change: field ranges, sorted unique parents, op
// shapes, UTF-8 names and the size limits. An encodable change is valid.
func (c *Change) Validate() error {
	if err := c.validateHeader(); err != nil {
		return err
	}
	for i := range c.Ops {
		if err := c.Ops[i].validate(); err != nil {
			return fmt.Errorf("op %d: %w", i, err)
		}
	}
	return nil
}

// validateHeader is the part of Validate that does not look inside the
// ops (only at their number).
func (c *Change) validateHeader() error {
	if len(c.Doc) > MaxDocIDLen {
		return fmt.Errorf("%w: doc ID is %d bytes, limit %d", ErrTooLarge, len(c.Doc), MaxDocIDLen)
	}
	if c.Seq == 0 {
		return fmt.Errorf("%w: seq must be at least 1", ErrInvalid)
	}
	if c.Lamport == 0 {
		return fmt.Errorf("%w: lamport must be at least 1", ErrInvalid)
	}
	if (c.Seq == 1) != c.Prev.IsZero() {
		return fmt.Errorf("%w: prev must be zero exactly when seq is 1 (seq %d)", ErrInvalid, c.Seq)
	}
	if len(c.Parents) > MaxParents {
		return fmt.Errorf("%w: %d parents, limit %d", ErrTooLarge, len(c.Parents), MaxParents)
	}
	for i := 1; i < len(c.Parents); i++ {
		if c.Parents[i-1].Compare(c.Parents[i]) >= 0 {
			return fmt.Errorf("%w: parent %d", ErrParentOrder, i)
		}
	}
	if len(c.Ops) == 0 {
		return fmt.Errorf("%w: no ops", ErrInvalid)
	}
	if len(c.Ops) > MaxOps {
		return fmt.Errorf("%w: %d ops, limit %d", ErrTooLarge, len(c.Ops), MaxOps)
	}
	n := uint64(len(c.Ops))
	if c.Lamport > MaxLamport-n || c.Seq > MaxLamport-n {
		return fmt.Errorf("%w: lamport %d or seq %d beyond %d", ErrTooLarge, c.Lamport, c.Seq, uint64(MaxLamport))
	}
	return nil
}

func (o *Op) validate() error {
	if err := checkName("table", o.Table, MaxNameLen); err != nil {
		return err
	}
	if err := checkName("row", o.Row, MaxRowLen); err != nil {
		return err
	}
	switch o.Kind {
	case OpInsert:
		if len(o.Cols) > MaxCols {
			return fmt.Errorf("%w: %d columns, limit %d", ErrTooLarge, len(o.Cols), MaxCols)
		}
		for i := range o.Cols {
			if i > 0 && o.Cols[i-1].Name >= o.Cols[i].Name {
				return fmt.Errorf("%w: insert columns not sorted or duplicated at %q", ErrInvalid, o.Cols[i].Name)
			}
			if err := checkCol(&o.Cols[i]); err != nil {
				return err
			}
		}
	case OpUpdate:
		if len(o.Cols) != 1 {
			return fmt.Errorf("%w: update must set exactly one column, has %d", ErrInvalid, len(o.Cols))
		}
		return checkCol(&o.Cols[0])
	case OpDelete:
		if len(o.Cols) != 0 {
			return fmt.Errorf("%w: delete has columns", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: unknown op kind %d", ErrInvalid, o.Kind)
	}
	return nil
}

func checkName(what, s string, limit int) error {
	if len(s) == 0 {
		return fmt.Errorf("%w: empty %s name", ErrInvalid, what)
	}
	if len(s) > limit {
		return fmt.Errorf("%w: %s name is %d bytes, limit %d", ErrTooLarge, what, len(s), limit)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s name is not UTF-8", ErrInvalid, what)
	}
	return nil
}

func checkCol(c *Col) error {
	if err := checkName("column", c.Name, MaxNameLen); err != nil {
		return err
	}
	v := c.Value
	switch v.kind {
	case KindNull:
		if v.n != 0 || v.s != "" {
			return fmt.Errorf("%w: malformed null", ErrInvalid)
		}
	case KindBool:
		if v.n > 1 || v.s != "" {
			return fmt.Errorf("%w: malformed bool", ErrInvalid)
		}
	case KindInt, KindFloat:
		if v.s != "" {
			return fmt.Errorf("%w: malformed number", ErrInvalid)
		}
	case KindString, KindBytes:
		if v.n != 0 {
			return fmt.Errorf("%w: malformed %s", ErrInvalid, v.kind)
		}
		if len(v.s) > MaxValueLen {
			return fmt.Errorf("%w: %s value is %d bytes, limit %d", ErrTooLarge, v.kind, len(v.s), MaxValueLen)
		}
		if v.kind == KindString && !utf8.ValidString(v.s) {
			return fmt.Errorf("%w: string value is not UTF-8", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: unknown value kind %d", ErrInvalid, v.kind)
	}
	return nil
}

// Encode returns the canonical encoding of c. It fails if c is not valid.
func (c *Change) Encode() ([]byte, error) {
	return c.AppendEncode(make([]byte, 0, c.sizeHint()))
}

// AppendEncode appends the canonical encoding of c to dst.
//
// Layout (all integers are minimal unsigned LEB128 varints, "bytes" is a
// varint length then the bytes; see docs/wire-format.md):
//
//	bytes doc | author[32] | seq | lamport | prev[32] | n | parents[32]*n |
//	zigzag(time) | nops | op*nops
//	op    = kind(1) | bytes table | bytes row | body
//	body  = insert: ncols | (bytes name | value)*ncols
//	        update: bytes name | value
//	        delete: (nothing)
//	value = kind(1) | payload: null: none; bool: 1 byte 0/1; int: zigzag varint;
//	        float: 8 bytes IEEE-754 big-endian; string/bytes: bytes
func (c *Change) AppendEncode(dst []byte) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = appendBytes(dst, c.Doc)
	dst = append(dst, c.Author[:]...)
	dst = binary.AppendUvarint(dst, c.Seq)
	dst = binary.AppendUvarint(dst, c.Lamport)
	dst = append(dst, c.Prev[:]...)
	dst = binary.AppendUvarint(dst, uint64(len(c.Parents)))
	for i := range c.Parents {
		dst = append(dst, c.Parents[i][:]...)
	}
	dst = binary.AppendVarint(dst, c.Time)
	dst = binary.AppendUvarint(dst, uint64(len(c.Ops)))
	for i := range c.Ops {
		o := &c.Ops[i]
		dst = append(dst, byte(o.Kind))
		dst = appendBytes(dst, o.Table)
		dst = appendBytes(dst, o.Row)
		switch o.Kind {
		case OpInsert:
			dst = binary.AppendUvarint(dst, uint64(len(o.Cols)))
			for j := range o.Cols {
				dst = appendBytes(dst, o.Cols[j].Name)
				dst = appendValue(dst, o.Cols[j].Value)
			}
		case OpUpdate:
			dst = appendBytes(dst, o.Cols[0].Name)
			dst = appendValue(dst, o.Cols[0].Value)
		}
	}
	if len(dst)-start > MaxChangeSize {
		return dst[:start], fmt.Errorf("%w: change is %d bytes, limit %d", ErrTooLarge, len(dst)-start, MaxChangeSize)
	}
	return dst, nil
}

func (c *Change) sizeHint() int {
	n := 128 + len(c.Doc) + 32*len(c.Parents)
	for i := range c.Ops {
		n += 8 + len(c.Ops[i].Table) + len(c.Ops[i].Row)
		for _, col := range c.Ops[i].Cols {
			n += 12 + len(col.Name) + len(col.Value.s)
		}
	}
	return n
}

func appendBytes(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendValue(dst []byte, v Value) []byte {
	dst = append(dst, byte(v.kind))
	switch v.kind {
	case KindBool:
		dst = append(dst, byte(v.n))
	case KindInt:
		dst = binary.AppendVarint(dst, int64(v.n))
	case KindFloat:
		dst = binary.BigEndian.AppendUint64(dst, v.n)
	case KindString, KindBytes:
		dst = appendBytes(dst, v.s)
	}
	return dst
}

// DecodeChange decodes a canonical change encoding. It refuses trailing
// bytes, non-minimal integers, unsorted or duplicate parents, unknown kinds
// and anything over the protocol limits, so that every accepted input
// re-encodes to exactly the same bytes.
func DecodeChange(b []byte) (*Change, error) {
	if len(b) > MaxChangeSize {
		return nil, fmt.Errorf("%w: change is %d bytes, limit %d", ErrTooLarge, len(b), MaxChangeSize)
	}
	// The document ID and the row keys are collected in arena (a row key
	// equal to the previous op's only once), which becomes one string at
	// the end: one allocation instead of one per key (a 64-op change had
	// 64). refs says which field gets which part of it; both start on the
	// stack. A key kept after the change is gone keeps the keys of its
	// change with it (at most the change's size).
	var arenaBuf [1024]byte
	var refsBuf [129]strRef
	arena, refs := arenaBuf[:0], refsBuf[:0]
	d := decoder{b: b}
	c := &Change{}
	if doc := d.bytes("doc ID", MaxDocIDLen, false); d.err == nil {
		refs = append(refs, strRef{op: -1, n: int32(len(doc))})
		arena = append(arena, doc...)
	}
	d.fixed(c.Author[:])
	c.Seq = d.uvarint()
	c.Lamport = d.uvarint()
	d.fixed(c.Prev[:])
	np := d.count("parents", MaxParents)
	if np > 0 && d.err == nil {
		c.Parents = make([]ID, np)
		for i := range c.Parents {
			d.fixed(c.Parents[i][:])
		}
	}
	c.Time = d.varint()
	nops := d.count("ops", MaxOps)
	if d.err == nil && nops+1 > cap(refs) && nops*4 <= len(d.b)-d.off {
		refs = append(make([]strRef, 0, nops+1), refs...)
	}
	if d.err == nil {
		// Each op is at least 4 bytes; refuse counts the input cannot hold
		// before allocating for them.
		if nops*4 > len(d.b)-d.off {
			d.fail(ErrTruncated, "op count %d exceeds input", nops)
		} else {
			c.Ops = make([]Op, nops)
		}
	}
	// Column slices of all ops are carved from shared slabs (one
	// allocation for most changes), and names repeated within the change
	// share one string.
	var slab []Col
	cols := func(n, opsLeft int) []Col {
		if cap(slab)-len(slab) < n {
			slab = make([]Col, 0, max(n, opsLeft+n))
		}
		k := len(slab)
		slab = slab[:k+n]
		return slab[k : k+n : k+n]
	}
	// The rules of Validate that the decoding does not already enforce
	// (UTF-8, sorted insert columns) are checked as each string is read,
	// once per distinct name or row key; the first broken one is reported
	// after the header checks, as Validate would report it.
	//
	// The common case of each field (a short name equal to the previous
	// op's, a short row key, an int value) is read inline here; anything
	// else, and every error, goes through the decoder's methods, which
	// start again from the same offset.
	var lastTable, lastCol string
	for i := 0; i < len(c.Ops) && d.err == nil; i++ {
		d.op = i
		o := &c.Ops[i]
		if d.off < len(d.b) {
			o.Kind = OpKind(d.b[d.off])
			d.off++
		} else {
			o.Kind = OpKind(d.byte1())
		}
		if s, next, ok := shortBytes(d.b, d.off, MaxNameLen); ok && d.err == nil && string(s) == lastTable {
			d.off = next
		} else {
			lastTable = d.name("table", MaxNameLen, lastTable)
		}
		o.Table = lastTable
		row, next, ok := shortBytes(d.b, d.off, MaxRowLen)
		if ok && d.err == nil {
			d.off = next
		} else {
			row = d.raw("row", MaxRowLen)
		}
		if row != nil {
			r := refs[len(refs)-1] // the previous op's key (or the doc ID)
			if r.op < 0 || string(row) != string(arena[r.off:r.off+r.n]) {
				if !ascii(row) && !utf8.Valid(row) {
					d.opFault("row name is not UTF-8")
				}
				r = strRef{off: int32(len(arena)), n: int32(len(row))}
				arena = append(arena, row...)
			}
			r.op = int32(i)
			refs = append(refs, r)
		}
		switch o.Kind {
		case OpInsert:
			nc := d.count("columns", MaxCols)
			if d.err == nil && nc*3 > len(d.b)-d.off {
				d.fail(ErrTruncated, "column count %d exceeds input", nc)
			}
			if nc > 0 && d.err == nil {
				o.Cols = cols(nc, len(c.Ops)-i-1)
				for j := range o.Cols {
					o.Cols[j].Name = d.name("column", MaxNameLen, lastCol)
					lastCol = o.Cols[j].Name
					if j > 0 && o.Cols[j-1].Name >= o.Cols[j].Name {
						d.opFault("insert columns not sorted or duplicated at %q", o.Cols[j].Name)
					}
					o.Cols[j].Value = d.value()
				}
			}
		case OpUpdate:
			o.Cols = cols(1, len(c.Ops)-i-1)
			if s, next, ok := shortBytes(d.b, d.off, MaxNameLen); ok && d.err == nil && string(s) == lastCol {
				d.off = next
			} else {
				lastCol = d.name("column", MaxNameLen, lastCol)
			}
			o.Cols[0].Name = lastCol
			if v, next, ok := intValue(d.b, d.off); ok && d.err == nil {
				d.off = next
				o.Cols[0].Value = v
			} else {
				o.Cols[0].Value = d.value()
			}
		case OpDelete:
		default:
			if d.err == nil {
				d.fail(ErrInvalid, "unknown op kind %d", o.Kind)
			}
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	keys := string(arena)
	for _, r := range refs {
		k := keys[r.off : r.off+r.n]
		if r.op < 0 {
			c.Doc = k
		} else {
			c.Ops[r.op].Row = k
		}
	}
	if d.off != len(b) {
		return nil, fmt.Errorf("%w: %d bytes", ErrTrailingBytes, len(b)-d.off)
	}
	if err := c.validateHeader(); err != nil {
		return nil, err
	}
	if d.fault != nil {
		return nil, d.fault
	}
	return c, nil
}

// shortBytes reads a length-prefixed byte string of 1 to 127 bytes (at
// most limit) at b[off:] without copying it; ok is false if there is none
// there (longer, empty, truncated): the caller then uses the decoder's
// general path, which reports the error. Small enough to be inlined.
func shortBytes(b []byte, off, limit int) (s []byte, next int, ok bool) {
	if off < len(b) {
		if n := int(b[off]); n > 0 && n < 0x80 && n <= limit && n < len(b)-off {
			return b[off+1 : off+1+n], off + 1 + n, true
		}
	}
	return nil, off, false
}

// ascii reports whether b is all ASCII (and so UTF-8); for the short
// strings of a change it is cheaper than utf8.Valid.
func ascii(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// intValue reads an int value (kind byte and minimal zigzag varint) at
// b[off:]; ok is false if there is none there (see shortBytes).
func intValue(b []byte, off int) (v Value, next int, ok bool) {
	if off >= len(b) || Kind(b[off]) != KindInt {
		return Value{}, off, false
	}
	u, n := binary.Uvarint(b[off+1:])
	if n <= 0 || (n > 1 && b[off+n] == 0) { // error, or not minimal
		return Value{}, off, false
	}
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return Value{kind: KindInt, n: uint64(x)}, off + 1 + n, true
}

type decoder struct {
	b      []byte
	off    int
	err    error
	names  [16]string // table and column names seen in this change
	nnames int
	op     int   // index of the op being decoded
	fault  error // the first op that breaks a rule of Validate
}

// strRef says that arena[off:off+n] is the row key of op op, or the
// document ID if op is -1.
type strRef struct {
	op, off, n int32
}

// opFault records that the current op breaks a rule of Validate (with
// Validate's message), unless an earlier op did.
func (d *decoder) opFault(format string, args ...any) {
	if d.fault == nil {
		d.fault = fmt.Errorf("op %d: %w: %s", d.op, ErrInvalid, fmt.Sprintf(format, args...))
	}
}

// raw reads a length-prefixed non-empty byte string without copying it.
// The common case (a length under 128 that fits) is inlined; the rest,
// and every error, is rawSlow.
func (d *decoder) raw(what string, limit int) []byte {
	if off := d.off; d.err == nil && off < len(d.b) {
		if n := int(d.b[off]); n > 0 && n < 0x80 && n <= limit && n < len(d.b)-off {
			d.off = off + 1 + n
			return d.b[off+1 : off+1+n]
		}
	}
	return d.rawSlow(what, limit)
}

func (d *decoder) rawSlow(what string, limit int) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) {
		d.fail(ErrTooLarge, "%s is %d bytes, limit %d", what, n, limit)
		return nil
	}
	if uint64(len(d.b)-d.off) < n {
		d.fail(ErrTruncated, "%s", what)
		return nil
	}
	if n == 0 {
		d.fail(ErrInvalid, "empty %s", what)
		return nil
	}
	b := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}

// name reads a table or column name, sharing the string with an earlier
// equal name of the same change: prev (the name last read in the same
// place, or "") is tried first.
func (d *decoder) name(what string, limit int, prev string) string {
	b := d.raw(what, limit)
	if b == nil {
		return ""
	}
	if string(b) == prev {
		return prev
	}
	for _, s := range d.names[:d.nnames] {
		if string(b) == s {
			return s
		}
	}
	s := string(b)
	if !utf8.ValidString(s) {
		d.opFault("%s name is not UTF-8", what)
	}
	if d.nnames < len(d.names) {
		d.names[d.nnames] = s
		d.nnames++
	}
	return s
}

func (d *decoder) fail(base error, format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d", base, fmt.Sprintf(format, args...), d.off)
	}
}

// uvarint reads a minimal unsigned varint. The one-byte case (always
// minimal) is inlined; the rest is uvarintSlow.
func (d *decoder) uvarint() uint64 {
	if d.err == nil && d.off < len(d.b) && d.b[d.off] < 0x80 {
		v := d.b[d.off]
		d.off++
		return uint64(v)
	}
	return d.uvarintSlow()
}

func (d *decoder) uvarintSlow() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		if n == 0 {
			d.fail(ErrTruncated, "varint")
		} else {
			d.fail(ErrInvalid, "varint overflows 64 bits")
		}
		return 0
	}
	if n != uvarintLen(v) {
		d.fail(ErrNonMinimal, "varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func (d *decoder) count(what string, limit int) int {
	v := d.uvarint()
	if d.err == nil && v > uint64(limit) {
		d.fail(ErrTooLarge, "%d %s, limit %d", v, what, limit)
		return 0
	}
	return int(v)
}

func (d *decoder) fixed(dst []byte) {
	if d.err != nil {
		return
	}
	if len(d.b)-d.off < len(dst) {
		d.fail(ErrTruncated, "%d-byte field", len(dst))
		return
	}
	copy(dst, d.b[d.off:])
	d.off += len(dst)
}

func (d *decoder) byte1() byte {
	if d.err == nil && d.off < len(d.b) {
		c := d.b[d.off]
		d.off++
		return c
	}
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail(ErrTruncated, "byte")
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) str(what string, limit int, nonEmpty bool) string {
	return string(d.bytes(what, limit, nonEmpty))
}

// bytes reads a length-prefixed byte string without copying it.
func (d *decoder) bytes(what string, limit int, nonEmpty bool) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) {
		d.fail(ErrTooLarge, "%s is %d bytes, limit %d", what, n, limit)
		return nil
	}
	if uint64(len(d.b)-d.off) < n {
		d.fail(ErrTruncated, "%s", what)
		return nil
	}
	if nonEmpty && n == 0 {
		d.fail(ErrInvalid, "empty %s", what)
		return nil
	}
	b := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}

func (d *decoder) value() Value {
	k := Kind(d.byte1())
	if d.err != nil {
		return Value{}
	}
	switch k {
	case KindNull:
		return Value{}
	case KindBool:
		b := d.byte1()
		if d.err == nil && b > 1 {
			d.fail(ErrInvalid, "bool byte %d", b)
		}
		return Value{kind: KindBool, n: uint64(b)}
	case KindInt:
		return Value{kind: KindInt, n: uint64(d.varint())}
	case KindFloat:
		var f [8]byte
		d.fixed(f[:])
		return Value{kind: KindFloat, n: binary.BigEndian.Uint64(f[:])}
	case KindString, KindBytes:
		s := d.str(k.String()+" value", MaxValueLen, false)
		if k == KindString && d.err == nil && !utf8.ValidString(s) {
			d.opFault("string value is not UTF-8")
		}
		return Value{kind: k, s: s}
	}
	d.fail(ErrInvalid, "unknown value kind %d", k)
	return Value{}
}

// SortIDs sorts ids bytewise in place and removes duplicates, returning the
// shortened slice. Use it to build a valid Parents list.
func SortIDs(ids []ID) []ID {
	if len(ids) < 2 {
		return ids
	}
	sortIDs(ids)
	out := ids[:1]
	for _, id := range ids[1:] {
		if !bytes.Equal(id[:], out[len(out)-1][:]) {
			out = append(out, id)
		}
	}
	return out
}
