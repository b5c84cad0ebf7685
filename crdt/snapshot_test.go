package crdt

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/convergenode/convergenode/internal/cputime"
)

// causalShuffle returns changes in a random causal order (parents first),
// given that every parent outside changes is in have.
func causalShuffle(rng *rand.Rand, changes []histChange, have func(ID) bool) []histChange {
	pool := slices.Clone(changes)
	in := map[ID]bool{}
	for _, hc := range pool {
		in[hc.id] = true
	}
	done := map[ID]bool{}
	var out []histChange
	for len(pool) > 0 {
		var ready []int
		for k, hc := range pool {
			ok := true
			for _, p := range hc.c.Parents {
				if in[p] && !done[p] || !in[p] && !have(p) {
					ok = false
					break
				}
			}
			if ok {
				ready = append(ready, k)
			}
		}
		k := ready[rng.IntN(len(ready))]
		out = append(out, pool[k])
		done[pool[k].id] = true
		pool = slices.Delete(pool, k, k+1)
	}
	return out
}

// uniqueChanges drops duplicate IDs (equivocation branches are distinct
// changes; the history records each change once, but be safe).
func uniqueChanges(changes []histChange) []histChange {
	seen := map[ID]bool{}
	var out []histChange
	for _, hc := range changes {
		if !seen[hc.id] {
			seen[hc.id] = true
			out = append(out, hc)
		}
	}
	return out
}

func applyAll(tb testing.TB, d *Doc, changes []histChange) []ChangeEvent {
	tb.Helper()
	var evs []ChangeEvent
	for _, hc := range changes {
		ev, err := d.Apply(hc.id, hc.c)
		if err != nil {
			tb.Fatalf("apply %s: %v", hc.id.Short(), err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// coveredOf returns the changes of d's graph in causal order.
func coveredOf(d *Doc) ([]ID, []*Change) {
	ids := d.Graph().Topo()
	cs := make([]*Change, len(ids))
	for k, id := range ids {
		cs[k], _ = d.Graph().Get(id)
	}
	return ids, cs
}

// TestSnapshotProperty: random histories; a snapshot taken at a random
// version (a random causal prefix), loaded into a fresh document, then the
// remaining changes applied in a random causal order, gives exactly the
// state, heads, snapshot bytes, time travel and change feed of a document
// fed everything. Replay with `go test ./crdt -run SnapshotProperty -seed N`.
func TestSnapshotProperty(t *testing.T) {
	for _, seed := range propertySeeds(t) {
		if !checkSnapshot(t, seed) {
			t.Fatalf("property failed; replay with: go test ./crdt -run TestSnapshotProperty -seed %d", seed)
		}
	}
}

func checkSnapshot(t *testing.T, seed uint64) bool {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x736e6170))
	h := genHistory(t, rng, 2+rng.IntN(5), 10+rng.IntN(120))
	all := uniqueChanges(h.changes)
	ref := deliver(t, rng, h.changes)
	want := ref.StateHash()

	// A random causal prefix: the first k changes of a random causal order.
	order := causalShuffle(rng, all, func(ID) bool { return false })
	k := rng.IntN(len(order) + 1)
	a := NewDoc(DocOptions{ID: "doc"})
	applyAll(t, a, order[:k])
	snap := a.AppendSnapshot(nil)

	b := NewDoc(DocOptions{ID: "doc"})
	ids, cs := coveredOf(a)
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i]; cs[i], cs[j] = cs[j], cs[i] })
	// Any causal order of the covered changes will do: sort them back
	// into one (the shuffled order is generally not causal).
	cov := make([]histChange, len(ids))
	for i := range ids {
		cov[i] = histChange{ids[i], cs[i]}
	}
	cov = causalShuffle(rng, cov, func(ID) bool { return false })
	for i := range cov {
		ids[i], cs[i] = cov[i].id, cov[i].c
	}
	if err := b.LoadSnapshot(snap, ids, cs); err != nil {
		t.Errorf("seed %d: load: %v", seed, err)
		return false
	}
	if b.StateHash() != a.StateHash() || !b.Heads().Equal(a.Heads()) || !maps.Equal(fullState(b), fullState(a)) {
		t.Errorf("seed %d: loaded state differs from the snapshotted doc", seed)
		return false
	}
	if again := b.AppendSnapshot(nil); !bytes.Equal(again, snap) {
		t.Errorf("seed %d: the loaded doc snapshots to different bytes", seed)
		return false
	}
	dec, err := DecodeSnapshot(snap)
	if err != nil {
		t.Errorf("seed %d: decode: %v", seed, err)
		return false
	}
	if enc := dec.AppendEncode(nil); !bytes.Equal(enc, snap) {
		t.Errorf("seed %d: decode/encode differs", seed)
		return false
	}

	// The change feed after the load is the one of a doc that applied the
	// same prefix op by op.
	c := NewDoc(DocOptions{ID: "doc"})
	applyAll(t, c, cov)
	rest := causalShuffle(rng, order[k:], b.Graph().Has)
	var evB, evC []ChangeEvent
	b.Subscribe(func(ev ChangeEvent) { evB = append(evB, ev) })
	c.Subscribe(func(ev ChangeEvent) { evC = append(evC, ev) })
	applyAll(t, b, rest)
	applyAll(t, c, rest)
	if !reflect.DeepEqual(evB, evC) {
		t.Errorf("seed %d: change feed after load differs", seed)
		return false
	}
	if b.StateHash() != want || !b.Heads().Equal(ref.Heads()) || !maps.Equal(fullState(b), fullState(ref)) {
		t.Errorf("seed %d: snapshot + tail gives a different state than replaying everything", seed)
		return false
	}
	if !bytes.Equal(b.AppendSnapshot(nil), ref.AppendSnapshot(nil)) {
		t.Errorf("seed %d: same changes, different snapshot bytes", seed)
		return false
	}
	// Time travel still agrees, before and after the snapshot's version.
	for _, s := range h.snaps {
		at, err := b.At(s.heads)
		if err != nil {
			t.Errorf("seed %d: At: %v", seed, err)
			return false
		}
		if at.StateHash() != s.hash {
			t.Errorf("seed %d: At(%s) differs after a snapshot load", seed, s.heads)
			return false
		}
	}
	for range 3 {
		x := h.snaps[rng.IntN(len(h.snaps))].heads
		y := h.snaps[rng.IntN(len(h.snaps))].heads
		d1, err1 := b.Diff(x, y)
		d2, err2 := ref.Diff(x, y)
		if err := errors.Join(err1, err2); err != nil || !reflect.DeepEqual(d1, d2) {
			t.Errorf("seed %d: Diff differs after a snapshot load (%v)", seed, err)
			return false
		}
	}
	return true
}

func snapFixture(t testing.TB) (*Doc, []byte) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	h := genHistory(t, rng, 3, 80)
	d := deliver(t, rng, h.changes)
	return d, d.AppendSnapshot(nil)
}

// resum recomputes the checksum of a snapshot whose body was modified.
func resum(b []byte) []byte {
	if len(b) < 32 {
		return b
	}
	body := slices.Clone(b[:len(b)-32])
	return appendSnapshotSum(body, body)
}

func withSum(body []byte) []byte { return appendSnapshotSum(body, body) }

func TestSnapshotRejects(t *testing.T) {
	d, snap := snapFixture(t)
	ids, cs := coveredOf(d)
	load := func(b []byte, ids []ID, cs []*Change) error {
		t.Helper()
		x := NewDoc(DocOptions{ID: "doc"})
		err := x.LoadSnapshot(b, ids, cs)
		if err != nil && (x.Graph().Len() != 0 || len(x.Tables()) != 0) {
			t.Fatalf("failed load left the doc changed: %v", err)
		}
		return err
	}
	if err := load(snap, ids, cs); err != nil {
		t.Fatal(err)
	}
	flip := slices.Clone(snap)
	flip[len(flip)/2] ^= 1
	cases := map[string]struct {
		b   []byte
		ids []ID
		cs  []*Change
		is  error
	}{
		"flipped byte":     {flip, ids, cs, ErrSnapshotChecksum},
		"truncated":        {snap[:len(snap)-1], ids, cs, ErrSnapshotChecksum},
		"trailing":         {withSum(append(slices.Clone(snap[:len(snap)-32]), 0)), ids, cs, ErrTrailingBytes},
		"empty":            {nil, ids, cs, ErrInvalid},
		"version":          {withSum(append(append([]byte("CNSNAP"), 2), snap[7:len(snap)-32]...)), ids, cs, ErrSnapshotVersion},
		"missing change":   {snap, ids[:len(ids)-1], cs[:len(cs)-1], ErrBadSnapshot},
		"no changes":       {snap, nil, nil, ErrBadSnapshot},
		"unequal lengths":  {snap, ids, cs[:1], ErrBadSnapshot},
		"not causal order": {snap, reversed(ids), reversed(cs), ErrMissingParents},
	}
	for name, c := range cases {
		err := load(c.b, c.ids, c.cs)
		if !errors.Is(err, ErrBadSnapshot) || !errors.Is(err, c.is) {
			t.Errorf("%s: got %v, want %v", name, err, c.is)
		}
	}
	// Another document's snapshot.
	other := NewDoc(DocOptions{ID: "other"})
	if err := other.LoadSnapshot(snap, ids, cs); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("other doc: %v", err)
	}
	// A loaded doc cannot load again.
	x := NewDoc(DocOptions{ID: "doc"})
	if err := x.LoadSnapshot(snap, ids, cs); err != nil {
		t.Fatal(err)
	}
	if err := x.LoadSnapshot(snap, ids, cs); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("second load: %v", err)
	}
	// A snapshot whose cells point at the wrong ops is refused, even with a
	// valid checksum: swap two refs' op indexes.
	s, err := DecodeSnapshot(snap)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for ti := range s.Tables {
		for ri := range s.Tables[ti].Rows {
			r := &s.Tables[ti].Rows[ri]
			if r.Exist.Change != 0 {
				r.Exist.Op += 1000
				bad++
			}
		}
	}
	if bad == 0 {
		t.Fatal("fixture has no rows")
	}
	if err := load(s.AppendEncode(nil), ids, cs); !errors.Is(err, ErrBadSnapshot) || !errors.Is(err, ErrInvalid) {
		t.Errorf("bad refs: %v", err)
	}
	// Heads and change count are read without parsing the tables.
	heads, n, err := SnapshotHeads(snap)
	if err != nil || !heads.Equal(d.Heads()) || n != uint64(d.Graph().Len()) {
		t.Errorf("SnapshotHeads = %s %d %v", heads, n, err)
	}
}

func TestSnapshotEmpty(t *testing.T) {
	d := NewDoc(DocOptions{ID: "e"})
	snap := d.AppendSnapshot(nil)
	x := NewDoc(DocOptions{ID: "e"})
	if err := x.LoadSnapshot(snap, nil, nil); err != nil {
		t.Fatal(err)
	}
	if x.StateHash() != d.StateHash() || len(x.Heads()) != 0 {
		t.Fatal("empty snapshot")
	}
	if _, _, err := x.Insert("t", "r", map[string]Value{"a": Int(1)}); err != nil {
		t.Fatal(err)
	}
}

// FuzzDecodeSnapshot: decoding never panics; an accepted snapshot
// re-encodes to the same bytes; loading it against a fixed set of changes
// never panics and either fails cleanly or gives a doc that snapshots to
// the same bytes. Inputs are tried as they are and with their checksum
// recomputed (so the fuzzer reaches the parser).
func FuzzDecodeSnapshot(f *testing.F) {
	d, snap := snapFixture(f)
	ids, cs := coveredOf(d)
	f.Add(snap)
	f.Add(NewDoc(DocOptions{ID: "doc"}).AppendSnapshot(nil))
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 1))
		h := genHistory(f, rng, 2, 10+rng.IntN(20))
		f.Add(deliver(f, rng, h.changes).AppendSnapshot(nil))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, b := range [][]byte{in, resum(in)} {
			s, err := DecodeSnapshot(b)
			if err != nil {
				if s != nil || !errors.Is(err, ErrBadSnapshot) {
					t.Fatalf("bad error result: %v", err)
				}
				continue
			}
			if out := s.AppendEncode(nil); !bytes.Equal(out, b) {
				t.Fatalf("re-encode differs:\n in %x\nout %x", b, out)
			}
			x := NewDoc(DocOptions{ID: "doc"})
			if err := x.LoadSnapshot(b, ids, cs); err != nil {
				if x.Graph().Len() != 0 {
					t.Fatal("failed load changed the doc")
				}
				continue
			}
			if again := x.AppendSnapshot(nil); !bytes.Equal(again, b) {
				// Loading keeps every row; a snapshot that loads must
				// describe the doc it builds.
				t.Fatalf("loaded snapshot re-snapshots differently")
			}
		}
	})
}

func reversed[T any](s []T) []T {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// snapBenchChanges: 1,000 changes of 1,000 inserts of distinct rows (the
// node's restart benchmark workload), in causal order.
func snapBenchChanges(tb testing.TB, changes, per int) ([]ID, []*Change) {
	tb.Helper()
	d := NewDoc(DocOptions{ID: "bench", Author: Author{1}})
	var ids []ID
	var cs []*Change
	for k := range changes {
		ops := make([]Op, per)
		for j := range ops {
			ops[j] = Insert("t", fmt.Sprintf("r%07d", k*per+j), map[string]Value{"v": Int(int64(j)), "s": String("some text in a row")})
		}
		c, id, err := d.Change(func(tx *Tx) error { tx.Add(ops...); return nil })
		if err != nil {
			tb.Fatal(err)
		}
		ids, cs = append(ids, id), append(cs, c)
	}
	return ids, cs
}

// BenchmarkSnapshot: 1,000,000 ops (1,000 changes of 1,000 inserts).
// replay applies every op to a fresh doc; load is LoadSnapshot of the
// same state (the graph is built, no op is applied); encode is
// AppendSnapshot.
func BenchmarkSnapshot(b *testing.B) {
	ids, cs := snapBenchChanges(b, 1000, 1000)
	full := NewDoc(DocOptions{ID: "bench"})
	for k := range ids {
		if _, err := full.Apply(ids[k], cs[k]); err != nil {
			b.Fatal(err)
		}
	}
	snap := full.AppendSnapshot(nil)
	cpu := func(b *testing.B, fn func()) {
		c0 := cputime.Process()
		fn()
		if c := cputime.Process() - c0; c > 0 {
			b.ReportMetric(c.Seconds()/float64(b.N), "cpu-s/op")
		}
	}
	b.Run("replay", func(b *testing.B) {
		cpu(b, func() {
			for range b.N {
				d := NewDoc(DocOptions{ID: "bench"})
				for k := range ids {
					if _, err := d.Apply(ids[k], cs[k]); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	})
	b.Run("load", func(b *testing.B) {
		cpu(b, func() {
			b.ReportMetric(float64(len(snap)), "snapshot-bytes")
			for range b.N {
				d := NewDoc(DocOptions{ID: "bench"})
				if err := d.LoadSnapshot(snap, ids, cs); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("encode", func(b *testing.B) {
		cpu(b, func() {
			for range b.N {
				full.AppendSnapshot(nil)
			}
		})
	})
}

// TestSnapshotConcurrentReads: time travel over loaded changes is a pure
// read, so readers may run it concurrently (run with -race).
func TestSnapshotConcurrentReads(t *testing.T) {
	d, snap := snapFixture(t)
	ids, cs := coveredOf(d)
	// Fresh copies of the changes, as a restart decodes them.
	for k := range cs {
		b, err := cs[k].Encode()
		if err != nil {
			t.Fatal(err)
		}
		if cs[k], err = DecodeChange(b); err != nil {
			t.Fatal(err)
		}
	}
	x := NewDoc(DocOptions{ID: "doc"})
	if err := x.LoadSnapshot(snap, ids, cs); err != nil {
		t.Fatal(err)
	}
	want := d.StateHash()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at, err := x.At(x.Heads())
			if err != nil || at.StateHash() != want {
				t.Error("At over loaded changes differs")
			}
			x.Scan("t0")
		}()
	}
	wg.Wait()
}
