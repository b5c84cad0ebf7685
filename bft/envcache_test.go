package bft

import (
	"bytes"
	"testing"
	"time"
	"unsafe"

	"github.com/convergenode/convergenode/crdt"
)

// The cache gives CheckStateless's verdict for the exact bytes, shares one
// envelope between hits, and never answers tampered bytes from the cache.
func TestEnvCacheSharesAndMatchesCheckStateless(t *testing.T) {
	c := NewEnvCache(8)
	k := testKey(1)
	env := mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil))
	b := env.Encode()

	e1, rej := c.Check(testDoc, b, nil)
	if rej != nil {
		t.Fatal(rej)
	}
	b[40] ^= 0xff // the cache keeps its own copy
	b[40] ^= 0xff
	e2, rej := c.Check(testDoc, bytes.Clone(b), nil)
	if rej != nil {
		t.Fatal(rej)
	}
	if e1 != e2 {
		t.Fatal("second check of the same bytes did not share the envelope")
	}
	if s := c.Stats(); s.Hits != 1 || s.Misses != 1 || s.Entries != 1 {
		t.Fatalf("stats %+v", s)
	}
	if !e1.Change.Frozen() {
		t.Fatal("shared change not frozen")
	}
	if !bytes.Equal(e1.Wire(), b) || !bytes.Equal(e1.Encode(), b) {
		t.Fatal("Wire/Encode differ from the checked bytes")
	}
	if &e1.Raw[0] != &e1.Wire()[len(b)-64-len(e1.Raw)] {
		t.Fatal("Raw is not a slice of the cached wire bytes")
	}

	// Other document: the same rejection as without the cache.
	_, rej = c.Check("other-doc", b, nil)
	wantReason(t, rej, RejectWrongDoc)

	// Same claimed ID, other bytes: checked in full, refused as without
	// the cache.
	for i, pos := range []int{len(b) - 1, 40, 50} {
		bad := bytes.Clone(b)
		bad[pos] ^= 1
		_, want := CheckStateless(testDoc, bad)
		_, got := c.Check(testDoc, bad, nil)
		if want == nil || got == nil || want.Reason != got.Reason {
			t.Fatalf("case %d: cache %v, CheckStateless %v", i, got, want)
		}
	}
	if s := c.Stats(); s.Entries != 1 {
		t.Fatalf("failures stored: %+v", s)
	}
}

// Two gates sharing one cache apply the same envelope; the document
// strings of a frozen change are left alone, and both documents agree.
func TestEnvCacheSharedBetweenGates(t *testing.T) {
	c := NewEnvCache(8)
	k := testKey(1)
	env := mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil, crdt.Insert("t", "r1", map[string]crdt.Value{"a": crdt.Int(1)})))
	b := env.Encode()
	var docs []*crdt.Doc
	for range 2 {
		d := crdt.NewDoc(crdt.DocOptions{ID: testDoc})
		// The document already holds the names, so Apply would share them
		// if the change were not frozen.
		first := mkChange(testKey(2), 1, 1, crdt.ZeroID, nil, crdt.Insert("t", "r0", map[string]crdt.Value{"a": crdt.Int(0)}))
		if _, err := d.Apply(first.MustID(), first); err != nil {
			t.Fatal(err)
		}
		g := NewGate(GateConfig{}, d)
		e, rej := c.Check(testDoc, b, nil)
		if rej != nil {
			t.Fatal(rej)
		}
		op := e.Change.Ops[0]
		table, col, doc := unsafe.StringData(op.Table), unsafe.StringData(op.Cols[0].Name), unsafe.StringData(e.Change.Doc)
		res := g.Receive("p", e, time.Unix(0, 0))
		if len(res.Accepted) != 1 {
			t.Fatalf("not accepted: %+v", res)
		}
		after := e.Change.Ops[0]
		if unsafe.StringData(after.Table) != table || unsafe.StringData(after.Cols[0].Name) != col || unsafe.StringData(e.Change.Doc) != doc {
			t.Fatal("frozen change modified")
		}
		docs = append(docs, d)
	}
	if docs[0].StateHash() != docs[1].StateHash() {
		t.Fatal("documents differ")
	}
}
