package replica_test

import (
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/ephemeral"
	"github.com/convergenode/convergenode/replica"
	"github.com/convergenode/convergenode/replica/replicatest"
)

func newTestReplica(t testing.TB, i int, adjust func(*replica.Config)) *replica.Replica {
	t.Helper()
	c := replica.DefaultConfig()
	c.Doc = "doc"
	c.Key = replicatest.KeyFor(i)
	c.Rand = rand.New(rand.NewPCG(1, uint64(i)))
	if adjust != nil {
		adjust(&c)
	}
	r, err := replica.New(c)
	if err != nil {
		t.Fatal(err)
	}
	r.Tick(replicatest.Epoch)
	return r
}

func ins(row string, v int64) crdt.Op {
	return crdt.Insert("t", row, map[string]crdt.Value{"v": crdt.Int(v)})
}

func TestGroupCommitOnTick(t *testing.T) {
	r := newTestReplica(t, 0, nil)
	for i := range 100 {
		if err := r.Propose(ins("r", int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if r.Doc().Graph().Len() != 0 || r.HasReady() {
		t.Fatal("ops flushed before the tick")
	}
	r.Tick(replicatest.Epoch.Add(time.Millisecond))
	rd := r.Ready()
	if len(rd.Persist) != 1 || len(rd.Broadcast) != 1 || len(rd.Applied) != 1 {
		t.Fatalf("want one change persisted, broadcast and applied; got %d %d %d", len(rd.Persist), len(rd.Broadcast), len(rd.Applied))
	}
	if got := len(rd.Applied[0].Change.Ops); got != 100 {
		t.Fatalf("change has %d ops, want 100", got)
	}
	if rd.Broadcast[0].Topic != replica.TopicChanges || replica.ValidateGossip("doc", replica.TopicChanges, rd.Broadcast[0].Data) != replica.Accept {
		t.Fatal("broadcast is not a valid change message")
	}
	r.Advance()
}

func TestGroupCommitOnReadyAndSplit(t *testing.T) {
	r := newTestReplica(t, 0, func(c *replica.Config) {
		c.Flush = replica.FlushOnReady
		c.MaxOpsPerChange = 10
	})
	for i := range 25 {
		if err := r.Propose(ins("r", int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if !r.HasReady() {
		t.Fatal("FlushOnReady: HasReady false with pending ops")
	}
	rd := r.Ready()
	if len(rd.Persist) != 3 {
		t.Fatalf("25 ops at 10 per change: %d changes, want 3", len(rd.Persist))
	}
	err := r.Propose(crdt.Op{Kind: crdt.OpUpdate, Table: "t", Row: "r"})
	if !errors.Is(err, replica.ErrInvalidOp) {
		t.Fatalf("invalid op: err = %v", err)
	}
}

func TestRestoreAnyOrder(t *testing.T) {
	r := newTestReplica(t, 0, nil)
	var log [][]byte
	for i := range 50 {
		_ = r.Propose(ins("r"+string(rune('a'+i%26)), int64(i)))
		r.Tick(replicatest.Epoch.Add(time.Duration(i+1) * time.Millisecond))
		log = append(log, r.Ready().Persist...)
	}
	rand.New(rand.NewPCG(9, 9)).Shuffle(len(log), func(i, j int) { log[i], log[j] = log[j], log[i] })
	r2 := newTestReplica(t, 0, nil)
	if err := r2.Restore(log); err != nil {
		t.Fatal(err)
	}
	if r2.Doc().StateHash() != r.Doc().StateHash() || r2.HasReady() {
		t.Fatal("restore differs or produced output")
	}
	// A corrupt entry and a missing parent are reported; the rest is kept.
	bad := slices.Clone(log[:10])
	bad = append(bad, []byte("junk"))
	r3 := newTestReplica(t, 0, nil)
	if err := r3.Restore(bad); !errors.Is(err, replica.ErrRestore) {
		t.Fatalf("err = %v, want ErrRestore", err)
	}
}

func TestValidateGossip(t *testing.T) {
	r := newTestReplica(t, 0, nil)
	_ = r.Propose(ins("r", 1))
	_ = r.SetPresence("cursor", "k", crdt.Int(3))
	r.Tick(replicatest.Epoch.Add(time.Second))
	rd := r.Ready()
	var change, eph []byte
	for _, o := range rd.Broadcast {
		switch o.Topic {
		case replica.TopicChanges:
			change = o.Data
		case replica.TopicEphemeral:
			eph = o.Data
		}
	}
	if change == nil || eph == nil {
		t.Fatal("missing broadcasts")
	}
	flip := func(b []byte, i int) []byte { c := slices.Clone(b); c[i] ^= 1; return c }
	cases := []struct {
		name  string
		topic replica.Topic
		data  []byte
		want  replica.Verdict
	}{
		{"change", replica.TopicChanges, change, replica.Accept},
		{"presence", replica.TopicEphemeral, eph, replica.Accept},
		{"change on presence topic", replica.TopicEphemeral, change, replica.Reject},
		{"bad signature", replica.TopicChanges, flip(change, len(change)-1), replica.Reject},
		{"tampered body", replica.TopicChanges, flip(change, len(change)-80), replica.Reject},
		{"bad presence signature", replica.TopicEphemeral, flip(eph, len(eph)-1), replica.Reject},
		{"garbage", replica.TopicChanges, []byte{replica.WireVersion, 1, 0xff}, replica.Reject},
		{"future version", replica.TopicChanges, append([]byte{9}, change[1:]...), replica.Ignore},
	}
	for _, c := range cases {
		if got := replica.ValidateGossip("doc", c.topic, c.data); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if got := replica.ValidateGossip("other", replica.TopicChanges, change); got != replica.Reject {
		t.Errorf("other doc: %v", got)
	}
	id := replica.GossipID(change)
	if want := rd.Applied[0].ID; !strings.HasPrefix(id, string(want[:])) || len(id) != 40 {
		t.Errorf("GossipID = %x, want %s and 8 bytes", id, want)
	}
	if again := replica.GossipID(slices.Clone(change)); again != id {
		t.Errorf("GossipID not a function of the bytes: %q != %q", again, id)
	}
	// A tampered copy claiming the same change ID must not share its
	// message ID, or it could shadow the genuine change in pubsub's seen
	// cache.
	for _, at := range []int{len(change) - 80, len(change) - 1} {
		if bad := replica.GossipID(flip(change, at)); bad == id {
			t.Errorf("tampered copy (byte %d) shares the genuine message ID", at)
		}
	}
}

func TestStepGarbagePenalised(t *testing.T) {
	r := newTestReplica(t, 0, nil)
	if err := r.Step("p", []byte{replica.WireVersion, 200}); err == nil {
		t.Fatal("no error for garbage")
	}
	rd := r.Ready()
	if len(rd.Alerts) != 1 || rd.Alerts[0].Kind != replica.AlertPenalty || !rd.Alerts[0].Penalize || rd.Alerts[0].Peer != "p" {
		t.Fatalf("alerts = %v", rd.Alerts)
	}
	// A change with a bad signature inside a valid message.
	w := newTestReplica(t, 1, nil)
	_ = w.Propose(ins("r", 1))
	w.Tick(replicatest.Epoch.Add(time.Second))
	data := slices.Clone(w.Ready().Broadcast[0].Data)
	data[len(data)-1] ^= 1
	_ = r.Step("q", data)
	rd = r.Ready()
	if len(rd.Alerts) != 1 || rd.Alerts[0].Reason != bft.RejectBadSignature.String() || !rd.Alerts[0].Penalize {
		t.Fatalf("alerts = %v", rd.Alerts)
	}
}

func TestPresenceEvents(t *testing.T) {
	a, b := newTestReplica(t, 0, nil), newTestReplica(t, 1, nil)
	if err := a.SetPresence("cursor", "x", crdt.Int(7)); err != nil {
		t.Fatal(err)
	}
	a.Tick(replicatest.Epoch.Add(time.Second))
	rd := a.Ready()
	b.Tick(replicatest.Epoch.Add(time.Second))
	for _, o := range rd.Broadcast {
		if err := b.Step("a", o.Data); err != nil {
			t.Fatal(err)
		}
	}
	got := b.Ready().Presence
	if len(got) != 1 || got[0].Kind != ephemeral.EventSet || got[0].Key != "x" {
		t.Fatalf("presence events = %v", got)
	}
}

// FuzzStep feeds arbitrary bytes to a replica that is mid-session with the
// sender: it must never panic, and its per-peer state stays bounded.
func FuzzStep(f *testing.F) {
	f.Add([]byte{replica.WireVersion, byte(replica.MsgHello), 1, 0, 0, 0, 0})
	f.Add(replica.MustEncode(&replica.Message{Type: replica.MsgNeeds, Session: 3, IDs: []crdt.ID{{1}}}))
	f.Add(replica.MustEncode(&replica.Message{Type: replica.MsgChanges, Session: 5, Last: true, Items: [][]byte{{1, 2}}}))
	f.Add(replica.MustEncode(&replica.Message{Type: replica.MsgAck, Session: 5}))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newTestReplica(t, 0, nil)
		_ = r.Propose(ins("r", 1))
		r.Tick(replicatest.Epoch.Add(time.Second))
		r.PeerUp("p")
		for st := range replica.PrefetchStages {
			r.Prefetch(st, data)
		}
		_ = r.Step("p", data)
		_ = r.Step("p", data)
		r.Tick(replicatest.Epoch.Add(time.Hour))
		r.Ready()
		if fp := r.Footprint(); fp.Sessions > 2 || fp.Tracked > 2*replica.MaxMsgIDs {
			t.Fatalf("footprint %+v", fp)
		}
	})
}

func TestProposeNotWriter(t *testing.T) {
	other := replicatest.KeyFor(5)
	r := newTestReplica(t, 0, func(c *replica.Config) {
		c.Gate.Writers = []crdt.Author{bft.AuthorOf(other.Public().(ed25519.PublicKey))}
	})
	if err := r.Propose(ins("r", 1)); !errors.Is(err, replica.ErrNotWriter) {
		t.Fatalf("err = %v, want ErrNotWriter", err)
	}
}

func TestPresenceFlushOnReady(t *testing.T) {
	r := newTestReplica(t, 0, func(c *replica.Config) { c.Flush = replica.FlushOnReady })
	if err := r.SetPresence("cursor", "x", crdt.Int(1)); err != nil {
		t.Fatal(err)
	}
	if !r.HasReady() {
		t.Fatal("FlushOnReady: a presence write does not make a Ready")
	}
	rd := r.Ready()
	if len(rd.Broadcast) != 1 || rd.Broadcast[0].Topic != replica.TopicEphemeral {
		t.Fatalf("broadcast = %v", rd.Broadcast)
	}
	r.Advance()
	if r.HasReady() {
		t.Fatal("Ready left work behind")
	}
}

func TestRestoreTrusted(t *testing.T) {
	r := newTestReplica(t, 0, nil)
	var log [][]byte
	for i := range 30 {
		_ = r.Propose(ins("r", int64(i)))
		r.Tick(replicatest.Epoch.Add(time.Duration(i+1) * time.Millisecond))
		log = append(log, r.Ready().Persist...)
	}
	slices.Reverse(log)
	r2 := newTestReplica(t, 0, func(c *replica.Config) { c.TrustLog = true })
	if err := r2.Restore(log); err != nil {
		t.Fatal(err)
	}
	if r2.Doc().StateHash() != r.Doc().StateHash() || r2.HasReady() {
		t.Fatal("trusted restore differs or produced output")
	}
	// The restored replica keeps writing on its chain through the new gate.
	if err := r2.Propose(ins("s", 1)); err != nil {
		t.Fatal(err)
	}
	r2.Tick(replicatest.Epoch.Add(time.Second))
	if rd := r2.Ready(); len(rd.Persist) != 1 || len(rd.Alerts) != 0 {
		t.Fatalf("write after trusted restore: %d persisted, alerts %v", len(rd.Persist), rd.Alerts)
	}
	// A corrupted entry (bytes changed, ID kept) is caught.
	bad := slices.Clone(log)
	bad[0] = slices.Clone(bad[0])
	bad[0][len(bad[0])-70] ^= 1
	r3 := newTestReplica(t, 0, func(c *replica.Config) { c.TrustLog = true })
	if err := r3.Restore(bad); !errors.Is(err, replica.ErrRestore) {
		t.Fatalf("corrupt log: err = %v", err)
	}
}

// TestExpectHints: size hints out of range fail New with ErrConfig; hints
// in range leave a replica that works (the simulator's tests check that
// they change no result).
func TestExpectHints(t *testing.T) {
	for _, bad := range []func(*replica.Config){
		func(c *replica.Config) { c.ExpectChanges = -1 },
		func(c *replica.Config) { c.ExpectAuthors = replica.MaxExpect + 1 },
		func(c *replica.Config) { c.ExpectRows = -5 },
	} {
		c := replica.DefaultConfig()
		c.Doc, c.Key = "doc", replicatest.KeyFor(1)
		bad(&c)
		if _, err := replica.New(c); !errors.Is(err, replica.ErrConfig) {
			t.Fatalf("New = %v, want ErrConfig", err)
		}
	}
	r := newTestReplica(t, 1, func(c *replica.Config) { c.ExpectChanges, c.ExpectAuthors, c.ExpectRows = 3, 1, 2 })
	for v := range 10 {
		if err := r.Propose(ins(string(rune('a'+v)), int64(v))); err != nil {
			t.Fatal(err)
		}
		r.Tick(replicatest.Epoch.Add(time.Duration(v+1) * time.Second))
		r.Ready()
	}
	if n := r.Doc().Graph().Len(); n != 10 {
		t.Fatalf("%d changes, want 10", n)
	}
	if _, ok := r.Envelope(r.Doc().Graph().Heads()[0]); !ok {
		t.Fatal("head's envelope not held")
	}
}

// TestRecycle checks that Ready reuses the slices Recycle hands back, from
// another replica too, and that a recycled Ready's content is unchanged in
// the next one: each Ready holds its own replica's change.
func TestRecycle(t *testing.T) {
	flushOnReady := func(c *replica.Config) { c.Flush = replica.FlushOnReady }
	rs := []*replica.Replica{newTestReplica(t, 0, flushOnReady), newTestReplica(t, 1, flushOnReady)}
	reused := 0
	var last *[]byte
	const rounds = 100
	for k := range rounds {
		r := rs[k%2]
		if err := r.Propose(ins("r", int64(k))); err != nil {
			t.Fatal(err)
		}
		rd := r.Ready()
		if len(rd.Persist) != 1 || len(rd.Applied) != 1 || len(rd.Broadcast) != 1 {
			t.Fatalf("round %d: %d persisted, %d applied, %d broadcast", k, len(rd.Persist), len(rd.Applied), len(rd.Broadcast))
		}
		env, err := bft.DecodeEnvelope(rd.Persist[0])
		if err != nil {
			t.Fatal(err)
		}
		if env.ID != rd.Applied[0].ID || env.Change.Author != r.Author() {
			t.Fatalf("round %d: persisted %s by %s, applied %s", k, env.ID.Short(), env.Change.Author.Short(), rd.Applied[0].ID.Short())
		}
		if got, ok := rd.Applied[0].Change.Ops[0].Cols[0].Value.AsInt(); !ok || got != int64(k) {
			t.Fatalf("round %d: applied value %v", k, rd.Applied[0].Change.Ops[0].Cols[0].Value)
		}
		if &rd.Persist[0] == last {
			reused++
		}
		last = &rd.Persist[0]
		r.Recycle(rd)
		r.Advance()
	}
	// sync.Pool may drop what it holds (a collection, the race detector's
	// random drops), so most rounds, not all, reuse.
	if reused < rounds/2 {
		t.Fatalf("%d of %d Readys reused the last one's slices", reused, rounds)
	}
}
