package ephemeral

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/convergenode/convergenode/crdt"
)

var t0 = time.Unix(1_700_000_000, 0)

const testDoc = "doc-1"

func testKey(i int) ed25519.PrivateKey {
	var seed [32]byte
	seed[0] = byte(i)
	seed[1] = byte(i >> 8)
	seed[31] = 0xee
	return ed25519.NewKeyFromSeed(seed[:])
}

func authorOf(k ed25519.PrivateKey) crdt.Author {
	var a crdt.Author
	copy(a[:], k.Public().(ed25519.PublicKey))
	return a
}

func newTestStore(t testing.TB, i int, mod func(*Config)) *Store {
	t.Helper()
	cfg := Config{Doc: testDoc, Key: testKey(i), Shared: []string{"board"}}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dump renders the whole visible state of s in a stable form.
func dump(s *Store) string {
	var b strings.Builder
	for _, ns := range s.Namespaces() {
		for _, e := range s.All(ns) {
			fmt.Fprintf(&b, "%s/%s by %s = %v @%v\n", e.Namespace, e.Key, e.Author.Short(), e.Value, e.Time)
		}
	}
	return b.String()
}

func mustSet(t testing.TB, s *Store, ns, key string, v crdt.Value, now time.Time) {
	t.Helper()
	if err := s.Set(ns, key, v, now); err != nil {
		t.Fatal(err)
	}
}

func flushOne(t testing.TB, s *Store, now time.Time) *Batch {
	t.Helper()
	bs := s.Flush(now)
	if len(bs) != 1 {
		t.Fatalf("Flush returned %d batches, want 1", len(bs))
	}
	return bs[0]
}
