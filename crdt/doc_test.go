package crdt

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func newTestDoc(a byte) *Doc {
	return NewDoc(DocOptions{ID: "doc", Author: Author{a}})
}

// sync applies to dst every change of src that dst lacks, in causal order.
func syncDocs(t testing.TB, dst, src *Doc) {
	t.Helper()
	for _, id := range src.Graph().Since(dst.Heads()) {
		if dst.Graph().Has(id) {
			continue
		}
		c, _ := src.Graph().Get(id)
		if _, err := dst.Apply(id, c); err != nil {
			t.Fatal(err)
		}
	}
}

func rowString(d *Doc, table, row string) string {
	r, ok := d.Get(table, row)
	if !ok {
		return "<none>"
	}
	var parts []string
	for _, c := range r.Cols {
		parts = append(parts, c.Name+"="+c.Value.String())
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func mustCommit(t testing.TB) func(*Change, ID, error) ID {
	return func(_ *Change, id ID, err error) ID {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
}

func TestRowRuleSequential(t *testing.T) {
	ok := mustCommit(t)
	d := newTestDoc(1)
	ok(d.Insert("t", "r", map[string]Value{"a": Int(1), "b": Int(2)}))
	if got := rowString(d, "t", "r"); got != "{a=1 b=2}" {
		t.Fatalf("insert: %s", got)
	}
	ok(d.Update("t", "r", "a", Int(3)))
	if got := rowString(d, "t", "r"); got != "{a=3 b=2}" {
		t.Fatalf("update: %s", got)
	}
	ok(d.Delete("t", "r"))
	if got := rowString(d, "t", "r"); got != "<none>" {
		t.Fatalf("delete: %s", got)
	}
	ok(d.Update("t", "r", "c", Int(9)))
	if got := rowString(d, "t", "r"); got != "<none>" {
		t.Fatalf("update of deleted row resurrected it: %s", got)
	}
	ok(d.Insert("t", "r", map[string]Value{"b": Int(5)}))
	if got := rowString(d, "t", "r"); got != "{b=5}" {
		t.Fatalf("insert after delete: %s", got)
	}
	ok(d.Insert("t", "r", map[string]Value{"z": Null()}))
	if got := rowString(d, "t", "r"); got != "{z=null}" {
		t.Fatalf("insert replaces: %s", got)
	}
	ok(d.Update("t", "nope", "a", Int(1)))
	if got := rowString(d, "t", "nope"); got != "<none>" {
		t.Fatalf("update of missing row: %s", got)
	}
	if got := d.Tables(); !slices.Equal(got, []string{"t"}) {
		t.Fatalf("tables %v", got)
	}
}

// concurrent runs base on a shared doc, then fa on replica A (author 1) and
// fb on replica B (author 2) concurrently, merges both ways and returns the
// merged row. Both replicas must agree.
func concurrent(t *testing.T, base, fa, fb func(d *Doc)) string {
	t.Helper()
	a, b := newTestDoc(1), newTestDoc(2)
	base(a)
	syncDocs(t, b, a)
	fa(a)
	fb(b)
	syncDocs(t, a, b)
	syncDocs(t, b, a)
	if a.StateHash() != b.StateHash() {
		t.Fatalf("diverged: %s vs %s", rowString(a, "t", "r"), rowString(b, "t", "r"))
	}
	return rowString(a, "t", "r")
}

func TestRowRuleConcurrent(t *testing.T) {
	ok := mustCommit(t)
	ins := func(cols map[string]Value) func(d *Doc) {
		return func(d *Doc) { ok(d.Insert("t", "r", cols)) }
	}
	upd := func(col string, v int64) func(d *Doc) {
		return func(d *Doc) { ok(d.Update("t", "r", col, Int(v))) }
	}
	del := func(d *Doc) { ok(d.Delete("t", "r")) }
	nop := func(d *Doc) {}
	both := func(f, g func(d *Doc)) func(d *Doc) { return func(d *Doc) { f(d); g(d) } }
	base := ins(map[string]Value{"a": Int(1), "b": Int(2)})

	// Equal lamport: author 2 (B) orders after author 1 (A).
	cases := []struct {
		name   string
		fa, fb func(d *Doc)
		want   string
	}{
		{"concurrent updates, different columns", upd("a", 10), upd("b", 20), "{a=10 b=20}"},
		{"concurrent updates, same column: higher author wins", upd("a", 10), upd("a", 20), "{a=20 b=2}"},
		{"concurrent updates, same column: higher lamport wins", both(upd("a", 10), upd("a", 11)), upd("a", 20), "{a=11 b=2}"},
		{"delete (older) vs update: row stays deleted", del, upd("a", 20), "<none>"},
		{"delete (newer) vs update: row stays deleted", upd("a", 10), del, "<none>"},
		{"delete vs insert: newer insert wins", del, ins(map[string]Value{"c": Int(3)}), "{c=3}"},
		{"insert vs delete: newer delete wins", ins(map[string]Value{"c": Int(3)}), del, "<none>"},
		{"concurrent inserts: newer replaces", ins(map[string]Value{"x": Int(1)}), ins(map[string]Value{"y": Int(2)}), "{y=2}"},
		{"update (newer) on top of concurrent insert", ins(map[string]Value{"x": Int(1)}), upd("a", 7), "{a=7 x=1}"},
		{"insert (newer) replaces concurrent update", upd("a", 7), ins(map[string]Value{"x": Int(1)}), "{x=1}"},
		{"delete then re-insert vs update", both(del, ins(map[string]Value{"x": Int(1)})), upd("a", 7), "{x=1}"},
		{"no-op", nop, nop, "{a=1 b=2}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := concurrent(t, base, tc.fa, tc.fb); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPrepareChain(t *testing.T) {
	ok := mustCommit(t)
	d := NewDoc(DocOptions{ID: "doc", Author: Author{1}, Now: func() int64 { return 42 }})
	c1, id1, err := d.Insert("t", "r", map[string]Value{"a": Int(1)})
	ok(c1, id1, err)
	if c1.Seq != 1 || c1.Lamport != 1 || !c1.Prev.IsZero() || len(c1.Parents) != 0 || c1.Time != 42 {
		t.Fatalf("first change: %+v", c1)
	}
	c2, id2, err := d.Change(func(tx *Tx) error {
		tx.Update("t", "r", "a", Int(2))
		tx.Update("t", "r", "b", Int(3))
		tx.Delete("t", "x")
		return nil
	})
	ok(c2, id2, err)
	if c2.Seq != 2 || c2.Lamport != 2 || c2.Prev != id1 || !slices.Equal(c2.Parents, []ID{id1}) || len(c2.Ops) != 3 {
		t.Fatalf("second change: %+v", c2)
	}
	c3, _, err := d.Update("t", "r", "a", Int(5))
	if err != nil || c3.Seq != 5 || c3.Lamport != 5 || c3.Prev != id2 {
		t.Fatalf("third change: %+v %v", c3, err)
	}
	if got := rowString(d, "t", "r"); got != "{a=5 b=3}" {
		t.Fatal(got)
	}
	// Errors.
	if _, err := d.Apply(id2, c2); !errors.Is(err, ErrDuplicate) {
		t.Errorf("dup: %v", err)
	}
	other := newTestDoc(2)
	if _, err := other.Apply(id2, c2); !errors.Is(err, ErrMissingParents) {
		t.Errorf("missing: %v", err)
	}
	wrong := NewDoc(DocOptions{ID: "other"})
	if _, err := wrong.Apply(id1, c1); !errors.Is(err, ErrWrongDoc) {
		t.Errorf("wrong doc: %v", err)
	}
	if _, _, err := d.Insert("", "r", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty table: %v", err)
	}
	boom := errors.New("boom")
	if _, _, err := d.Change(func(tx *Tx) error { tx.Delete("t", "r"); return boom }); err != boom {
		t.Errorf("tx error: %v", err)
	}
	if c, _, err := d.Change(func(tx *Tx) error { return nil }); c != nil || err != nil {
		t.Errorf("empty tx: %v %v", c, err)
	}
	if _, ok := d.Get("t", "r"); !ok {
		t.Error("failed tx applied")
	}
}

func TestSubscribe(t *testing.T) {
	ok := mustCommit(t)
	d := newTestDoc(1)
	var log []string
	cancel := d.Subscribe(func(ev ChangeEvent) {
		for _, rc := range ev.Rows {
			log = append(log, fmt.Sprintf("%s %s/%s %d", rc.Kind, rc.Table, rc.Key, len(rc.Cols)))
		}
	})
	ok(d.Insert("t", "r", map[string]Value{"a": Int(1)}))
	ok(d.Update("t", "r", "b", Int(1)))
	ok(d.Update("t", "gone", "b", Int(1)))
	ok(d.Change(func(tx *Tx) error {
		tx.Insert("t", "s", nil)
		tx.Delete("t", "r")
		tx.Insert("t", "tmp", nil)
		tx.Delete("t", "tmp")
		return nil
	}))
	cancel()
	ok(d.Delete("t", "s"))
	want := []string{"inserted t/r 1", "updated t/r 2", "inserted t/s 0", "deleted t/r 0"}
	if !slices.Equal(log, want) {
		t.Fatalf("events %q", log)
	}
	ev, err := newTestDoc(2).Apply(d.Graph().Topo()[0], mustGet(d, d.Graph().Topo()[0]))
	if err != nil || len(ev.Rows) != 1 || ev.Rows[0].Kind != RowInserted {
		t.Fatalf("Apply event %+v %v", ev, err)
	}
}

func mustGet(d *Doc, id ID) *Change {
	c, ok := d.Graph().Get(id)
	if !ok {
		panic("no change " + id.Short())
	}
	return c
}

// TestConcurrentReads: read methods do not write (run under -race).
func TestConcurrentReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	h := genHistory(t, rng, 3, 60)
	d := deliver(t, rng, h.changes)
	v := h.snaps[0].heads
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for _, tn := range d.Tables() {
				for _, r := range d.Scan(tn) {
					d.Get(tn, r.Key)
				}
			}
			d.StateHash()
			if _, err := d.At(v); err != nil {
				t.Error(err)
			}
			if _, err := d.Diff(v, d.Heads()); err != nil {
				t.Error(err)
			}
			d.Graph().Since(v)
			d.Graph().Topo()
			for _, id := range v {
				d.Graph().IsAncestor(id, d.Heads()[0])
			}
		}()
	}
	for range 4 {
		<-done
	}
}

func TestApplyRejectsMalformed(t *testing.T) {
	d := newTestDoc(1)
	for name, op := range map[string]Op{
		"unsorted insert": {Kind: OpInsert, Table: "t", Row: "r", Cols: []Col{{Name: "b"}, {Name: "a"}}},
		"update, 2 cols":  {Kind: OpUpdate, Table: "t", Row: "r", Cols: []Col{{Name: "a"}, {Name: "b"}}},
		"delete with col": {Kind: OpDelete, Table: "t", Row: "r", Cols: []Col{{Name: "a"}}},
		"unknown kind":    {Kind: 9, Table: "t", Row: "r"},
	} {
		c := &Change{Doc: "doc", Author: Author{1}, Seq: 1, Lamport: 1, Ops: []Op{op}}
		if _, err := d.Apply(ID{1}, c); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if d.Graph().Len() != 0 {
		t.Fatal("malformed change added")
	}
}

// TestPrepareTrimKeepsPrev checks that when there are more heads than
// MaxParents, the trimmed parent list still has the author's previous change
// in its causal past, even when that change is no longer a head and newer
// heads crowd out the one that descends from it.
func TestPrepareTrimKeepsPrev(t *testing.T) {
	d := NewDoc(DocOptions{ID: "doc", Author: Author{1}})
	c1, id1, err := d.Insert("t", "r", map[string]Value{"a": Int(1)})
	if err != nil {
		t.Fatal(err)
	}
	// Author 2 builds on author 1's change: the only head with c1 in its past.
	b := NewDoc(DocOptions{ID: "doc", Author: Author{2}})
	if _, err := b.Apply(id1, c1); err != nil {
		t.Fatal(err)
	}
	cb, idb, err := b.Update("t", "r", "a", Int(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Apply(idb, cb); err != nil {
		t.Fatal(err)
	}
	// MaxParents+6 independent authors with newer (higher lamport) heads.
	for i := 0; i < MaxParents+6; i++ {
		o := NewDoc(DocOptions{ID: "doc", Author: Author{3, byte(i)}})
		var c *Change
		var id ID
		for j := 0; j < 5; j++ {
			if c, id, err = o.Update("t", "x", "a", Int(int64(j))); err != nil {
				t.Fatal(err)
			}
		}
		for _, pid := range o.Graph().Topo() {
			pc, _ := o.Graph().Get(pid)
			if _, err := d.Apply(pid, pc); err != nil {
				t.Fatal(err)
			}
		}
		_, _ = c, id
	}
	if n := len(d.Heads()); n <= MaxParents {
		t.Fatalf("want more than %d heads, have %d", MaxParents, n)
	}
	c, err := d.Prepare([]Op{Update("t", "r", "a", Int(3))})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Parents) != MaxParents {
		t.Fatalf("parents: %d", len(c.Parents))
	}
	if !d.Graph().InPast(c.Prev, Version(c.Parents)) {
		t.Fatal("prev is not in the causal past of the trimmed parents")
	}
}
