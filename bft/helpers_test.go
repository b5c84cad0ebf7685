package bft

import (
	"crypto/ed25519"
	"testing"

	"github.com/convergenode/convergenode/crdt"
)

const testDoc = "doc-1"

// testKey returns a deterministic key for author number n.
func testKey(n byte) ed25519.PrivateKey {
	var seed [32]byte
	seed[0] = n
	seed[31] = 0x5a
	return ed25519.NewKeyFromSeed(seed[:])
}

func authorOf(k ed25519.PrivateKey) crdt.Author {
	return AuthorOf(k.Public().(ed25519.PublicKey))
}

// mkChange builds a change by key's author; ops default to one update.
func mkChange(k ed25519.PrivateKey, seq, lamport uint64, prev crdt.ID, parents []crdt.ID, ops ...crdt.Op) *crdt.Change {
	if len(ops) == 0 {
		ops = []crdt.Op{crdt.Update("t", "r", "c", crdt.Int(int64(seq)))}
	}
	ps := append([]crdt.ID(nil), parents...)
	return &crdt.Change{
		Doc:     testDoc,
		Author:  authorOf(k),
		Seq:     seq,
		Lamport: lamport,
		Prev:    prev,
		Parents: crdt.SortIDs(ps),
		Time:    1000,
		Ops:     ops,
	}
}

func mustSign(t testing.TB, k ed25519.PrivateKey, c *crdt.Change) *Envelope {
	t.Helper()
	e, err := Sign(k, c)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func wantReason(t testing.TB, rej *Rejection, want Reason) {
	t.Helper()
	if rej == nil {
		t.Fatalf("accepted, want rejection %v", want)
	}
	if rej.Reason != want {
		t.Fatalf("rejection %v (%v), want %v", rej.Reason, rej, want)
	}
}
