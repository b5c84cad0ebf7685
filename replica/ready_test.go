package replica

import (
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/convergenode/convergenode/crdt"
)

func TestFoldAlerts(t *testing.T) {
	var in []Alert
	for i := range 40 {
		in = append(in, Alert{Kind: AlertDropped, Peer: "p", Reason: "buffer-full", IDs: []crdt.ID{testID(byte(i))}})
		if i == 3 {
			in = append(in, Alert{Kind: AlertPenalty, Peer: "q", Reason: "bad-message", Penalize: true})
		}
	}
	in = append(in, Alert{Kind: AlertDropped, Peer: "p", Reason: "expired", IDs: []crdt.ID{testID(99)}})
	out := foldAlerts(in)
	if len(out) != 3 {
		t.Fatalf("got %d alerts: %v", len(out), out)
	}
	if out[0].Count != 40 || len(out[0].IDs) != maxAlertIDs || out[0].IDs[0] != testID(0) {
		t.Fatalf("folded alert: count %d, %d IDs", out[0].Count, len(out[0].IDs))
	}
	if out[1].Kind != AlertPenalty || out[1].Count != 1 || out[2].Reason != "expired" {
		t.Fatalf("order or content: %v", out)
	}
	if got := out[0].String(); got != "dropped peer=p reason=buffer-full count=40" {
		t.Fatalf("String = %q", got)
	}
}

// TestRecycled checks what Recycle keeps: an emptied, cleared slice, and
// neither one smaller than what it has nor one over maxRecycled.
func TestRecycled(t *testing.T) {
	got := [][]byte{[]byte("a"), []byte("b")}
	kept := recycled(nil, got)
	if len(kept) != 0 || cap(kept) != cap(got) || got[0] != nil || got[1] != nil {
		t.Fatalf("recycled(nil, 2 entries) = len %d cap %d, entries %q", len(kept), cap(kept), got)
	}
	if k := recycled(kept, make([][]byte, 1)); cap(k) != cap(kept) {
		t.Fatalf("a smaller slice replaced a larger one: cap %d", cap(k))
	}
	if k := recycled(kept, make([][]byte, maxRecycled+1)); cap(k) != cap(kept) {
		t.Fatalf("a slice over maxRecycled was kept: cap %d", cap(k))
	}
}

// TestDeferListOrdered: deferPeer keeps the deferred peers in ID order,
// whatever order they are deferred in, which runDeferred visits them in.
func TestDeferListOrdered(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Doc = "doc"
	cfg.Key = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	cfg.Rand = rand.New(rand.NewPCG(1, 2))
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]PeerID, 40)
	for i := range ids {
		ids[i] = PeerID(fmt.Sprintf("peer-%02d", (i*17)%40))
	}
	for k, id := range ids {
		p := r.peer(id)
		r.deferPeer(p)
		r.deferPeer(p) // once only
		if len(r.deferList) != k+1 || !slices.IsSortedFunc(r.deferList, func(a, b *peer) int { return cmpPeer(a, b.id) }) {
			t.Fatalf("after %d peers: %d in the list, sorted %v", k+1, len(r.deferList),
				slices.IsSortedFunc(r.deferList, func(a, b *peer) int { return cmpPeer(a, b.id) }))
		}
	}
	// Nothing is deferred in the peers themselves: a pass drops them all.
	r.runDeferred()
	if len(r.deferList) != 0 {
		t.Fatalf("%d peers left after a pass with nothing to do", len(r.deferList))
	}
}
