package replica_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/replica"
	"github.com/convergenode/convergenode/replica/replicatest"
)

// snapHistory is a signed log by several authors with concurrent writes
// and forks (equivocation), in creation order (a causal order).
type snapHistory struct {
	keys []ed25519.PrivateKey
	docs []*crdt.Doc
	log  [][]byte
	envs []*bft.Envelope
}

func genSnapHistory(t *testing.T, rng *rand.Rand, steps int) *snapHistory {
	t.Helper()
	h := &snapHistory{}
	for i := range 3 {
		k := replicatest.KeyFor(i + 1)
		h.keys = append(h.keys, k)
		h.docs = append(h.docs, crdt.NewDoc(crdt.DocOptions{ID: "doc", Author: bft.AuthorOf(k.Public().(ed25519.PublicKey))}))
	}
	op := func() crdt.Op {
		row := fmt.Sprint("r", rng.IntN(6))
		switch rng.IntN(4) {
		case 0:
			return crdt.Delete("t", row)
		case 1:
			return crdt.Update("t", row, fmt.Sprint("c", rng.IntN(3)), crdt.Int(rng.Int64N(100)))
		}
		return crdt.Insert("t", row, map[string]crdt.Value{"c0": crdt.Int(rng.Int64N(100)), "c1": crdt.String("x")})
	}
	sign := func(a int, c *crdt.Change) {
		env, err := bft.Sign(h.keys[a], c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.docs[a].Apply(env.ID, c); err != nil {
			t.Fatal(err)
		}
		h.log = append(h.log, env.Encode())
		h.envs = append(h.envs, env)
	}
	for range steps {
		a := rng.IntN(len(h.docs))
		d := h.docs[a]
		switch p := rng.IntN(10); {
		case p < 6:
			c, err := d.Prepare([]crdt.Op{op(), op()})
			if err != nil {
				t.Fatal(err)
			}
			sign(a, c)
		case p < 9:
			s := h.docs[rng.IntN(len(h.docs))]
			for _, id := range s.Graph().Since(d.Heads()) {
				c, _ := s.Graph().Get(id)
				if d.Graph().Has(id) {
					continue
				}
				if _, err := d.Apply(id, c); err != nil {
					t.Fatal(err)
				}
			}
		default: // fork: two changes with the same seq and prev
			c1, err1 := d.Prepare([]crdt.Op{op()})
			c2, err2 := d.Prepare([]crdt.Op{op(), op()})
			if err := errors.Join(err1, err2); err != nil {
				t.Fatal(err)
			}
			sign(a, c1)
			sign(a, c2)
		}
	}
	return h
}

type alertKey struct {
	kind   replica.AlertKind
	reason string
	author crdt.Author
	count  int
}

func drain(r *replica.Replica) (persisted int, alerts []alertKey) {
	for r.HasReady() {
		rd := r.Ready()
		persisted += len(rd.Persist)
		for _, a := range rd.Alerts {
			alerts = append(alerts, alertKey{a.Kind, a.Reason, a.Author, a.Count})
		}
		r.Advance()
	}
	slices.SortFunc(alerts, func(x, y alertKey) int { return x.author.Compare(y.author) })
	return persisted, alerts
}

// TestRestoreSnapshotMatchesReplay: a replica restored from a snapshot of
// a prefix of the log plus the whole log holds the same state, heads and
// equivocators as one that replayed the whole log, raises the same
// alerts, and then accepts and refuses the same inputs (valid writes,
// forks of covered changes, bad Lamport times and sequence numbers,
// duplicates) with the same outputs.
func TestRestoreSnapshotMatchesReplay(t *testing.T) {
	forks := 0
	for seed := range uint64(40) {
		for _, trust := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed=%d/trust=%v", seed, trust), func(t *testing.T) {
				if checkRestoreSnapshot(t, seed, trust) {
					forks++
				}
			})
		}
	}
	if forks == 0 {
		t.Error("no case restored a fork from the snapshot's part of the log")
	}
}

// checkRestoreSnapshot reports whether the log had a fork in the part the
// snapshot covers.
func checkRestoreSnapshot(t *testing.T, seed uint64, trust bool) bool {
	rng := rand.New(rand.NewPCG(seed, 0x72657374))
	h := genSnapHistory(t, rng, 10+rng.IntN(40))
	adjust := func(c *replica.Config) { c.TrustLog = trust }
	k := rng.IntN(len(h.log) + 1)
	p := newTestReplica(t, 0, adjust)
	if err := p.Restore(h.log[:k]); err != nil {
		t.Fatal(err)
	}
	snap := p.Snapshot()

	full := newTestReplica(t, 0, nil) // the reference: every signature checked
	if err := full.Restore(h.log); err != nil {
		t.Fatal(err)
	}
	s := newTestReplica(t, 0, adjust)
	shuffled := slices.Clone(h.log)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if err := s.RestoreSnapshot(snap, shuffled); err != nil {
		t.Fatal(err)
	}
	if s.Doc().StateHash() != full.Doc().StateHash() || !s.Doc().Heads().Equal(full.Doc().Heads()) {
		t.Fatal("snapshot restore differs from full replay")
	}
	if !slices.Equal(s.Equivocators(), full.Equivocators()) {
		t.Fatalf("equivocators %v, want %v", s.Equivocators(), full.Equivocators())
	}
	np1, al1 := drain(full)
	np2, al2 := drain(s)
	if np1 != 0 || np2 != 0 || !slices.Equal(al1, al2) {
		t.Fatalf("restore outputs differ: persisted %d/%d, alerts %v / %v", np1, np2, al1, al2)
	}
	for _, env := range h.envs {
		b1, ok1 := full.Envelope(env.ID)
		b2, ok2 := s.Envelope(env.ID)
		if ok1 != ok2 || string(b1) != string(b2) {
			t.Fatalf("stored envelope of %s differs", env.ID.Short())
		}
	}

	// The same inputs, in the same order, to both.
	var inputs [][]byte
	a := rng.IntN(len(h.docs))
	d := h.docs[a]
	for _, o := range h.docs {
		for _, id := range o.Graph().Since(d.Heads()) {
			c, _ := o.Graph().Get(id)
			_, _ = d.Apply(id, c)
		}
	}
	if c, err := d.Prepare([]crdt.Op{ins("new", 1)}); err == nil {
		env, _ := bft.Sign(h.keys[a], c)
		inputs = append(inputs, env.Encode())
		bad := *c
		bad.Lamport += 3
		env, _ = bft.Sign(h.keys[a], &bad)
		inputs = append(inputs, env.Encode())
		bad = *c
		bad.Seq += 2
		env, _ = bft.Sign(h.keys[a], &bad)
		inputs = append(inputs, env.Encode())
	}
	for _, env := range h.envs[:min(len(h.envs), 5)] {
		// A fork of an early (often covered) change, and a duplicate.
		fork := *env.Change
		fork.Ops = []crdt.Op{ins("fork", int64(rng.IntN(1000)))}
		k := slices.IndexFunc(h.keys, func(k ed25519.PrivateKey) bool {
			return bft.AuthorOf(k.Public().(ed25519.PublicKey)) == fork.Author
		})
		fe, err := bft.Sign(h.keys[k], &fork)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, fe.Encode(), env.Encode())
	}
	for i, in := range inputs {
		msg := replica.MustEncode(&replica.Message{Type: replica.MsgChange, Items: [][]byte{in}})
		e1 := full.Step("peer", msg)
		e2 := s.Step("peer", msg)
		if (e1 == nil) != (e2 == nil) {
			t.Fatalf("input %d: step errors %v / %v", i, e1, e2)
		}
		np1, al1 := drain(full)
		np2, al2 := drain(s)
		if np1 != np2 || !slices.Equal(al1, al2) {
			t.Fatalf("input %d: outputs differ: persisted %d/%d, alerts %v / %v", i, np1, np2, al1, al2)
		}
	}
	if s.Doc().StateHash() != full.Doc().StateHash() || !slices.Equal(s.Equivocators(), full.Equivocators()) {
		t.Fatal("state or equivocators differ after the inputs")
	}
	for _, r := range []*replica.Replica{p, full, s} {
		checkHeld(t, r)
	}
	return len(p.Equivocators()) > 0
}

// checkHeld checks that r holds the envelope of every change of its
// document, and of no other.
func checkHeld(t *testing.T, r *replica.Replica) {
	t.Helper()
	for _, id := range r.Doc().Graph().Topo() {
		b, ok := r.Envelope(id)
		if !ok {
			t.Fatalf("no envelope for change %s of the document", id.Short())
		}
		env, err := bft.DecodeEnvelope(b)
		if err != nil || env.ID != id {
			t.Fatalf("envelope held for %s: %v, %v", id.Short(), env, err)
		}
	}
	if _, ok := r.Envelope(crdt.ID{0xee}); ok {
		t.Fatal("an envelope for an unknown change")
	}
}

// TestRestoreSnapshotFallback: a corrupt snapshot, or a covered log entry
// that is missing or damaged, is refused with ErrSnapshot and leaves the
// replica new, so Restore of the whole log still works.
func TestRestoreSnapshotFallback(t *testing.T) {
	h := genSnapHistory(t, rand.New(rand.NewPCG(3, 3)), 40)
	p := newTestReplica(t, 0, nil)
	if err := p.Restore(h.log); err != nil {
		t.Fatal(err)
	}
	snap := p.Snapshot()
	want := p.Doc().StateHash()

	flipped := slices.Clone(snap)
	flipped[len(flipped)/3] ^= 0x40
	damaged := slices.Clone(h.log)
	damaged[2] = slices.Clone(damaged[2])
	damaged[2][len(damaged[2])-70] ^= 1 // inside the change bytes; the ID is kept
	badSig := slices.Clone(h.log)
	badSig[1] = slices.Clone(badSig[1])
	badSig[1][len(badSig[1])-1] ^= 1 // the signature
	cases := []struct {
		name  string
		snap  []byte
		log   [][]byte
		trust bool
	}{
		{"corrupt snapshot", flipped, h.log, false},
		{"not a snapshot", []byte("hello"), h.log, false},
		{"covered entry missing", snap, h.log[1:], false},
		{"covered entry damaged", snap, damaged, true},
		{"covered signature bad", snap, badSig, false},
	}
	for _, c := range cases {
		r := newTestReplica(t, 0, func(cfg *replica.Config) { cfg.TrustLog = c.trust })
		err := r.RestoreSnapshot(c.snap, c.log)
		if !errors.Is(err, replica.ErrSnapshot) {
			t.Fatalf("%s: err = %v, want ErrSnapshot", c.name, err)
		}
		if r.Doc().Graph().Len() != 0 || r.HasReady() {
			t.Fatalf("%s: the replica changed", c.name)
		}
		_ = r.Restore(c.log) // the fallback; bad entries are reported there
		if c.name == "corrupt snapshot" && r.Doc().StateHash() != want {
			t.Fatalf("%s: fallback replay differs", c.name)
		}
	}
	// A good snapshot with an unrelated junk entry in the log: the
	// snapshot is used and the junk reported as for Restore.
	r := newTestReplica(t, 0, nil)
	err := r.RestoreSnapshot(snap, append(slices.Clone(h.log), []byte("junk")))
	if !errors.Is(err, replica.ErrRestore) || errors.Is(err, replica.ErrSnapshot) || r.Doc().StateHash() != want {
		t.Fatalf("junk entry: err = %v", err)
	}
}

// BenchmarkRestoreSnapshot100k: the log of BenchmarkRestore100k (100,000
// changes, shuffled) restored from a snapshot covering all of it:
// RestoreSnapshot adds the changes to the graph without applying their
// ops and loads the tables from the snapshot. Compare with
// BenchmarkRestore100k, which replays every change.
func BenchmarkRestoreSnapshot100k(b *testing.B) {
	hist := slices.Clone(history100k())
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(hist), func(i, j int) { hist[i], hist[j] = hist[j], hist[i] })
	c := replica.DefaultConfig()
	c.Doc, c.Key, c.TrustLog = "bench", replicatest.KeyFor(11), true
	r, err := replica.New(c)
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Restore(hist); err != nil {
		b.Fatal(err)
	}
	snap := r.Snapshot()
	for _, trust := range []bool{false, true} {
		b.Run(fmt.Sprintf("trust=%v", trust), func(b *testing.B) {
			b.ReportMetric(float64(len(snap)), "snapshot-bytes")
			for range b.N {
				c.TrustLog = trust
				r, err := replica.New(c)
				if err != nil {
					b.Fatal(err)
				}
				if err := r.RestoreSnapshot(snap, hist); err != nil {
					b.Fatal(err)
				}
				if r.Doc().Graph().Len() != len(hist) {
					b.Fatal("incomplete restore")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/restore")
		})
	}
}
