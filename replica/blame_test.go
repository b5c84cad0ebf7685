package replica_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/replica"
	"github.com/convergenode/convergenode/replica/replicatest"
)

// scriptedPeer plays peer "q" to one replica: it answers the replica's
// session with the given heads and an empty stream, and answers every
// needs with at most perRound of the wanted changes it holds.
type scriptedPeer struct {
	heads    []crdt.ID
	holds    map[crdt.ID][]byte
	perRound int // 0: no limit

	needs   [][]crdt.ID // the needs the replica sent, in order
	done    bool        // the replica said done
	alerts  []replica.Alert
	session uint64
}

func (q *scriptedPeer) answer(t *testing.T, m *replica.Message) []*replica.Message {
	t.Helper()
	switch m.Type {
	case replica.MsgHello:
		if m.Reply {
			t.Fatalf("unexpected hello reply")
		}
		q.session = m.Session
		return []*replica.Message{
			{Type: replica.MsgHello, Session: m.Session, Reply: true, IDs: q.heads},
			{Type: replica.MsgChanges, Session: m.Session, Seq: 0, Last: true},
		}
	case replica.MsgChanges:
		if !m.Reply {
			return []*replica.Message{{Type: replica.MsgAck, Session: m.Session, Seq: m.Seq}}
		}
	case replica.MsgNeeds:
		q.needs = append(q.needs, m.IDs)
		var items [][]byte
		for _, id := range m.IDs {
			if env, ok := q.holds[id]; ok && (q.perRound == 0 || len(items) < q.perRound) {
				items = append(items, env)
			}
		}
		return []*replica.Message{{Type: replica.MsgChanges, Session: m.Session, Reply: true, Last: true, Items: items}}
	case replica.MsgDone:
		q.done = true
	}
	return nil
}

// pump delivers r's messages to q and q's answers to r until both are
// quiet, ticking r's clock forward 10 ms per exchange.
func (q *scriptedPeer) pump(t *testing.T, r *replica.Replica, now *time.Time) {
	t.Helper()
	for range 1000 {
		if !r.HasReady() {
			return
		}
		rd := r.Ready()
		q.alerts = append(q.alerts, rd.Alerts...)
		r.Advance()
		for _, d := range rd.Send {
			if d.To != "q" {
				continue
			}
			m, err := replica.DecodeMessage(d.Data)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range q.answer(t, m) {
				if err := r.Step("q", replica.MustEncode(a)); err != nil {
					t.Fatal(err)
				}
			}
		}
		*now = now.Add(10 * time.Millisecond)
		r.Tick(*now)
	}
	t.Fatal("the exchange did not quiesce")
}

func (q *scriptedPeer) penalties() []replica.Alert {
	var out []replica.Alert
	for _, a := range q.alerts {
		if a.Peer == "q" && a.Penalize {
			out = append(out, a)
		}
	}
	return out
}

// chainFrom returns n changes written one after the other by replica w
// (each the parent of the next): their IDs and envelopes.
func chainFrom(t *testing.T, w *replica.Replica, n int, now *time.Time) ([]crdt.ID, map[crdt.ID][]byte) {
	t.Helper()
	var ids []crdt.ID
	envs := make(map[crdt.ID][]byte)
	for i := range n {
		if err := w.Propose(ins("r"+strconv.Itoa(i), int64(i))); err != nil {
			t.Fatal(err)
		}
		*now = now.Add(time.Millisecond)
		w.Tick(*now)
		rd := w.Ready()
		w.Advance()
		for _, env := range rd.Persist {
			id, _ := bft.PeekID(env)
			ids = append(ids, id)
			envs[id] = env
		}
	}
	return ids, envs
}

func fakeID(b byte) crdt.ID {
	var id crdt.ID
	for i := range id {
		id[i] = b ^ byte(i*7)
	}
	return id
}

// TestRelayNotBlamed: a peer relays by gossip a change whose parent it does
// not hold (gossip forwards before the relay's own causal buffer fills),
// during a session with us. We ask it for the parent once; it answers
// without it, and the session ends cleanly: no penalty, no needs round
// asking again. (Before the owed rule the replica asked 16 times and then
// penalised the honest relay with needs-unserved.)
func TestRelayNotBlamed(t *testing.T) {
	now := replicatest.Epoch
	v := newTestReplica(t, 0, nil)
	w := newTestReplica(t, 1, nil)
	ids, envs := chainFrom(t, w, 2, &now)

	q := &scriptedPeer{holds: map[crdt.ID][]byte{}}
	v.PeerUp("q")
	// Deliver our hello, but hold the peer's answer until the relayed
	// change is in: take the hello by hand.
	rd := v.Ready()
	v.Advance()
	var hello *replica.Message
	for _, d := range rd.Send {
		if m, err := replica.DecodeMessage(d.Data); err == nil && m.Type == replica.MsgHello {
			hello = m
		}
	}
	if hello == nil {
		t.Fatal("no hello on PeerUp")
	}
	// The relayed change, its parent missing, arrives first.
	if err := v.Step("q", replica.MustEncode(&replica.Message{Type: replica.MsgChange, Items: [][]byte{envs[ids[1]]}})); err != nil {
		t.Fatal(err)
	}
	for _, a := range q.answer(t, hello) {
		if err := v.Step("q", replica.MustEncode(a)); err != nil {
			t.Fatal(err)
		}
	}
	q.pump(t, v, &now)

	if p := q.penalties(); len(p) != 0 {
		t.Fatalf("honest relay penalised: %v", p)
	}
	if len(q.needs) != 1 || len(q.needs[0]) != 1 || q.needs[0][0] != ids[0] {
		t.Fatalf("needs sent %v, want one asking for the parent %s", q.needs, ids[0].Short())
	}
	if !q.done {
		t.Fatal("the session did not end with done")
	}
}

// TestFakeHeadsBlamed: a peer advertises heads in its hello and then
// never serves them. Every needs round goes unanswered; after
// MaxNeedsRounds it is penalised (needs-unserved), also when it serves
// the real part of what it advertised.
func TestFakeHeadsBlamed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mixed bool
	}{{"fake-only", false}, {"real-and-fake", true}} {
		t.Run(tc.name, func(t *testing.T) {
			now := replicatest.Epoch
			v := newTestReplica(t, 0, func(c *replica.Config) { c.MaxNeedsRounds = 4 })
			q := &scriptedPeer{heads: []crdt.ID{fakeID(1), fakeID(2)}, holds: map[crdt.ID][]byte{}}
			if tc.mixed {
				w := newTestReplica(t, 1, nil)
				ids, envs := chainFrom(t, w, 3, &now)
				q.heads = crdt.SortIDs(append(q.heads, ids[2]))
				q.holds = envs
			}
			v.PeerUp("q")
			q.pump(t, v, &now)
			p := q.penalties()
			if len(p) != 1 || p[0].Reason != "needs-unserved" || p[0].Kind != replica.AlertNonService {
				t.Fatalf("want one needs-unserved penalty, got %v (all alerts %v)", p, q.alerts)
			}
			if len(q.needs) != 4 {
				t.Fatalf("%d needs rounds, want MaxNeedsRounds = 4", len(q.needs))
			}
			if tc.mixed && v.Doc().Graph().Len() != 3 {
				t.Fatalf("the real changes were not taken: %d", v.Doc().Graph().Len())
			}
		})
	}
}

// TestSlowServerNotBlamed: a peer that holds what it advertised but
// serves one change per needs round (its serve budget cut the answers
// short) exhausts the rounds without being penalised: each answer made
// progress.
func TestSlowServerNotBlamed(t *testing.T) {
	now := replicatest.Epoch
	v := newTestReplica(t, 0, func(c *replica.Config) { c.MaxNeedsRounds = 3 })
	var heads []crdt.ID
	holds := map[crdt.ID][]byte{}
	for i := range 6 { // six authors, one change each: six independent heads
		w := newTestReplica(t, 10+i, nil)
		ids, envs := chainFrom(t, w, 1, &now)
		heads = append(heads, ids...)
		for id, env := range envs {
			holds[id] = env
		}
	}
	q := &scriptedPeer{heads: crdt.SortIDs(heads), holds: holds, perRound: 1}
	v.PeerUp("q")
	q.pump(t, v, &now)
	if p := q.penalties(); len(p) != 0 {
		t.Fatalf("a peer that served something every round was penalised: %v", p)
	}
	exhausted := false
	for _, a := range q.alerts {
		exhausted = exhausted || (a.Peer == "q" && a.Reason == "needs-exhausted")
	}
	if !exhausted || v.Doc().Graph().Len() != 3 {
		t.Fatalf("want needs-exhausted after 3 rounds of one change each; have %d changes, alerts %v", v.Doc().Graph().Len(), q.alerts)
	}
}
