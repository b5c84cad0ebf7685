package bft

import (
	"flag"
	"math/rand/v2"
	"testing"

	"github.com/convergenode/convergenode/crdt"
)

var seedFlag = flag.Uint64("seed", 0, "run the gate property test with this seed only")

// TestGateDeliveryOrderProperty: honest and equivocating authors make a
// random DAG of changes; replicas that receive all of them in random
// orders (through the causal buffer) end with the same state, heads and
// an empty buffer, and all hold a proof against the equivocator.
func TestGateDeliveryOrderProperty(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5}
	if *seedFlag != 0 {
		seeds = []uint64{*seedFlag}
	}
	for _, seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 99))
		authors := []*node{newNode(1, GateConfig{}), newNode(2, GateConfig{}), newNode(3, GateConfig{}), newNode(4, GateConfig{})}
		eq := authors[3]
		var all []*Envelope
		var last *Envelope
		for step := range 60 {
			w := authors[rng.IntN(len(authors))]
			for _, x := range all {
				if rng.IntN(3) == 0 {
					w.gate.Receive("gossip", x, t0)
				}
			}
			op := crdt.Update("t", "r"+string(rune('a'+rng.IntN(4))), "c"+string(rune('a'+rng.IntN(2))), crdt.Int(int64(step)))
			if w == eq && last != nil && last.Change.Author == authorOf(eq.key) && rng.IntN(2) == 0 {
				// Fork: another change with the same prev and seq as the last one.
				heads := eq.doc.Heads()
				var maxL uint64
				for _, h := range heads {
					c, _ := eq.doc.Graph().Get(h)
					maxL = max(maxL, c.LastLamport())
				}
				c := mkChange(eq.key, last.Change.Seq, maxL+1, last.Change.Prev, heads, op)
				e := mustSign(t, eq.key, c)
				if res := eq.gate.Receive("self", e, t0); res.Rejection != nil {
					t.Fatalf("seed %d: fork refused: %v", seed, res.Rejection)
				}
				all = append(all, e)
				last = nil
				continue
			}
			e := w.propose(t, op)
			all = append(all, e)
			if w == eq {
				last = e
			}
		}
		var replicas []*node
		for i := range 4 {
			r := newNode(byte(20+i), GateConfig{})
			for _, k := range rng.Perm(len(all)) {
				res := r.gate.ReceiveBytes("p", all[k].Encode(), t0)
				if res.Rejection != nil {
					t.Fatalf("seed %d: %v", seed, res.Rejection)
				}
			}
			if m := r.gate.Metrics(); m.Accepted != uint64(len(all)) || m.BufferCount != 0 || m.Total() != 0 {
				t.Fatalf("seed %d replica %d: %+v", seed, i, m)
			}
			replicas = append(replicas, r)
		}
		sameState(t, replicas...)
		forked := replicas[0].gate.Metrics().Proofs > 0
		t.Logf("seed %d: %d changes, %d proofs", seed, len(all), replicas[0].gate.Metrics().Proofs)
		for _, r := range replicas {
			if (r.gate.Metrics().Proofs > 0) != forked {
				t.Fatalf("seed %d: replicas disagree on whether the author equivocated", seed)
			}
			if forked && (len(r.gate.Equivocators()) != 1 || r.gate.Equivocators()[0] != authorOf(eq.key)) {
				t.Fatalf("seed %d: wrong equivocators %v", seed, r.gate.Equivocators())
			}
		}
	}
}
