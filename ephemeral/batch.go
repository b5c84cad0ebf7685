package ephemeral

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/convergenode/convergenode/crdt"
	"lukechampine.com/blake3"
)

// Domain is the domain-separation string hashed before a batch's signed
// bytes. The signature is Ed25519 over BLAKE3-256(Domain || body).
const Domain = "convergenode/ephemeral/v1"

// Protocol limits. Every honest node must accept and refuse the same batches,
// so these are constants: DecodeBatch refuses anything over them and the store
// never produces it.
const (
	MaxBatchSize    = 1 << 20          // bytes in one encoded batch
	MaxBatchEntries = 1024             // updates in one batch
	MaxNamespaceLen = 256              // bytes in a namespace
	MaxKeyLen       = 1024             // bytes in a key
	MaxValueLen     = crdt.MaxValueLen // bytes in a string or bytes value
	MaxDocIDLen     = crdt.MaxDocIDLen // bytes in a document ID
)

// Decoding and validation errors. Every error returned by DecodeBatch and
// Batch.Validate wraps one of these.
var (
	ErrTruncated     = errors.New("ephemeral: truncated input")
	ErrTrailingBytes = errors.New("ephemeral: trailing bytes after batch")
	ErrNonMinimal    = errors.New("ephemeral: non-minimal integer encoding")
	ErrTooLarge      = errors.New("ephemeral: over a protocol limit")
	ErrMalformed     = errors.New("ephemeral: malformed batch")
)

// Batch is the unit of signing and gossip: every update one author made to
// one document in one tick, signed once.
//
// Wire layout (integers are minimal unsigned LEB128 varints, "bytes" is a
// varint length then the bytes, ts is zigzag(wall) then logical):
//
//	bytes doc | author[32] | ts | n | update*n | sig[64]
//	update = bytes namespace | bytes key | ts | op(1) | value if op is set
//	op     = 0 set, 1 delete
//	value  = kind(1) | payload, as in crdt (null: none; bool: 1 byte 0/1;
//	         int: zigzag varint; float: 8 bytes big-endian; string/bytes: bytes)
//
// Updates are sorted by (namespace, key) without duplicates, namespaces and
// keys are non-empty UTF-8, every update's ts is at most the batch's ts, and
// the signature covers everything before it. The batch Time is the author's
// HLC reading when it flushed; it is strictly increasing per honest author and,
// with the signature, identifies the batch: a receiver refuses a batch it has
// already accepted (replay) and any batch older than the TTL.
//
// A Batch is treated as immutable once signed or decoded.
type Batch struct {
	Doc     string
	Author  crdt.Author
	Time    Timestamp
	Updates []Update
	Sig     [64]byte
}

// Validate checks the batch against the protocol rules that need no key:
// limits, sorted unique updates, UTF-8 names, value shapes, update times.
func (b *Batch) Validate() error {
	if len(b.Doc) > MaxDocIDLen {
		return fmt.Errorf("%w: doc ID is %d bytes, limit %d", ErrTooLarge, len(b.Doc), MaxDocIDLen)
	}
	if len(b.Updates) == 0 {
		return fmt.Errorf("%w: no updates", ErrMalformed)
	}
	if len(b.Updates) > MaxBatchEntries {
		return fmt.Errorf("%w: %d updates, limit %d", ErrTooLarge, len(b.Updates), MaxBatchEntries)
	}
	for i := range b.Updates {
		u := &b.Updates[i]
		if err := checkName("namespace", u.Namespace, MaxNamespaceLen); err != nil {
			return fmt.Errorf("update %d: %w", i, err)
		}
		if err := checkName("key", u.Key, MaxKeyLen); err != nil {
			return fmt.Errorf("update %d: %w", i, err)
		}
		if i > 0 {
			p := &b.Updates[i-1]
			if p.Namespace > u.Namespace || (p.Namespace == u.Namespace && p.Key >= u.Key) {
				return fmt.Errorf("%w: update %d (%s/%s) not sorted or duplicated", ErrMalformed, i, u.Namespace, u.Key)
			}
		}
		if u.Time.Compare(b.Time) > 0 {
			return fmt.Errorf("%w: update %d time %v after batch time %v", ErrMalformed, i, u.Time, b.Time)
		}
		if u.Delete && !u.Value.IsNull() {
			return fmt.Errorf("%w: update %d deletes with a value", ErrMalformed, i)
		}
		if err := checkValue(u.Value); err != nil {
			return fmt.Errorf("update %d: %w", i, err)
		}
	}
	return nil
}

func checkName(what, s string, limit int) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrMalformed, what)
	}
	if len(s) > limit {
		return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, what, len(s), limit)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not UTF-8", ErrMalformed, what)
	}
	return nil
}

func checkValue(v crdt.Value) error {
	switch v.Kind() {
	case crdt.KindNull, crdt.KindBool, crdt.KindInt, crdt.KindFloat:
		return nil
	case crdt.KindString:
		s, _ := v.AsString()
		if len(s) > MaxValueLen {
			return fmt.Errorf("%w: string value is %d bytes, limit %d", ErrTooLarge, len(s), MaxValueLen)
		}
		if !utf8.ValidString(s) {
			return fmt.Errorf("%w: string value is not UTF-8", ErrMalformed)
		}
		return nil
	case crdt.KindBytes:
		if n := bytesLen(v); n > MaxValueLen {
			return fmt.Errorf("%w: bytes value is %d bytes, limit %d", ErrTooLarge, n, MaxValueLen)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown value kind %d", ErrMalformed, v.Kind())
}

func bytesLen(v crdt.Value) int {
	b, _ := v.AsBytes()
	return len(b)
}

// body appends the signed part of the encoding (everything but Sig) to dst.
// It does not validate.
func (b *Batch) body(dst []byte) []byte {
	dst = appendBytes(dst, b.Doc)
	dst = append(dst, b.Author[:]...)
	dst = appendTS(dst, b.Time)
	dst = binary.AppendUvarint(dst, uint64(len(b.Updates)))
	for i := range b.Updates {
		u := &b.Updates[i]
		dst = appendBytes(dst, u.Namespace)
		dst = appendBytes(dst, u.Key)
		dst = appendTS(dst, u.Time)
		if u.Delete {
			dst = append(dst, 1)
			continue
		}
		dst = append(dst, 0)
		dst = appendValue(dst, u.Value)
	}
	return dst
}

func (b *Batch) sizeHint() int {
	n := 64 + len(b.Doc) + 32 + 20 + 64
	for i := range b.Updates {
		u := &b.Updates[i]
		n += 32 + len(u.Namespace) + len(u.Key)
		if k := u.Value.Kind(); k == crdt.KindString || k == crdt.KindBytes {
			n += valueLen(u.Value)
		}
	}
	return n
}

func valueLen(v crdt.Value) int {
	if s, ok := v.AsString(); ok {
		return len(s)
	}
	return bytesLen(v)
}

// Encode returns the canonical encoding of b, signature included. It fails
// if b is not valid or is over MaxBatchSize.
func (b *Batch) Encode() ([]byte, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	dst := b.body(make([]byte, 0, b.sizeHint()))
	dst = append(dst, b.Sig[:]...)
	if len(dst) > MaxBatchSize {
		return nil, fmt.Errorf("%w: batch is %d bytes, limit %d", ErrTooLarge, len(dst), MaxBatchSize)
	}
	return dst, nil
}

// Hash returns BLAKE3-256(Domain || body), the digest the author signs.
func (b *Batch) Hash() ([32]byte, error) {
	if err := b.Validate(); err != nil {
		return [32]byte{}, err
	}
	return hashBody(b.body(make([]byte, 0, b.sizeHint()))), nil
}

func hashBody(body []byte) [32]byte {
	h := blake3.New(32, nil)
	h.Write([]byte(Domain))
	h.Write(body)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// Sign sets b.Author to key's public key and b.Sig to its signature.
func (b *Batch) Sign(key ed25519.PrivateKey) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("ephemeral: sign: private key is %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	copy(b.Author[:], key.Public().(ed25519.PublicKey))
	d, err := b.Hash()
	if err != nil {
		return fmt.Errorf("ephemeral: sign: %w", err)
	}
	copy(b.Sig[:], ed25519.Sign(key, d[:]))
	return nil
}

// Verify checks that b is valid and that Sig is Author's signature of it.
// It is stateless and safe to call from several goroutines at once (for a
// pubsub validator). It returns ErrBadSignature or a validation error.
func (b *Batch) Verify() error {
	d, err := b.Hash()
	if err != nil {
		return err
	}
	if !ed25519.Verify(b.Author[:], d[:], b.Sig[:]) {
		return ErrBadSignature
	}
	return nil
}

func appendBytes(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendTS(dst []byte, t Timestamp) []byte {
	dst = binary.AppendVarint(dst, t.Wall)
	return binary.AppendUvarint(dst, uint64(t.Logical))
}

// appendValue writes kind byte + payload, the layout of crdt's codec.
func appendValue(dst []byte, v crdt.Value) []byte {
	dst = append(dst, byte(v.Kind()))
	switch v.Kind() {
	case crdt.KindBool:
		x, _ := v.AsBool()
		if x {
			return append(dst, 1)
		}
		return append(dst, 0)
	case crdt.KindInt:
		x, _ := v.AsInt()
		return binary.AppendVarint(dst, x)
	case crdt.KindFloat:
		x, _ := v.AsFloat()
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(x))
	case crdt.KindString:
		s, _ := v.AsString()
		return appendBytes(dst, s)
	case crdt.KindBytes:
		x, _ := v.AsBytes()
		dst = binary.AppendUvarint(dst, uint64(len(x)))
		return append(dst, x...)
	}
	return dst
}

// DecodeBatch decodes a canonical batch encoding. It refuses trailing bytes,
// non-minimal integers, unsorted or duplicate updates, unknown kinds, invalid
// UTF-8 and anything over the protocol limits, so every accepted input
// re-encodes to exactly the same bytes. It does not check the signature (see
// Batch.Verify; Store.Merge does both).
func DecodeBatch(p []byte) (*Batch, error) {
	if len(p) > MaxBatchSize {
		return nil, fmt.Errorf("%w: batch is %d bytes, limit %d", ErrTooLarge, len(p), MaxBatchSize)
	}
	d := decoder{b: p}
	b := &Batch{}
	b.Doc = d.str("doc ID", MaxDocIDLen)
	d.fixed(b.Author[:])
	b.Time = d.ts()
	n := d.uvarint()
	if d.err == nil {
		switch {
		case n > MaxBatchEntries:
			d.fail(ErrTooLarge, "%d updates, limit %d", n, MaxBatchEntries)
		case n*6 > uint64(len(p)-d.off):
			// Each update is at least 6 bytes; refuse counts the input
			// cannot hold before allocating for them.
			d.fail(ErrTruncated, "update count %d exceeds input", n)
		default:
			b.Updates = make([]Update, n)
		}
	}
	for i := 0; i < len(b.Updates) && d.err == nil; i++ {
		u := &b.Updates[i]
		if ns := d.raw("namespace", MaxNamespaceLen); i > 0 && string(ns) == b.Updates[i-1].Namespace {
			u.Namespace = b.Updates[i-1].Namespace // sorted: runs share one string
		} else {
			u.Namespace = string(ns)
		}
		u.Key = d.str("key", MaxKeyLen)
		u.Time = d.ts()
		switch op := d.byte1(); op {
		case 0:
			u.Value = d.value()
		case 1:
			u.Delete = true
		default:
			d.fail(ErrMalformed, "unknown update op %d", op)
		}
	}
	d.fixed(b.Sig[:])
	if d.err != nil {
		return nil, d.err
	}
	if d.off != len(p) {
		return nil, fmt.Errorf("%w: %d bytes", ErrTrailingBytes, len(p)-d.off)
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return b, nil
}

type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(base error, format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d", base, fmt.Sprintf(format, args...), d.off)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		if n == 0 {
			d.fail(ErrTruncated, "varint")
		} else {
			d.fail(ErrMalformed, "varint overflows 64 bits")
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

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) ts() Timestamp {
	w := d.varint()
	l := d.uvarint()
	if d.err == nil && l > math.MaxUint32 {
		d.fail(ErrMalformed, "logical time %d over 32 bits", l)
		return Timestamp{}
	}
	return Timestamp{Wall: w, Logical: uint32(l)}
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

func (d *decoder) raw(what string, limit int) []byte {
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
	s := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

func (d *decoder) str(what string, limit int) string { return string(d.raw(what, limit)) }

func (d *decoder) value() crdt.Value {
	k := crdt.Kind(d.byte1())
	if d.err != nil {
		return crdt.Value{}
	}
	switch k {
	case crdt.KindNull:
		return crdt.Null()
	case crdt.KindBool:
		c := d.byte1()
		if d.err == nil && c > 1 {
			d.fail(ErrMalformed, "bool byte %d", c)
		}
		return crdt.Bool(c == 1)
	case crdt.KindInt:
		return crdt.Int(d.varint())
	case crdt.KindFloat:
		var f [8]byte
		d.fixed(f[:])
		return crdt.Float(math.Float64frombits(binary.BigEndian.Uint64(f[:])))
	case crdt.KindString:
		return crdt.String(d.str("string value", MaxValueLen))
	case crdt.KindBytes:
		return crdt.Bytes(d.raw("bytes value", MaxValueLen))
	}
	d.fail(ErrMalformed, "unknown value kind %d", k)
	return crdt.Value{}
}
