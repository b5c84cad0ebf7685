package bft

import (
	"runtime"
	"testing"
	"time"

	"github.com/convergenode/convergenode/crdt"
)

// orphan returns a validly signed first change by key whose only parent
// is fake (never arrives).
func orphan(t testing.TB, k byte, i int, payload int) *Envelope {
	key := testKey(k)
	fake := crdt.HashChange([]byte{byte(i), byte(i >> 8), byte(i >> 16), k})
	return mustSign(t, key, mkChange(key, 1, 2, crdt.ZeroID, []crdt.ID{fake},
		crdt.Update("t", "r", "c", crdt.Bytes(make([]byte, payload)))))
}

// TestAttackParentsNeverArrive: a peer sends validly signed changes whose
// parents it withholds. The buffer stays within the peer's quota (count
// and bytes), reports what is missing and from whom, and expiry frees
// everything.
func TestAttackParentsNeverArrive(t *testing.T) {
	cfg := GateConfig{BufferTTL: time.Minute, MaxPeerCount: 50, MaxPeerBytes: 40 << 10}
	r := newNode(1, cfg)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	buffered := 0
	for i := range 300 {
		e := orphan(t, 5, i, 500)
		res := r.gate.ReceiveBytes("mallory", e.Encode(), t0)
		switch {
		case res.Buffered:
			buffered++
			if len(res.Missing) != 1 || res.Missing[0] != e.Change.Parents[0] || res.From != "mallory" {
				t.Fatalf("missing report: %+v", res)
			}
		case res.Rejection != nil:
			wantReason(t, res.Rejection, RejectBufferFull)
			if res.Rejection.Penalize() {
				t.Fatal("buffer-full is not penalised")
			}
		default:
			t.Fatalf("unexpected %+v", res)
		}
		if m := r.gate.Metrics(); m.BufferBytes > cfg.MaxPeerBytes || m.BufferCount > cfg.MaxPeerCount {
			t.Fatalf("buffer over quota: %+v", m)
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grow := int64(after.HeapAlloc) - int64(before.HeapAlloc); grow > 4*int64(cfg.MaxPeerBytes)+64<<10 {
		t.Errorf("heap grew %d bytes for a %d-byte quota", grow, cfg.MaxPeerBytes)
	}
	m := r.gate.Metrics()
	if buffered == 0 || m.BufferCount != buffered || m.Rejected[RejectBufferFull] != uint64(300-buffered) {
		t.Fatalf("buffered %d, metrics %+v", buffered, m)
	}
	// An honest peer still gets buffer space, and its change is released.
	src := newNode(2, GateConfig{})
	h1, h2 := src.propose(t), src.propose(t)
	if res := r.recv("honest", h2); !res.Buffered {
		t.Fatalf("honest change refused: %+v", res)
	}
	if res := r.recv("honest", h1); len(res.Accepted) != 2 {
		t.Fatalf("honest release: %+v", res)
	}
	if got := r.gate.Tick(t0.Add(59 * time.Second)); len(got) != 0 {
		t.Fatalf("expired %d early", len(got))
	}
	exp := r.gate.Tick(t0.Add(time.Minute))
	if len(exp) != buffered {
		t.Fatalf("expired %d, want %d", len(exp), buffered)
	}
	for _, x := range exp {
		if x.Reason != RejectExpired || x.From != "mallory" {
			t.Fatalf("%+v", x)
		}
	}
	if m := r.gate.Metrics(); m.BufferCount != 0 || m.BufferBytes != 0 || len(r.gate.buf.waiting) != 0 ||
		len(r.gate.buf.peers) != 0 || len(r.gate.buf.authors) != 0 || len(r.gate.Waiting()) != 0 {
		t.Fatalf("buffer not empty after expiry: %+v", m)
	}
}

// TestBufferEvictsLargestHolder: when the whole buffer is full, the peer
// holding the most loses its oldest changes first; that peer itself is
// refused instead of evicting others.
func TestBufferEvictsLargestHolder(t *testing.T) {
	cfg := GateConfig{MaxBufferCount: 10, MaxPeerCount: 8, MaxAuthorCount: 100}
	r := newNode(1, cfg)
	var big []*Envelope
	for i := range 8 {
		e := orphan(t, 5, i, 10)
		big = append(big, e)
		if res := r.recv("big", e); !res.Buffered {
			t.Fatal(res.Rejection)
		}
	}
	for i := range 2 {
		if res := r.recv("small", orphan(t, 6, i, 10)); !res.Buffered {
			t.Fatal(res.Rejection)
		}
	}
	res := r.recv("small", orphan(t, 6, 2, 10))
	if !res.Buffered || len(res.Dropped) != 1 || res.Dropped[0].ID != big[0].ID ||
		res.Dropped[0].From != "big" || res.Dropped[0].Reason != RejectEvicted {
		t.Fatalf("want big's oldest evicted: %+v", res)
	}
	// "big" is still the largest holder: it cannot evict anyone.
	res = r.recv("big", orphan(t, 5, 100, 10))
	wantReason(t, res.Rejection, RejectBufferFull)
	if m := r.gate.Metrics(); m.BufferCount != 10 || m.Rejected[RejectEvicted] != 1 {
		t.Fatalf("%+v", m)
	}
}

// TestBufferAuthorQuota: one author's changes are bounded whichever peers
// forward them.
func TestBufferAuthorQuota(t *testing.T) {
	r := newNode(1, GateConfig{MaxAuthorCount: 3})
	for i := range 5 {
		res := r.recv(string(rune('a'+i)), orphan(t, 5, i, 10))
		if i < 3 && !res.Buffered {
			t.Fatal(res.Rejection)
		}
		if i >= 3 {
			wantReason(t, res.Rejection, RejectBufferFull)
		}
	}
}

// TestBufferDropsWaitersOfRefusedChange: a buffered change whose parent is
// refused can never be valid and is dropped at once.
func TestBufferDropsWaitersOfRefusedChange(t *testing.T) {
	src := newNode(2, GateConfig{})
	a1 := src.propose(t)
	k := testKey(5)
	bad := mustSign(t, k, mkChange(k, 1, 7, crdt.ZeroID, []crdt.ID{a1.ID})) // bad lamport
	child := mustSign(t, k, mkChange(k, 2, 8, bad.ID, []crdt.ID{bad.ID}))
	grandchild := mustSign(t, k, mkChange(k, 3, 9, child.ID, []crdt.ID{child.ID}))
	r := newNode(1, GateConfig{})
	r.recv("p", grandchild)
	r.recv("p", child)
	r.recv("p", bad)
	res := r.recv("p", a1)
	if len(res.Accepted) != 1 || len(res.Dropped) != 3 {
		t.Fatalf("%+v", res)
	}
	if res.Dropped[0].ID != bad.ID || res.Dropped[0].Reason != RejectBadLamport ||
		res.Dropped[1].Reason != RejectBadParent || res.Dropped[2].Reason != RejectBadParent {
		t.Fatalf("%+v", res.Dropped)
	}
	if m := r.gate.Metrics(); m.BufferCount != 0 || m.BufferBytes != 0 {
		t.Fatalf("%+v", m)
	}
}

// TestAttackFlood: one peer floods 100,000 validly signed changes whose
// parents are missing; the gate keeps at most its quota of them and the
// changes of other peers (in order or out of order) still get through.
func TestAttackFlood(t *testing.T) {
	const n = 100_000
	r := newNode(1, GateConfig{})
	cfg := r.gate.cfg
	flooder := testKey(5)
	fakeParent := []crdt.ID{crdt.HashChange([]byte("withheld"))}
	src := newNode(2, GateConfig{})
	other := newNode(3, GateConfig{})
	var honest int
	for i := range n {
		// Really valid: distinct, canonical, signed; only the parent is
		// withheld. (Signing is the test's main cost, ~15µs each.)
		c := &crdt.Change{Doc: testDoc, Author: authorOf(flooder), Seq: uint64(i + 1), Lamport: 2,
			Parents: fakeParent, Ops: []crdt.Op{crdt.Update("t", "f", "c", crdt.Int(int64(i)))}}
		if i > 0 {
			c.Prev = crdt.ID{byte(i), byte(i >> 8), byte(i >> 16), 1}
		}
		env, err := Sign(flooder, c)
		if err != nil {
			t.Fatal(err)
		}
		res := r.gate.Receive("flooder", env, t0)
		if res.Rejection != nil && res.Rejection.Reason != RejectBufferFull {
			t.Fatal(res.Rejection)
		}
		if i%2000 == 0 {
			// An honest peer in order, and another out of order.
			e := src.propose(t)
			if res := r.recv("honest", e); len(res.Accepted) != 1 {
				t.Fatalf("honest change refused during flood: %+v", res)
			}
			o1, o2 := other.propose(t), other.propose(t)
			if res := r.recv("other", o2); !res.Buffered {
				t.Fatalf("out-of-order honest change refused during flood: %+v", res)
			}
			if res := r.recv("other", o1); len(res.Accepted) != 2 {
				t.Fatalf("honest release during flood: %+v", res)
			}
			honest += 3
		}
		if m := r.gate.Metrics(); m.BufferCount > cfg.MaxPeerCount || m.BufferBytes > cfg.MaxPeerBytes {
			t.Fatalf("flood exceeds the peer quota: %+v", m)
		}
	}
	m := r.gate.Metrics()
	if m.Accepted != uint64(honest) || m.BufferCount != cfg.MaxPeerCount || m.Rejected[RejectBufferFull] != n-uint64(cfg.MaxPeerCount) {
		t.Fatalf("accepted %d (want %d), %+v", m.Accepted, honest, m)
	}
	if exp := r.gate.Tick(t0.Add(cfg.BufferTTL)); len(exp) != cfg.MaxPeerCount || r.gate.Metrics().BufferBytes != 0 {
		t.Fatalf("expiry freed %d", len(exp))
	}
}

// TestBufferEmptiedDropsItsQueue: a gate with an empty causal buffer
// answers Has and expiry without looking at the buffer's queue, so the
// queue must not keep the entries that left it (their envelopes) either.
func TestBufferEmptiedDropsItsQueue(t *testing.T) {
	r := newNode(1, GateConfig{})
	src := newNode(2, GateConfig{})
	h1, h2 := src.propose(t), src.propose(t)
	if res := r.recv("p", h2); !res.Buffered || !r.gate.Has(h2.ID) {
		t.Fatalf("child without its parent: %+v", res)
	}
	if res := r.recv("p", h1); len(res.Accepted) != 2 {
		t.Fatalf("release: %+v", res)
	}
	if n, _ := r.gate.Buffered(); n != 0 || len(r.gate.buf.fifo.q) != 0 || r.gate.buf.fifo.head != 0 {
		t.Fatalf("emptied buffer keeps %d queued entries (%d live)", len(r.gate.buf.fifo.q), n)
	}
	if !r.gate.Has(h1.ID) || !r.gate.Has(h2.ID) {
		t.Fatal("applied changes not known")
	}
	if got := r.gate.Tick(t0.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("an empty buffer expired %d entries", len(got))
	}
	if len(r.gate.buf.waiting) != 0 || len(r.gate.buf.byID) != 0 {
		t.Fatalf("emptied buffer keeps %d waiting lists, %d entries", len(r.gate.buf.waiting), len(r.gate.buf.byID))
	}

	// Emptied by expiry, with children waiting on several parents: no
	// waiting list may outlive the entries (arrived does not look at the
	// lists of an empty buffer).
	a, b := newNode(3, GateConfig{}), newNode(4, GateConfig{})
	pa, pb := a.propose(t), b.propose(t)
	for _, e := range []*Envelope{pa, pb} {
		src.recv("p", e)
	}
	c1, c2 := src.propose(t), src.propose(t) // c1 on h2, pa and pb; c2 on c1
	for _, e := range []*Envelope{c2, c1} {
		if res := r.recv("q", e); !res.Buffered {
			t.Fatalf("child without its parents: %+v", res)
		}
	}
	if len(r.gate.buf.waiting) == 0 {
		t.Fatal("no waiting lists")
	}
	if got := r.gate.Tick(t0.Add(time.Hour)); len(got) != 2 {
		t.Fatalf("expired %d entries, want 2", len(got))
	}
	if n, _ := r.gate.Buffered(); n != 0 || len(r.gate.buf.waiting) != 0 || len(r.gate.buf.byID) != 0 {
		t.Fatalf("expired buffer keeps %d live, %d waiting lists, %d entries", n, len(r.gate.buf.waiting), len(r.gate.buf.byID))
	}
	for _, e := range []*Envelope{pa, pb} {
		if res := r.recv("p", e); len(res.Accepted) != 1 {
			t.Fatalf("parent after expiry: %+v", res)
		}
	}
}
