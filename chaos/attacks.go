package chaos

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/ephemeral"
	"github.com/convergenode/convergenode/replica"
	"github.com/libp2p/go-libp2p/core/peer"
	"lukechampine.com/blake3"
)

// chain is one author's change chain as the attacker builds it.
type chain struct {
	key  ed25519.PrivateKey
	seq  uint64
	prev crdt.ID
	lam  uint64 // last lamport used
}

func (c *chain) author() crdt.Author { return bft.AuthorOf(c.key.Public().(ed25519.PublicKey)) }

// Attack names one Byzantine behaviour.
type Attack string

// The attacks. Each is a method of Attacker; Run dispatches by name.
const (
	AttackEquivocate   Attack = "equivocate"
	AttackForge        Attack = "forge"
	AttackTamper       Attack = "tamper"
	AttackLamport      Attack = "lamport"
	AttackFakeParents  Attack = "fake-parents"
	AttackFloodInvalid Attack = "flood-invalid"
	AttackFloodValid   Attack = "flood-valid"
	AttackReplay       Attack = "replay"
	AttackOversized    Attack = "oversized"
	AttackPresence     Attack = "presence-spoof"
	AttackLie          Attack = "lie"
	AttackCensor       Attack = "censor"
)

// Attacks lists every attack, in a stable order.
var Attacks = []Attack{AttackEquivocate, AttackForge, AttackTamper, AttackLamport, AttackFakeParents,
	AttackFloodInvalid, AttackFloodValid, AttackReplay, AttackOversized, AttackPresence, AttackLie, AttackCensor}

// Outcome is what an attack produced, for the invariants: changes no
// honest node may apply, and equivocations every honest node must prove.
type Outcome struct {
	Invalid      []crdt.ID     // must never be applied by an honest node
	Valid        []crdt.ID     // valid changes the attacker published (may be applied)
	Equivocators []crdt.Author // authors that signed two conflicting changes
	Sent         int           // messages published or sent
}

func (o *Outcome) add(p Outcome) {
	o.Invalid = append(o.Invalid, p.Invalid...)
	o.Valid = append(o.Valid, p.Valid...)
	o.Equivocators = append(o.Equivocators, p.Equivocators...)
	o.Sent += p.Sent
}

// rng returns the attacker's random source (seeded from the cluster seed
// and the member index). Callers hold a.mu.
func (a *Attacker) rngLocked() *rand.Rand {
	if a.rnd == nil {
		a.rnd = rand.New(rand.NewPCG(a.c.cfg.Seed, uint64(a.m.Index)+0x9e3779b97f4a7c15))
	}
	return a.rnd
}

func (a *Attacker) u64() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rngLocked().Uint64()
}

func (a *Attacker) randID() crdt.ID {
	var id crdt.ID
	for i := 0; i < len(id); i += 8 {
		binary.LittleEndian.PutUint64(id[i:], a.u64())
	}
	return id
}

func (a *Attacker) garbage(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], a.u64())
		copy(b[i:], w[:])
	}
	return b
}

// puppet returns sock-puppet chain k of the attacker (a key it controls
// besides its own), created on first use.
func (a *Attacker) puppet(k uint64) *chain {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.chains[k]; ok {
		return c
	}
	var seed [24]byte
	binary.LittleEndian.PutUint64(seed[:], a.c.cfg.Seed)
	binary.LittleEndian.PutUint64(seed[8:], uint64(a.m.Index))
	binary.LittleEndian.PutUint64(seed[16:], k)
	s := blake3.Sum256(append([]byte("convergenode/chaos/puppet"), seed[:]...))
	c := &chain{key: ed25519.NewKeyFromSeed(s[:])}
	if k == 0 {
		c.key = a.m.Key
	}
	a.chains[k] = c
	return c
}

// view returns the heads of the document as an honest node holds it now
// (the attacker reads the public document) and the Lamport time a change
// on them must have.
func (a *Attacker) view() ([]crdt.ID, uint64) {
	for _, m := range a.c.Running() {
		d := m.Doc()
		if d == nil {
			continue
		}
		heads := d.Heads()
		snap, err := d.At(heads)
		if err != nil {
			continue
		}
		if len(heads) > crdt.MaxParents {
			heads = heads[:crdt.MaxParents]
		}
		var lam uint64
		for _, h := range heads {
			if c, ok := snap.Graph().Get(h); ok && c.LastLamport() > lam {
				lam = c.LastLamport()
			}
		}
		return append([]crdt.ID(nil), heads...), lam + 1
	}
	return nil, 1
}

// parentsFor returns the parents and Lamport time of chain c's next
// change: the public heads plus c's previous change (so its prev is in
// the causal past even before the honest nodes have applied it).
func (a *Attacker) parentsFor(c *chain) ([]crdt.ID, uint64) {
	heads, lam := a.view()
	if c.seq == 0 {
		return heads, lam
	}
	if len(heads) >= crdt.MaxParents {
		heads = heads[:crdt.MaxParents-1]
	}
	return crdt.SortIDs(dedup(append(heads, c.prev))), max(lam, c.lam+1)
}

// next builds the next change of chain c (not signed, chain not advanced).
func (a *Attacker) next(c *chain, parents []crdt.ID, lamport uint64, tag string) *crdt.Change {
	return &crdt.Change{
		Doc: a.c.cfg.Doc, Author: c.author(), Seq: c.seq + 1, Lamport: lamport, Prev: c.prev,
		Parents: parents, Time: time.Now().UnixMilli(),
		Ops: []crdt.Op{crdt.Insert("byz", fmt.Sprintf("%s-%d", tag, a.u64()%1e9), map[string]crdt.Value{"v": crdt.Int(int64(a.u64() % 1e6))})},
	}
}

// advance moves chain c past env.
func (c *chain) advance(env *bft.Envelope) {
	c.seq = env.Change.LastSeq()
	c.prev = env.ID
	c.lam = env.Change.LastLamport()
}

// signWith signs ch with key, which need not be ch's author (a forgery).
func signWith(key ed25519.PrivateKey, ch *crdt.Change) *bft.Envelope {
	raw, err := ch.Encode()
	if err != nil {
		panic(fmt.Sprintf("chaos: attack built an unencodable change: %v", err))
	}
	e := &bft.Envelope{Change: ch, ID: crdt.HashChange(raw), Raw: raw}
	copy(e.Sig[:], ed25519.Sign(key, e.ID[:]))
	return e
}

func changeMsg(env []byte) []byte {
	return replica.MustEncode(&replica.Message{Type: replica.MsgChange, Items: [][]byte{env}})
}

func (a *Attacker) publishEnv(ctx context.Context, env []byte) error {
	return a.Publish(ctx, TopicChanges, changeMsg(env))
}

// honestAuthor returns the author and key of a running honest member.
func (a *Attacker) victim() *Member {
	hs := a.c.Honest()
	return hs[int(a.u64()%uint64(len(hs)))]
}

// forgedEnvelope returns an encoded envelope claiming an honest author
// and signed with the attacker's key.
func (a *Attacker) forgedEnvelope() []byte {
	v := a.victim()
	heads, lam := a.view()
	ch := a.next(&chain{key: v.Key}, heads, lam, "forged")
	return signWith(a.m.Key, ch).Encode()
}

// Equivocate publishes two validly signed changes by the attacker's own
// key with the same seq and prev; its chain continues from the first.
func (a *Attacker) Equivocate(ctx context.Context) (Outcome, error) {
	c := a.puppet(0)
	heads, lam := a.parentsFor(c)
	x := signWith(c.key, a.next(c, heads, lam, "eqa"))
	y := signWith(c.key, a.next(c, heads, lam, "eqb"))
	c.advance(x)
	o := Outcome{Valid: []crdt.ID{x.ID, y.ID}, Equivocators: []crdt.Author{c.author()}, Sent: 2}
	if err := a.publishEnv(ctx, x.Encode()); err != nil {
		return o, err
	}
	return o, a.publishEnv(ctx, y.Encode())
}

// Forge publishes a change claiming an honest author, signed with the
// attacker's key.
func (a *Attacker) Forge(ctx context.Context) (Outcome, error) {
	b := a.forgedEnvelope()
	id, _ := bft.PeekID(b)
	return Outcome{Invalid: []crdt.ID{id}, Sent: 1}, a.publishEnv(ctx, b)
}

// Tamper signs a valid change, flips a byte of its body and publishes it
// under the original ID and signature.
func (a *Attacker) Tamper(ctx context.Context) (Outcome, error) {
	c := a.puppet(1<<32 | a.u64()%1e6)
	heads, lam := a.view()
	e := signWith(c.key, a.next(c, heads, lam, "tamper"))
	raw := append([]byte(nil), e.Raw...)
	raw[len(raw)-1-int(a.u64()%4)] ^= 0x01
	t := &bft.Envelope{ID: e.ID, Sig: e.Sig, Raw: raw}
	return Outcome{Invalid: []crdt.ID{e.ID, crdt.HashChange(raw)}, Sent: 1}, a.publishEnv(ctx, t.Encode())
}

// InflateLamport publishes a validly signed change whose Lamport time is
// far above 1 + max(parents).
func (a *Attacker) InflateLamport(ctx context.Context) (Outcome, error) {
	c := a.puppet(2<<32 | a.u64()%1e6)
	heads, lam := a.view()
	e := signWith(c.key, a.next(c, heads, lam+1000+a.u64()%(1<<20), "lamport"))
	return Outcome{Invalid: []crdt.ID{e.ID}, Sent: 1}, a.publishEnv(ctx, e.Encode())
}

// FakeParents publishes a validly signed change whose parent does not
// exist; the attacker never serves it when asked.
func (a *Attacker) FakeParents(ctx context.Context) (Outcome, error) {
	c := a.puppet(3<<32 | a.u64()%1e6)
	e := signWith(c.key, a.next(c, []crdt.ID{a.randID()}, 2+a.u64()%100, "fakeparent"))
	return Outcome{Invalid: []crdt.ID{e.ID}, Sent: 1}, a.publishEnv(ctx, e.Encode())
}

// FloodInvalid publishes n invalid messages on the changes topic: raw
// garbage, garbage envelopes and forged changes, in turn.
func (a *Attacker) FloodInvalid(ctx context.Context, n int) (Outcome, error) {
	var o Outcome
	for k := range n {
		var err error
		switch k % 3 {
		case 0:
			err = a.Publish(ctx, TopicChanges, a.garbage(64+int(a.u64()%256)))
		case 1:
			err = a.Publish(ctx, TopicChanges, changeMsg(a.garbage(120+int(a.u64()%64))))
		default:
			b := a.cheapForgery()
			id, _ := bft.PeekID(b)
			o.Invalid = append(o.Invalid, id)
			err = a.publishEnv(ctx, b)
		}
		o.Sent++
		if err != nil {
			return o, err
		}
	}
	return o, nil
}

// cheapForgery is a forged change (an honest author, the attacker's
// signature) with no parents: refused at the signature check, built
// without reading the document.
func (a *Attacker) cheapForgery() []byte {
	v := a.victim()
	return signWith(a.m.Key, a.next(&chain{key: v.Key}, nil, 1, "flood")).Encode()
}

// FloodInvalidSync sends n forged changes straight to peer p on the sync
// stream, where gossipsub's graylist does not reach.
func (a *Attacker) FloodInvalidSync(ctx context.Context, p peer.ID, n int) (Outcome, error) {
	var o Outcome
	for range n {
		b := a.cheapForgery()
		id, _ := bft.PeekID(b)
		o.Invalid = append(o.Invalid, id)
		o.Sent++
		if err := a.Send(ctx, p, changeMsg(b)); err != nil {
			return o, err
		}
	}
	return o, nil
}

// FloodValid publishes n valid but useless changes from a sock puppet
// that writes a lot (each extends its own chain on the current heads).
func (a *Attacker) FloodValid(ctx context.Context, n int) (Outcome, error) {
	c := a.puppet(5 << 32)
	var o Outcome
	for range n {
		heads, lam := a.parentsFor(c)
		e := signWith(c.key, a.next(c, heads, lam, "spam"))
		c.advance(e)
		o.Valid = append(o.Valid, e.ID)
		o.Sent++
		if err := a.publishEnv(ctx, e.Encode()); err != nil {
			return o, err
		}
	}
	return o, nil
}

func dedup(ids []crdt.ID) []crdt.ID {
	seen := map[crdt.ID]bool{}
	out := ids[:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// Replay republishes on the cluster's document the changes an honest
// author signed for document other (captured from its gossip; see Watch).
func (a *Attacker) Replay(ctx context.Context, other string) (Outcome, error) {
	var o Outcome
	for _, msg := range a.Captured(other) {
		m, err := replica.DecodeMessage(msg)
		if err != nil || m.Type != replica.MsgChange {
			continue
		}
		if id, ok := bft.PeekID(m.Items[0]); ok {
			o.Invalid = append(o.Invalid, id)
		}
		o.Sent++
		if err := a.Publish(ctx, TopicChanges, msg); err != nil {
			return o, err
		}
	}
	if o.Sent == 0 {
		return o, fmt.Errorf("chaos: replay: nothing captured on %q", other)
	}
	return o, nil
}

// ReplaySync sends the captured changes of document other straight to p
// on the sync stream as changes of the cluster's document (past
// gossipsub's seen cache, which drops a gossiped replay unvalidated on
// nodes that saw the original).
func (a *Attacker) ReplaySync(ctx context.Context, other string, p peer.ID) (Outcome, error) {
	var o Outcome
	for _, msg := range a.Captured(other) {
		m, err := replica.DecodeMessage(msg)
		if err != nil || m.Type != replica.MsgChange {
			continue
		}
		if id, ok := bft.PeekID(m.Items[0]); ok {
			o.Invalid = append(o.Invalid, id)
		}
		o.Sent++
		if err := a.Send(ctx, p, msg); err != nil {
			return o, err
		}
	}
	return o, nil
}

// Oversized sends messages over the protocol limits: a 2 MiB change item
// on gossip (over crdt.MaxChangeSize), a 5 MiB replica message on the
// sync stream to p (over replica.MaxMessageSize), then a sync frame
// header announcing 1 GiB (over the node's MaxFrame).
func (a *Attacker) Oversized(ctx context.Context, p peer.ID) (Outcome, error) {
	big := func(n int) []byte {
		b := []byte{replica.WireVersion, byte(replica.MsgChange)}
		b = binary.AppendUvarint(b, uint64(n))
		return append(b, make([]byte, n)...)
	}
	o := Outcome{Sent: 3}
	if err := a.Publish(ctx, TopicChanges, big(2<<20)); err != nil {
		return o, err
	}
	if err := a.Send(ctx, p, big(5<<20)); err != nil {
		return o, err
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 1<<30)
	return o, a.SendRaw(ctx, p, append(hdr[:], a.garbage(1024)...))
}

// SpoofPresence publishes a presence batch that claims victim's author
// key for a cursor it then moves, signed with the attacker's key.
func (a *Attacker) SpoofPresence(ctx context.Context, victim *Member, value string) (Outcome, error) {
	now := ephemeral.Timestamp{Wall: time.Now().UnixMilli()}
	b := &ephemeral.Batch{Doc: a.c.cfg.Doc, Time: now,
		Updates: []ephemeral.Update{{Namespace: "cursor", Key: "pos", Time: now, Value: crdt.String(value)}}}
	if err := b.Sign(a.m.Key); err != nil {
		return Outcome{}, err
	}
	b.Author = victim.Author // the spoof: someone else's key, our signature
	enc, err := b.Encode()
	if err != nil {
		return Outcome{}, err
	}
	msg := replica.MustEncode(&replica.Message{Type: replica.MsgEphemeral, Items: [][]byte{enc}})
	return Outcome{Sent: 1}, a.Publish(ctx, TopicEphemeral, msg)
}

// StartLies opens a reconciliation with p claiming heads that do not
// exist and sends forged changes as the stream (a liar also answers the
// sessions honest nodes open with it; see ModeLiar).
func (a *Attacker) StartLies(ctx context.Context, p peer.ID) (Outcome, error) {
	session := a.u64() | 1
	fake := crdt.SortIDs([]crdt.ID{a.randID(), a.randID()})
	if err := a.Send(ctx, p, replica.MustEncode(&replica.Message{Type: replica.MsgHello, Session: session, IDs: fake})); err != nil {
		return Outcome{Sent: 1}, err
	}
	items := [][]byte{a.forgedEnvelope(), a.forgedEnvelope()}
	var o Outcome
	for _, it := range items {
		id, _ := bft.PeekID(it)
		o.Invalid = append(o.Invalid, id)
	}
	o.Sent = 2
	return o, a.Send(ctx, p, replica.MustEncode(&replica.Message{Type: replica.MsgChanges, Session: session, Last: true, Items: items}))
}
