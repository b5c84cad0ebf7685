package bft

import (
	"bytes"
	"testing"
	"time"

	"github.com/convergenode/convergenode/crdt"
)

// Lookup answers only the exact bytes the cache checked, for the same
// document, and counts neither a hit nor a miss.
func TestEnvCacheLookup(t *testing.T) {
	var none *EnvCache
	k := testKey(1)
	env := mustSign(t, k, mkChange(k, 1, 1, crdt.ZeroID, nil))
	b := env.Encode()
	if _, ok := none.Lookup(testDoc, b); ok {
		t.Fatal("a nil cache found an envelope")
	}
	c := NewEnvCache(8)
	if _, ok := c.Lookup(testDoc, b); ok {
		t.Fatal("found before any check")
	}
	e, rej := c.Check(testDoc, b, nil)
	if rej != nil {
		t.Fatal(rej)
	}
	before := c.Stats()
	if got, ok := c.Lookup(testDoc, bytes.Clone(b)); !ok || got != e {
		t.Fatalf("Lookup = %p, %v; want the checked envelope %p", got, ok, e)
	}
	bad := bytes.Clone(b)
	bad[len(bad)-1] ^= 1 // same ID, another signature
	for name, in := range map[string][]byte{"tampered": bad, "short": b[:10], "empty": nil} {
		if _, ok := c.Lookup(testDoc, in); ok {
			t.Fatalf("%s bytes found", name)
		}
	}
	if _, ok := c.Lookup("other-doc", b); ok {
		t.Fatal("found for another document")
	}
	if after := c.Stats(); after != before {
		t.Fatalf("Lookup counted: %+v, then %+v", before, after)
	}
}

// Gate.Prefetch changes nothing: a gate that runs every stage before each
// change, with and without the envelope, applies what one that does not
// applies, into the same state, with the same metrics.
func TestGatePrefetchChangesNothing(t *testing.T) {
	k := testKey(1)
	var envs []*Envelope
	prev := crdt.ZeroID
	for i := range 12 {
		var parents []crdt.ID
		if i > 0 {
			parents = []crdt.ID{prev}
		}
		e := mustSign(t, k, mkChange(k, uint64(i+1), uint64(i+1), prev, parents,
			crdt.Insert("t", string(rune('a'+i%5)), map[string]crdt.Value{"v": crdt.Int(int64(i))})))
		envs = append(envs, e)
		prev = e.ID
	}
	envs[3], envs[7] = envs[7], envs[3] // some wait in the causal buffer
	envs = append(envs, envs[0])        // a duplicate
	mk := func() *Gate {
		return NewGate(GateConfig{}, crdt.NewDoc(crdt.DocOptions{ID: testDoc}))
	}
	plain, warmed := mk(), mk()
	now := time.Unix(1, 0)
	for st := range GatePrefetchStages {
		warmed.Prefetch(st, nil) // an empty gate
	}
	for i, e := range envs {
		a := plain.Receive("p", e, now)
		for st := range GatePrefetchStages {
			warmed.Prefetch(st, e)
			warmed.Prefetch(st, nil)
		}
		b := warmed.Receive("p", e, now)
		if len(a.Accepted) != len(b.Accepted) || a.Buffered != b.Buffered || a.Duplicate != b.Duplicate {
			t.Fatalf("change %d: %+v, with prefetch %+v", i, a, b)
		}
	}
	if plain.doc.StateHash() != warmed.doc.StateHash() || plain.Metrics() != warmed.Metrics() || plain.graph.Len() != 12 {
		t.Fatalf("gates differ: %d changes, %+v; %d changes, %+v", plain.graph.Len(), plain.Metrics(), warmed.graph.Len(), warmed.Metrics())
	}
}
