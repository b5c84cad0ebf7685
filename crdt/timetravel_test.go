package crdt

import (
	"errors"
	"maps"
	"math/rand/v2"
	"testing"
)

// pastOf computes the causal past of v by walking parent links over the
// raw changes (independently of Graph).
func pastOf(changes []histChange, v Version) []histChange {
	byID := map[ID]*Change{}
	for _, hc := range changes {
		byID[hc.id] = hc.c
	}
	seen := map[ID]bool{}
	stack := append([]ID(nil), v...)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[id] {
			continue
		}
		seen[id] = true
		stack = append(stack, byID[id].Parents...)
	}
	var out []histChange
	for _, hc := range changes {
		if seen[hc.id] {
			out = append(out, hc)
		}
	}
	return out
}

// TestTimeTravelMatchesReplay: the state at version V (Doc.At) equals both
// the state a replica had when its heads were V and a fresh doc fed only the
// causal past of V; Diff(A, B) turns the state at A into the state at B.
func TestTimeTravelMatchesReplay(t *testing.T) {
	n := 60
	if testing.Short() {
		n = 10
	}
	for seed := uint64(1); seed <= uint64(n); seed++ {
		rng := rand.New(rand.NewPCG(seed, 0x74696d65))
		h := genHistory(t, rng, 2+rng.IntN(5), 20+rng.IntN(100))
		if len(h.changes) == 0 {
			continue
		}
		merged := deliver(t, rng, h.changes)
		for k, s := range h.snaps {
			at, err := merged.At(s.heads)
			if err != nil {
				t.Fatal(err)
			}
			if at.StateHash() != s.hash {
				t.Fatalf("seed %d snapshot %d: At(%s) differs from the replica's state then", seed, k, s.heads)
			}
			if !at.Heads().Equal(s.heads) {
				t.Fatalf("seed %d snapshot %d: At heads %s, want %s", seed, k, at.Heads(), s.heads)
			}
			if len(s.heads) > 0 {
				replay := deliver(t, rng, pastOf(h.changes, s.heads))
				if replay.StateHash() != s.hash {
					t.Fatalf("seed %d snapshot %d: replay of the causal past differs", seed, k)
				}
			}
		}
		for range 5 {
			a := h.snaps[rng.IntN(len(h.snaps))]
			b := h.snaps[rng.IntN(len(h.snaps))]
			diff, err := merged.Diff(a.heads, b.heads)
			if err != nil {
				t.Fatal(err)
			}
			state := maps.Clone(a.state)
			for _, cd := range diff {
				key := cd.Table + "/" + cd.Row + "." + cd.Col
				if got, ok := state[key]; ok != cd.OldSet || (ok && got != cd.Old.String()) {
					t.Fatalf("seed %d: diff %s: old side does not match state", seed, cd)
				}
				if cd.NewSet {
					state[key] = cd.New.String()
				} else {
					delete(state, key)
				}
			}
			if !maps.Equal(state, b.state) {
				t.Fatalf("seed %d: applying Diff(A,B) to A does not give B", seed)
			}
		}
	}
}

func TestTimeTravelSimple(t *testing.T) {
	ok := mustCommit(t)
	d := newTestDoc(1)
	v0 := d.Heads()
	ok(d.Insert("t", "r", map[string]Value{"a": Int(1), "b": Int(2)}))
	v1 := d.Heads()
	ok(d.Update("t", "r", "a", Int(5)))
	ok(d.Insert("t", "s", map[string]Value{"x": String("y")}))
	v2 := d.Heads()
	ok(d.Delete("t", "r"))
	v3 := d.Heads()
	at1, err := d.At(v1)
	if err != nil {
		t.Fatal(err)
	}
	if got := rowString(at1, "t", "r"); got != "{a=1 b=2}" {
		t.Fatalf("At(v1): %s", got)
	}
	at0, _ := d.At(v0)
	if len(at0.Tables()) != 0 || at0.Graph().Len() != 0 {
		t.Fatal("At(empty) not empty")
	}
	diff, err := d.Diff(v1, v3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, cd := range diff {
		got = append(got, cd.String())
	}
	want := []string{`t/r.a: 1 -> -`, `t/r.b: 2 -> -`, `t/s.x: - -> "y"`}
	if len(got) != len(want) {
		t.Fatalf("diff %q", got)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("diff %q, want %q", got, want)
		}
	}
	diff, _ = d.Diff(v1, v2)
	if len(diff) != 2 || diff[0].String() != "t/r.a: 1 -> 5" {
		t.Fatalf("diff v1..v2 %v", diff)
	}
	if _, err := d.At(NewVersion(ID{9})); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("unknown version: %v", err)
	}
}
