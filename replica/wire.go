package replica

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/convergenode/convergenode/crdt"
)

// WireVersion is the first byte of every replica message.
const WireVersion = 1

// Wire limits. They are protocol constants: a message over any of them is
// refused by DecodeMessage and never produced by EncodeMessage.
const (
	MaxMessageSize = 4 << 20                   // bytes in one encoded message
	MaxMsgIDs      = 4096                      // IDs (heads or needs) in one message
	MaxMsgItems    = 4096                      // opaque items (envelopes, batches) in one message
	MaxItemSize    = crdt.MaxChangeSize + 4096 // bytes in one opaque item (an envelope: change + signature)
	MaxBloomBytes  = 1 << 20                   // bytes in a hello's Bloom filter bit array
)

// MsgType is the kind of a replica message. The numbers are part of the
// wire format.
type MsgType uint8

// The message types.
const (
	// MsgChange is one change: Items[0] is an encoded bft envelope.
	// Gossiped on TopicChanges.
	MsgChange MsgType = 1
	// MsgEvidence is one equivocation proof: Items[0] is an encoded
	// bft.EquivocationProof. Gossiped on TopicEvidence.
	MsgEvidence MsgType = 2
	// MsgEphemeral is one signed ephemeral batch: Items[0]. Gossiped on
	// TopicEphemeral.
	MsgEphemeral MsgType = 3
	// MsgHello opens (Reply false) or answers (Reply true) a reconciliation
	// session: IDs are the sender's heads, Count how many changes it holds,
	// Bloom the changes it added since its last successful sync with the
	// receiver.
	MsgHello MsgType = 4
	// MsgNeeds asks for the changes with the given IDs. Session 0 is a
	// request outside any session (a missing parent of a gossiped change).
	MsgNeeds MsgType = 5
	// MsgChanges carries encoded envelopes in causal order (Items), as batch
	// Seq of a session's stream; Last marks the final batch. With Reply set
	// it answers a MsgNeeds instead (Seq is 0, Last marks the final part).
	MsgChanges MsgType = 6
	// MsgAck acknowledges batch Seq of a session's stream (flow control).
	MsgAck MsgType = 7
	// MsgPresence is a presence snapshot for a newcomer: Items are encoded
	// signed ephemeral batches.
	MsgPresence MsgType = 8
	// MsgDone says the sender finished session Session: it now holds
	// everything both sides advertised in their hellos. With the receiver's
	// own finish, both sides then record the union as the last sync.
	MsgDone MsgType = 9
)

func (t MsgType) String() string {
	switch t {
	case MsgChange:
		return "change"
	case MsgEvidence:
		return "evidence"
	case MsgEphemeral:
		return "ephemeral"
	case MsgHello:
		return "hello"
	case MsgNeeds:
		return "needs"
	case MsgChanges:
		return "changes"
	case MsgAck:
		return "ack"
	case MsgPresence:
		return "presence"
	case MsgDone:
		return "done"
	}
	return "msg(" + strconv.Itoa(int(t)) + ")"
}

// Message is one decoded replica message. Which fields are meaningful
// depends on Type (see the MsgType constants); the others are zero after
// DecodeMessage and ignored by EncodeMessage.
type Message struct {
	Type    MsgType
	Session uint64    // Hello, Needs, Changes, Ack, Done: session number chosen by the initiator
	Reply   bool      // Hello: the responder's answer; Changes: an answer to a Needs, outside the stream
	Last    bool      // Changes: last batch of the stream
	Seq     uint64    // Changes, Ack: batch number in the stream, from 0
	Count   uint64    // Hello: how many changes the sender holds (a size hint)
	IDs     []crdt.ID // Hello: heads; Needs: wanted IDs. Sorted, no duplicates.
	Bloom   *Bloom    // Hello: optional
	Items   [][]byte  // Change/Evidence/Ephemeral: exactly one; Changes, Presence: any number
}

// ErrBadMessage is wrapped by every DecodeMessage and EncodeMessage error.
var ErrBadMessage = errors.New("replica: bad message")

const (
	flagReply = 1 << 0 // Hello
	flagLast  = 1 << 0 // Changes
	flagAns   = 1 << 1 // Changes: answers a Needs
)

// EncodeMessage returns the canonical encoding of m:
//
//	version(1)=1 | type(1) | body
//	change/evidence/ephemeral: bytes item
//	hello:    uvarint session | flags(1) | uvarint count | ids | bloom   (flags: bit 0 reply)
//	needs:    uvarint session | ids
//	changes:  uvarint session | uvarint seq | flags(1) | uvarint n | bytes item * n
//	          (flags: bit 0 last, bit 1 answers a needs)
//	ack:      uvarint session | uvarint seq
//	presence: uvarint n | bytes item * n
//	done:     uvarint session
//	ids   = uvarint n | id[32] * n            (strictly ascending)
//	bloom = k(1) (0: no filter, then nothing) | seed u64 big-endian | uvarint words | word u64 little-endian * words
//	bytes = uvarint length | data
//
// Integers are minimal unsigned LEB128 varints.
func EncodeMessage(m *Message) ([]byte, error) {
	return m.appendTo(make([]byte, 0, m.sizeHint()))
}

// MustEncode is EncodeMessage for messages built by this package; it
// panics on an invalid message.
func MustEncode(m *Message) []byte {
	b, err := EncodeMessage(m)
	if err != nil {
		panic(err)
	}
	return b
}

func (m *Message) sizeHint() int {
	n := 32 + 32*len(m.IDs)
	if m.Bloom != nil {
		n += 8 * len(m.Bloom.Bits)
	}
	for _, it := range m.Items {
		n += len(it) + 5
	}
	return n
}

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadMessage, fmt.Sprintf(format, args...))
}

func (m *Message) appendTo(dst []byte) ([]byte, error) {
	dst = append(dst, WireVersion, byte(m.Type))
	var err error
	switch m.Type {
	case MsgChange, MsgEvidence, MsgEphemeral:
		if len(m.Items) != 1 {
			return nil, badf("%s carries %d items, want 1", m.Type, len(m.Items))
		}
		dst, err = appendItem(dst, m.Items[0])
	case MsgHello:
		dst = binary.AppendUvarint(dst, m.Session)
		var f byte
		if m.Reply {
			f |= flagReply
		}
		dst = append(dst, f)
		dst = binary.AppendUvarint(dst, m.Count)
		if dst, err = appendIDs(dst, m.IDs); err != nil {
			return nil, err
		}
		dst, err = appendBloom(dst, m.Bloom)
	case MsgNeeds:
		dst = binary.AppendUvarint(dst, m.Session)
		dst, err = appendIDs(dst, m.IDs)
	case MsgChanges:
		dst = binary.AppendUvarint(dst, m.Session)
		dst = binary.AppendUvarint(dst, m.Seq)
		var f byte
		if m.Last {
			f |= flagLast
		}
		if m.Reply {
			f |= flagAns
		}
		dst = append(dst, f)
		dst, err = appendItems(dst, m.Items)
	case MsgAck:
		dst = binary.AppendUvarint(dst, m.Session)
		dst = binary.AppendUvarint(dst, m.Seq)
	case MsgPresence:
		dst, err = appendItems(dst, m.Items)
	case MsgDone:
		dst = binary.AppendUvarint(dst, m.Session)
	default:
		return nil, badf("unknown type %d", m.Type)
	}
	if err != nil {
		return nil, err
	}
	if len(dst) > MaxMessageSize {
		return nil, badf("message is %d bytes, limit %d", len(dst), MaxMessageSize)
	}
	return dst, nil
}

func appendItem(dst, it []byte) ([]byte, error) {
	if len(it) > MaxItemSize {
		return nil, badf("item is %d bytes, limit %d", len(it), MaxItemSize)
	}
	dst = binary.AppendUvarint(dst, uint64(len(it)))
	return append(dst, it...), nil
}

func appendItems(dst []byte, items [][]byte) ([]byte, error) {
	if len(items) > MaxMsgItems {
		return nil, badf("%d items, limit %d", len(items), MaxMsgItems)
	}
	dst = binary.AppendUvarint(dst, uint64(len(items)))
	var err error
	for _, it := range items {
		if dst, err = appendItem(dst, it); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

func appendIDs(dst []byte, ids []crdt.ID) ([]byte, error) {
	if len(ids) > MaxMsgIDs {
		return nil, badf("%d IDs, limit %d", len(ids), MaxMsgIDs)
	}
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for i := range ids {
		if i > 0 && ids[i-1].Compare(ids[i]) >= 0 {
			return nil, badf("IDs not sorted or duplicated at %d", i)
		}
		dst = append(dst, ids[i][:]...)
	}
	return dst, nil
}

func appendBloom(dst []byte, b *Bloom) ([]byte, error) {
	if b == nil {
		return append(dst, 0), nil
	}
	if b.K == 0 || b.K > maxBloomK || len(b.Bits) == 0 || len(b.Bits)*8 > MaxBloomBytes {
		return nil, badf("bloom filter k=%d words=%d out of range", b.K, len(b.Bits))
	}
	dst = append(dst, b.K)
	dst = binary.BigEndian.AppendUint64(dst, b.Seed)
	dst = binary.AppendUvarint(dst, uint64(len(b.Bits)))
	for _, w := range b.Bits {
		dst = binary.LittleEndian.AppendUint64(dst, w)
	}
	return dst, nil
}

// DecodeMessage decodes one message. It is strict: it refuses unknown
// versions, types and flags, non-minimal integers, unsorted or duplicate
// IDs, anything over the wire limits and trailing bytes, so every accepted
// input re-encodes to exactly the same bytes. Items are copied: the result
// does not alias b.
func DecodeMessage(b []byte) (*Message, error) {
	return decodeMessage(b, false)
}

// decodeMessageView is DecodeMessage whose items alias b: for callers that
// drop the message before b can change (the gossip validator).
func decodeMessageView(b []byte) (*Message, error) {
	return decodeMessage(b, true)
}

func decodeMessage(b []byte, alias bool) (*Message, error) {
	m := new(Message)
	if err := decodeInto(m, b, alias); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeInto is decodeMessage into *m, which must be zero: a caller that
// drops the message when done keeps it off the heap.
func decodeInto(m *Message, b []byte, alias bool) error {
	if len(b) > MaxMessageSize {
		return badf("message is %d bytes, limit %d", len(b), MaxMessageSize)
	}
	if len(b) < 2 {
		return badf("truncated header")
	}
	if b[0] != WireVersion {
		return badf("unknown version %d", b[0])
	}
	m.Type = MsgType(b[1])
	d := wdec{b: b, off: 2, alias: alias}
	switch m.Type {
	case MsgChange, MsgEvidence, MsgEphemeral:
		m.Items = [][]byte{d.item()}
	case MsgHello:
		m.Session = d.uvarint()
		f := d.byte1()
		if f&^flagReply != 0 {
			d.failf("unknown hello flags %#x", f)
		}
		m.Reply = f&flagReply != 0
		m.Count = d.uvarint()
		m.IDs = d.ids()
		m.Bloom = d.bloom()
	case MsgNeeds:
		m.Session = d.uvarint()
		m.IDs = d.ids()
	case MsgChanges:
		m.Session = d.uvarint()
		m.Seq = d.uvarint()
		f := d.byte1()
		if f&^(flagLast|flagAns) != 0 {
			d.failf("unknown changes flags %#x", f)
		}
		m.Last = f&flagLast != 0
		m.Reply = f&flagAns != 0
		m.Items = d.items()
	case MsgAck:
		m.Session = d.uvarint()
		m.Seq = d.uvarint()
	case MsgPresence:
		m.Items = d.items()
	case MsgDone:
		m.Session = d.uvarint()
	default:
		return badf("unknown type %d", b[1])
	}
	if d.err != nil {
		return d.err
	}
	if d.off != len(b) {
		return badf("%d trailing bytes", len(b)-d.off)
	}
	return nil
}

// changeItem returns the envelope of an encoded MsgChange, aliasing b, and
// false if b is not a well-formed MsgChange (decodeMessage then says why).
// It is decodeMessage's MsgChange case without the allocations, for the
// most common message by far.
func changeItem(b []byte) ([]byte, bool) {
	if len(b) > MaxMessageSize || len(b) < 2 || b[0] != WireVersion || MsgType(b[1]) != MsgChange {
		return nil, false
	}
	d := wdec{b: b, off: 2, alias: true}
	it := d.item()
	return it, d.err == nil && d.off == len(b)
}

// PeekType returns the type of an encoded message without decoding it, or
// 0 if the header is malformed.
func PeekType(b []byte) MsgType {
	if len(b) < 2 || b[0] != WireVersion {
		return 0
	}
	return MsgType(b[1])
}

type wdec struct {
	b     []byte
	off   int
	err   error
	alias bool // items alias b instead of being copied
}

func (d *wdec) failf(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d", ErrBadMessage, fmt.Sprintf(format, args...), d.off)
	}
}

func (d *wdec) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.failf("bad varint")
		return 0
	}
	if n != len(binary.AppendUvarint(nil, v)) {
		d.failf("non-minimal varint")
		return 0
	}
	d.off += n
	return v
}

func (d *wdec) byte1() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.failf("truncated")
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *wdec) count(what string, limit, minEach int) int {
	v := d.uvarint()
	if d.err != nil {
		return 0
	}
	if v > uint64(limit) {
		d.failf("%d %s, limit %d", v, what, limit)
		return 0
	}
	if int(v)*minEach > len(d.b)-d.off {
		d.failf("%d %s exceed the input", v, what)
		return 0
	}
	return int(v)
}

func (d *wdec) item() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > MaxItemSize {
		d.failf("item is %d bytes, limit %d", n, MaxItemSize)
		return nil
	}
	if uint64(len(d.b)-d.off) < n {
		d.failf("truncated item")
		return nil
	}
	it := d.b[d.off : d.off+int(n) : d.off+int(n)]
	if !d.alias {
		it = bytes.Clone(it)
		if it == nil {
			it = []byte{}
		}
	}
	d.off += int(n)
	return it
}

func (d *wdec) items() [][]byte {
	n := d.count("items", MaxMsgItems, 1)
	if d.err != nil || n == 0 {
		return nil
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = d.item()
	}
	return out
}

func (d *wdec) ids() []crdt.ID {
	n := d.count("IDs", MaxMsgIDs, 32)
	if d.err != nil || n == 0 {
		return nil
	}
	out := make([]crdt.ID, n)
	for i := range out {
		copy(out[i][:], d.b[d.off:d.off+32])
		d.off += 32
		if i > 0 && out[i-1].Compare(out[i]) >= 0 {
			d.failf("IDs not sorted or duplicated at %d", i)
			return nil
		}
	}
	return out
}

func (d *wdec) bloom() *Bloom {
	k := d.byte1()
	if d.err != nil || k == 0 {
		return nil
	}
	if k > maxBloomK {
		d.failf("bloom k=%d, limit %d", k, maxBloomK)
		return nil
	}
	if len(d.b)-d.off < 8 {
		d.failf("truncated bloom seed")
		return nil
	}
	seed := binary.BigEndian.Uint64(d.b[d.off:])
	d.off += 8
	n := d.count("bloom words", MaxBloomBytes/8, 8)
	if d.err != nil {
		return nil
	}
	if n == 0 {
		d.failf("empty bloom filter")
		return nil
	}
	words := make([]uint64, n)
	for i := range words {
		words[i] = binary.LittleEndian.Uint64(d.b[d.off:])
		d.off += 8
	}
	return &Bloom{K: k, Seed: seed, Bits: words}
}
