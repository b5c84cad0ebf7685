package bft

import (
	"crypto/ed25519"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/convergenode/convergenode/crdt"
)

var t0 = time.Unix(1_700_000_000, 0)

// node is a replica for tests: a document behind a gate, with a key.
type node struct {
	doc  *crdt.Doc
	gate *Gate
	key  ed25519.PrivateKey
}

func newNode(n byte, cfg GateConfig) *node {
	k := testKey(n)
	doc := crdt.NewDoc(crdt.DocOptions{ID: testDoc, Author: authorOf(k)})
	return &node{doc: doc, gate: NewGate(cfg, doc), key: k}
}

func (n *node) propose(t testing.TB, ops ...crdt.Op) *Envelope {
	t.Helper()
	if len(ops) == 0 {
		ops = []crdt.Op{crdt.Update("t", "r", "c", crdt.Int(int64(n.doc.Graph().Len())))}
	}
	env, _, err := n.gate.Propose(n.key, ops, t0)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// recv passes e's wire form through both stages.
func (n *node) recv(from string, e *Envelope) Result {
	return n.gate.ReceiveBytes(from, e.Encode(), t0)
}

func (n *node) mustAccept(t testing.TB, from string, envs ...*Envelope) {
	t.Helper()
	for _, e := range envs {
		res := n.recv(from, e)
		if res.Rejection != nil {
			t.Fatalf("change %s refused: %v", e.ID.Short(), res.Rejection)
		}
	}
}

func sameState(t testing.TB, nodes ...*node) {
	t.Helper()
	for _, n := range nodes[1:] {
		if n.doc.StateHash() != nodes[0].doc.StateHash() {
			t.Fatal("replicas diverged: state hashes differ")
		}
		if !n.doc.Heads().Equal(nodes[0].doc.Heads()) {
			t.Fatalf("replicas diverged: heads %v vs %v", n.doc.Heads(), nodes[0].doc.Heads())
		}
	}
}

// contained checks that every attack input is refused with reason want by
// two replicas that also receive honest changes (in different orders), and
// that the replicas end identical with the honest changes applied.
func contained(t *testing.T, want Reason, attack ...[]byte) {
	t.Helper()
	src := newNode(9, GateConfig{})
	var honest []*Envelope
	for i := range 6 {
		honest = append(honest, src.propose(t, crdt.Update("t", "h", "c", crdt.Int(int64(i)))))
	}
	a, b := newNode(10, GateConfig{}), newNode(11, GateConfig{})
	check := func(n *node, in []byte) {
		t.Helper()
		res := n.gate.ReceiveBytes("mallory", in, t0)
		wantReason(t, res.Rejection, want)
		if res.Rejection.Penalize() != want.Penalize() || res.Rejection.From != "mallory" {
			t.Fatalf("rejection %v: penalize %v from %q", res.Rejection, res.Rejection.Penalize(), res.Rejection.From)
		}
	}
	for i, e := range honest {
		a.mustAccept(t, "src", e)
		if i == 2 {
			for _, x := range attack {
				check(a, x)
			}
		}
	}
	for _, x := range attack {
		check(b, x)
	}
	for i := len(honest) - 1; i >= 0; i-- {
		b.recv("src", honest[i]) // reverse order: exercises the buffer
	}
	sameState(t, a, b, src)
	if got := a.gate.Metrics().Rejected[want]; got != uint64(len(attack)) {
		t.Fatalf("counted %d %v, want %d", got, want, len(attack))
	}
}

func TestGateHonestReplicasConverge(t *testing.T) {
	authors := []*node{newNode(1, GateConfig{}), newNode(2, GateConfig{}), newNode(3, GateConfig{})}
	var all []*Envelope
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 30 {
		w := authors[rng.IntN(len(authors))]
		e := w.propose(t, crdt.Update("t", "r"+string(rune('a'+round%5)), "c", crdt.Int(int64(round))))
		all = append(all, e)
		// Gossip to a random other author, sometimes.
		if o := authors[rng.IntN(len(authors))]; o != w && rng.IntN(2) == 0 {
			for _, x := range all {
				o.recv("gossip", x)
			}
		}
	}
	replicas := []*node{newNode(20, GateConfig{}), newNode(21, GateConfig{}), newNode(22, GateConfig{})}
	for i, r := range replicas {
		order := rng.Perm(len(all))
		if i == 0 {
			order = nil
			for k := range all {
				order = append(order, k)
			}
		}
		for _, k := range order {
			res := r.recv("p", all[k])
			if res.Rejection != nil {
				t.Fatal(res.Rejection)
			}
		}
		if m := r.gate.Metrics(); m.Accepted != uint64(len(all)) || m.BufferCount != 0 || m.BufferBytes != 0 {
			t.Fatalf("replica %d: %+v", i, m)
		}
	}
	for _, a := range authors {
		for _, x := range all {
			a.recv("gossip", x)
		}
	}
	sameState(t, append(replicas, authors...)...)
}

func TestGateDuplicates(t *testing.T) {
	src := newNode(1, GateConfig{})
	e1 := src.propose(t)
	e2 := src.propose(t)
	r := newNode(2, GateConfig{})
	if res := r.recv("p", e2); !res.Buffered || len(res.Missing) != 1 || res.Missing[0] != e1.ID || res.From != "p" {
		t.Fatalf("want e2 buffered missing e1: %+v", res)
	}
	if res := r.recv("q", e2); !res.Duplicate {
		t.Fatal("buffered change not a duplicate")
	}
	var events []crdt.ID
	r.doc.Subscribe(func(ev crdt.ChangeEvent) { events = append(events, ev.ID) })
	res := r.recv("p", e1)
	if len(res.Accepted) != 2 || res.Accepted[0].ID != e1.ID || res.Accepted[1].ID != e2.ID {
		t.Fatalf("want e1, e2 accepted in causal order: %+v", res)
	}
	if !slices.Equal(events, []crdt.ID{e1.ID, e2.ID}) {
		t.Fatalf("document events %v, want e1, e2", events)
	}
	if res := r.recv("p", e1); !res.Duplicate {
		t.Fatal("applied change not a duplicate")
	}
	// A forgery that claims a known ID is dropped as a duplicate unread.
	bad := e1.Encode()
	bad[len(bad)-1] ^= 1
	if res := r.gate.ReceiveBytes("p", bad, t0); !res.Duplicate || res.Rejection != nil {
		t.Fatalf("%+v", res)
	}
	if m := r.gate.Metrics(); m.Duplicates != 3 || m.Released != 1 || m.Accepted != 2 {
		t.Fatalf("%+v", m)
	}
}

func TestGateCascadeRelease(t *testing.T) {
	a, b := newNode(1, GateConfig{}), newNode(2, GateConfig{})
	a1 := a.propose(t)
	b.mustAccept(t, "a", a1)
	b1 := b.propose(t)
	a.mustAccept(t, "b", b1)
	a2 := a.propose(t) // parents: b1; prev a1
	b2 := b.propose(t) // parents: b1
	r := newNode(3, GateConfig{})
	for _, e := range []*Envelope{a2, b2, b1} {
		if res := r.recv("p", e); !res.Buffered {
			t.Fatalf("%s not buffered: %+v", e.ID.Short(), res)
		}
	}
	res := r.recv("p", a1)
	var got []crdt.ID
	for _, e := range res.Accepted {
		got = append(got, e.ID)
	}
	want := []crdt.ID{a1.ID, b1.ID, a2.ID, b2.ID}
	if len(got) != len(want) {
		t.Fatalf("released %d, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("release order %d: got %s want %s", i, got[i].Short(), want[i].Short())
		}
	}
	a.mustAccept(t, "b", b2)
	sameState(t, a, r)
}

func TestAttackTamperedOpsContained(t *testing.T) {
	k := testKey(5)
	e := mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil, crdt.Update("t", "h", "c", crdt.String("x"))))
	forged := *e.Change
	forged.Ops = []crdt.Op{crdt.Update("t", "h", "c", crdt.String("forged"))}
	raw, _ := forged.Encode()
	contained(t, RejectBadSignature, (&Envelope{ID: crdt.HashChange(raw), Sig: e.Sig, Raw: raw}).Encode())
	contained(t, RejectBadID, (&Envelope{ID: e.ID, Sig: e.Sig, Raw: raw}).Encode())
}

func TestAttackTamperedParentsContained(t *testing.T) {
	k := testKey(5)
	e := mustSign(t, k, mkChange(k, 1, 2, crdt.ZeroID, []crdt.ID{{1}}))
	forged := *e.Change
	forged.Parents = nil
	forged.Lamport = 1
	raw, _ := forged.Encode()
	contained(t, RejectBadSignature, (&Envelope{ID: crdt.HashChange(raw), Sig: e.Sig, Raw: raw}).Encode())
}

func TestAttackForgedSignatureContained(t *testing.T) {
	k := testKey(5)
	e := mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil))
	f := *e
	f.Sig[3] ^= 0x40
	g := *e
	addL(g.Sig[32:])
	contained(t, RejectBadSignature, f.Encode(), g.Encode())
}

func TestAttackWrongKeyContained(t *testing.T) {
	victim, mallory := testKey(5), testKey(6)
	c := mkChange(victim, 1, 1, crdt.ZeroID, nil)
	raw, _ := c.Encode()
	id := crdt.HashChange(raw)
	e := &Envelope{ID: id, Raw: raw}
	copy(e.Sig[:], ed25519.Sign(mallory, id[:]))
	contained(t, RejectBadSignature, e.Encode())
}

func TestAttackReplayOtherDocContained(t *testing.T) {
	k := testKey(5)
	c := mkChange(k, 1, 1, crdt.ZeroID, nil)
	c.Doc = "doc-2"
	contained(t, RejectWrongDoc, mustSign(t, k, c).Encode())
	// An envelope for another doc handed straight to Receive.
	n := newNode(1, GateConfig{})
	res := n.gate.Receive("p", mustSign(t, k, c), t0)
	wantReason(t, res.Rejection, RejectWrongDoc)
}

func TestAttackMalformedContained(t *testing.T) {
	k := testKey(5)
	b := mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil)).Encode()
	contained(t, RejectBadEncoding, b[:len(b)-1], append(append([]byte(nil), b...), 7), []byte{1, 2, 3}, nil)
	big := make([]byte, MaxEnvelopeSize+1)
	big[0] = EnvelopeVersion
	contained(t, RejectBadSize, big)
}

// TestAttackInflatedLamport: a validly signed change whose lamport is just
// under crdt.MaxLamport (2^62 itself is refused by stage 1, see
// TestAttackInflatedLamportEncoding) is refused by stage 2, as are lamports
// one too high or one too low.
func TestAttackInflatedLamport(t *testing.T) {
	src := newNode(1, GateConfig{})
	a1 := src.propose(t)
	k := testKey(5)
	inputs := [][]byte{
		mustSign(t, k, mkChange(k, 1, crdt.MaxLamport-1, crdt.ZeroID, nil)).Encode(),
		mustSign(t, k, mkChange(k, 1, crdt.MaxLamport-1, crdt.ZeroID, []crdt.ID{a1.ID})).Encode(),
		mustSign(t, k, mkChange(k, 1, 3, crdt.ZeroID, []crdt.ID{a1.ID})).Encode(),
		mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, []crdt.ID{a1.ID})).Encode(),
		mustSign(t, k, mkChange(k, 1, 2, crdt.ZeroID, nil)).Encode(),
	}
	r1, r2 := newNode(2, GateConfig{}), newNode(3, GateConfig{})
	for _, r := range []*node{r1, r2} {
		r.mustAccept(t, "src", a1)
		for _, in := range inputs {
			res := r.gate.ReceiveBytes("mallory", in, t0)
			wantReason(t, res.Rejection, RejectBadLamport)
			if res.Rejection.Penalize() {
				t.Fatal("stateful reasons are not penalised")
			}
		}
	}
	// The honest lamport is accepted.
	r1.mustAccept(t, "p", mustSign(t, k, mkChange(k, 1, 2, crdt.ZeroID, []crdt.ID{a1.ID})))
	r2.mustAccept(t, "p", mustSign(t, k, mkChange(k, 1, 2, crdt.ZeroID, []crdt.ID{a1.ID})))
	sameState(t, r1, r2)
}

// TestAttackSeqGap: a change that skips sequence numbers.
func TestAttackSeqGap(t *testing.T) {
	m := newNode(5, GateConfig{})
	c1 := m.propose(t)
	c2 := m.propose(t)
	r1, r2 := newNode(2, GateConfig{}), newNode(3, GateConfig{})
	k := m.key
	gap := mustSign(t, k, mkChange(k, 4, 3, c2.ID, []crdt.ID{c2.ID}))
	for _, r := range []*node{r1, r2} {
		r.mustAccept(t, "m", c1, c2)
		res := r.recv("m", gap)
		wantReason(t, res.Rejection, RejectBadSeq)
	}
	sameState(t, r1, r2)
}

// TestAttackSeqRewind: a change that reuses an old sequence number after
// its prev, and prevs that are not the author's chain in the causal past.
func TestAttackSeqRewind(t *testing.T) {
	m := newNode(5, GateConfig{})
	o := newNode(6, GateConfig{})
	c1 := m.propose(t)
	c2 := m.propose(t)
	o.mustAccept(t, "m", c1)
	o1 := o.propose(t) // parents c1; not c2
	k := m.key
	inputs := []*Envelope{
		mustSign(t, k, mkChange(k, 2, 3, c2.ID, []crdt.ID{c2.ID})), // rewind: seq 2 again after c2
	}
	inputs = append(inputs,
		// prev c2 is not in the causal past of o1.
		mustSign(t, k, mkChange(k, 3, 3, c2.ID, []crdt.ID{o1.ID})),
		// prev is another author's change.
		mustSign(t, k, mkChange(k, 2, 3, o1.ID, []crdt.ID{o1.ID})),
		// prev unknown.
		mustSign(t, k, mkChange(k, 3, 3, crdt.ID{9}, []crdt.ID{c2.ID})),
	)
	r1, r2 := newNode(2, GateConfig{}), newNode(3, GateConfig{})
	for _, r := range []*node{r1, r2} {
		r.mustAccept(t, "m", c1, c2, o1)
		for _, in := range inputs {
			res := r.recv("m", in)
			wantReason(t, res.Rejection, RejectBadSeq)
		}
	}
	sameState(t, r1, r2)
}

// TestGateChecksUncheckedEnvelopes: envelopes not made by CheckStateless or
// Sign (decoded, or built by the caller) are verified by Receive.
func TestGateChecksUncheckedEnvelopes(t *testing.T) {
	k := testKey(5)
	e := mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil))
	bad := e.Encode()
	bad[len(bad)-1] ^= 1
	d, err := DecodeEnvelope(bad)
	if err != nil {
		t.Fatal(err)
	}
	r := newNode(1, GateConfig{})
	wantReason(t, r.gate.Receive("p", d, t0).Rejection, RejectBadSignature)
	// Valid ID and signature, but a different Change than the bytes.
	other := *e.Change
	other.Ops = []crdt.Op{crdt.Update("t", "r", "c", crdt.String("swapped"))}
	wantReason(t, r.gate.Receive("p", &Envelope{Change: &other, ID: e.ID, Sig: e.Sig, Raw: e.Raw}, t0).Rejection, RejectBadEncoding)
	good, err := DecodeEnvelope(e.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if res := r.gate.Receive("p", good, t0); len(res.Accepted) != 1 {
		t.Fatalf("%+v", res)
	}
	if m := r.gate.Metrics(); m.Rejected[RejectBadSignature] != 1 || m.Rejected[RejectBadEncoding] != 1 {
		t.Fatalf("%+v", m)
	}
}

// TestNewGateIndexesExistingDoc: changes already in the document (applied
// without a gate) are trusted and indexed: the seq chain continues from
// them and a conflicting change is still accepted (no proof can be made
// without the other change's signature).
func TestNewGateIndexesExistingDoc(t *testing.T) {
	k := testKey(5)
	doc := crdt.NewDoc(crdt.DocOptions{ID: testDoc, Author: authorOf(k)})
	c1, id1, err := doc.Update("t", "r", "c", crdt.Int(1))
	if err != nil {
		t.Fatal(err)
	}
	g := NewGate(GateConfig{Writers: []crdt.Author{authorOf(k)}}, doc)
	next := mustSign(t, k, mkChange(k, 2, 2, id1, []crdt.ID{id1}))
	if res := g.Receive("p", next, t0); len(res.Accepted) != 1 {
		t.Fatalf("%+v", res.Rejection)
	}
	fork := mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil, crdt.Update("t", "r", "c", crdt.Int(2))))
	if res := g.Receive("p", fork, t0); len(res.Accepted) != 1 || len(res.Proofs) != 0 {
		t.Fatalf("%+v", res)
	}
	_ = c1
	if w := g.Writers(); len(w) != 1 {
		t.Fatalf("writers %v", w)
	}
}
