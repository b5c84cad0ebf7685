package crdt

import (
	"cmp"
	"flag"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
)

var (
	seedFlag  = flag.Uint64("seed", 0, "replay one property-test case with this seed (also $CRDT_SEED)")
	casesFlag = flag.Int("cases", 0, "number of property-test cases (also $CRDT_CASES; default 500, 30 with -short)")
)

// propertySeeds returns the case seeds to run: the one from -seed or
// $CRDT_SEED, or 1..N.
func propertySeeds(t *testing.T) []uint64 {
	seed := *seedFlag
	if s := os.Getenv("CRDT_SEED"); seed == 0 && s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CRDT_SEED: %v", err)
		}
		seed = v
	}
	if seed != 0 {
		return []uint64{seed}
	}
	n := *casesFlag
	if s := os.Getenv("CRDT_CASES"); n == 0 && s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("CRDT_CASES: %v", err)
		}
		n = v
	}
	if n == 0 {
		n = 500
		if testing.Short() {
			n = 30
		}
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	return seeds
}

// TestConvergenceProperty: random histories of 2-8 replicas with
// concurrent inserts, updates and deletes (and equivocating authors) on
// shared rows; every delivery order of the same set of changes, with
// duplicates, must give byte-identical state. Replay one case with
// `go test ./crdt -run Property -seed N`.
func TestConvergenceProperty(t *testing.T) {
	for _, seed := range propertySeeds(t) {
		if !checkConvergence(t, seed) {
			t.Fatalf("property failed; replay with: go test ./crdt -run TestConvergenceProperty -seed %d", seed)
		}
	}
}

func checkConvergence(t *testing.T, seed uint64) bool {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x63726474))
	nrep := 2 + rng.IntN(7)
	h := genHistory(t, rng, nrep, 20+rng.IntN(150))
	if len(h.changes) == 0 {
		return true
	}
	ref := deliver(t, rng, h.changes)
	want := ref.StateHash()
	// The document implements the written rule: serial execution in stamp
	// order.
	if got, model := fullState(ref), modelState(h.changes); !maps.Equal(got, model) {
		t.Errorf("seed %d: state differs from the serial-execution model:\n doc   %v\n model %v", seed, got, model)
		return false
	}
	// The replicas themselves, once fully synced, agree too.
	for _, d := range h.replicas {
		for _, s := range h.replicas {
			syncDocs(t, d, s)
		}
	}
	for i, d := range h.replicas {
		if d.StateHash() != want || !d.Heads().Equal(ref.Heads()) {
			t.Errorf("seed %d: replica %d differs after full sync", seed, i)
			return false
		}
	}
	orders := 4 + rng.IntN(5)
	for k := range orders {
		d := deliver(t, rng, h.changes)
		if got := d.StateHash(); got != want {
			t.Errorf("seed %d: delivery order %d gives state %x, want %x", seed, k, got[:4], want[:4])
			return false
		}
		if !d.Heads().Equal(ref.Heads()) {
			t.Errorf("seed %d: delivery order %d gives heads %s, want %s", seed, k, d.Heads(), ref.Heads())
			return false
		}
	}
	return true
}

// modelState executes every op of changes one after the other in stamp
// order (lamport, author, seq, change ID) with the SQL-like meaning of
// docs/semantics.md, naively, and returns the visible state in the form of
// fullState.
func modelState(changes []histChange) map[string]string {
	type stamped struct {
		lamport, seq uint64
		author       Author
		id           ID
		op           *Op
	}
	var ops []stamped
	for _, hc := range changes {
		for i := range hc.c.Ops {
			ops = append(ops, stamped{hc.c.Lamport + uint64(i), hc.c.Seq + uint64(i), hc.c.Author, hc.id, &hc.c.Ops[i]})
		}
	}
	slices.SortFunc(ops, func(a, b stamped) int {
		return cmp.Or(cmp.Compare(a.lamport, b.lamport), a.author.Compare(b.author), cmp.Compare(a.seq, b.seq), a.id.Compare(b.id))
	})
	rows := map[string]map[string]Value{}
	for _, s := range ops {
		key := s.op.Table + "/" + s.op.Row
		switch s.op.Kind {
		case OpInsert:
			r := map[string]Value{}
			for _, c := range s.op.Cols {
				r[c.Name] = c.Value
			}
			rows[key] = r
		case OpUpdate:
			if r, ok := rows[key]; ok {
				r[s.op.Cols[0].Name] = s.op.Cols[0].Value
			}
		case OpDelete:
			delete(rows, key)
		}
	}
	out := map[string]string{}
	for key, r := range rows {
		out[key] = "row"
		for c, v := range r {
			out[key+"."+c] = v.String()
		}
	}
	return out
}

// fullState is docState plus one "row" entry per visible row.
func fullState(d *Doc) map[string]string {
	m := docState(d)
	for _, tn := range d.Tables() {
		for _, r := range d.Scan(tn) {
			m[tn+"/"+r.Key] = "row"
		}
	}
	return m
}
