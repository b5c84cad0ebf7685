package crdt

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// A history is a random run of several replicas making concurrent changes
// on a few shared rows and partially syncing with each other.

type histChange struct {
	id ID
	c  *Change
}

type snapshot struct {
	replica int
	heads   Version
	hash    [32]byte
	state   map[string]string // table/row.col -> value, for diff checks
}

type history struct {
	replicas []*Doc
	changes  []histChange // in creation order
	snaps    []snapshot
}

func randValue(rng *rand.Rand) Value {
	switch rng.IntN(7) {
	case 0:
		return Null()
	case 1:
		return Bool(rng.IntN(2) == 0)
	case 2:
		return Float(float64(rng.IntN(5)) / 2)
	case 3:
		return String(fmt.Sprint("s", rng.IntN(4)))
	case 4:
		return Bytes([]byte{byte(rng.IntN(3))})
	}
	return Int(int64(rng.IntN(9)) - 4)
}

func randOp(rng *rand.Rand) Op {
	table := fmt.Sprint("t", rng.IntN(2))
	row := fmt.Sprint("r", rng.IntN(5))
	switch rng.IntN(10) {
	case 0, 1, 2:
		cols := map[string]Value{}
		for range rng.IntN(4) {
			cols[fmt.Sprint("c", rng.IntN(4))] = randValue(rng)
		}
		return Insert(table, row, cols)
	case 3, 4:
		return Delete(table, row)
	}
	return Update(table, row, fmt.Sprint("c", rng.IntN(4)), randValue(rng))
}

func randOps(rng *rand.Rand) []Op {
	ops := make([]Op, 1+rng.IntN(4))
	for i := range ops {
		ops[i] = randOp(rng)
	}
	return ops
}

func docState(d *Doc) map[string]string {
	m := map[string]string{}
	for _, tn := range d.Tables() {
		for _, r := range d.Scan(tn) {
			for _, c := range r.Cols {
				m[tn+"/"+r.Key+"."+c.Name] = c.Value.String()
			}
		}
	}
	return m
}

func (h *history) snap(i int) {
	d := h.replicas[i]
	h.snaps = append(h.snaps, snapshot{replica: i, heads: d.Heads(), hash: d.StateHash(), state: docState(d)})
}

func genHistory(tb testing.TB, rng *rand.Rand, nrep, steps int) *history {
	tb.Helper()
	h := &history{}
	for i := range nrep {
		var a Author
		a[0] = byte(rng.IntN(256))
		a[1] = byte(i)
		h.replicas = append(h.replicas, NewDoc(DocOptions{ID: "doc", Author: a, Now: func() int64 { return int64(i) }}))
	}
	record := func(c *Change, id ID, err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		if c != nil {
			h.changes = append(h.changes, histChange{id, c})
		}
	}
	for range steps {
		r := rng.IntN(nrep)
		d := h.replicas[r]
		switch p := rng.IntN(20); {
		case p < 11:
			ops := randOps(rng)
			record(d.Change(func(tx *Tx) error { tx.Add(ops...); return nil }))
		case p < 17:
			s := h.replicas[rng.IntN(nrep)]
			ids := s.Graph().Since(d.Heads())
			if len(ids) == 0 {
				continue
			}
			for _, id := range ids[:1+rng.IntN(len(ids))] {
				if d.Graph().Has(id) {
					continue
				}
				if _, err := d.Apply(id, mustGet(s, id)); err != nil {
					tb.Fatal(err)
				}
			}
		case p < 18:
			// Equivocate: two changes with the same seq, prev and parents.
			c1, err1 := d.Prepare(randOps(rng))
			c2, err2 := d.Prepare(randOps(rng))
			if err := errors.Join(err1, err2); err != nil {
				tb.Fatal(err)
			}
			for _, c := range []*Change{c1, c2} {
				id := c.MustID()
				if d.Graph().Has(id) {
					continue
				}
				_, err := d.Apply(id, c)
				record(c, id, err)
			}
		default:
			h.snap(r)
		}
	}
	for i := range h.replicas {
		h.snap(i)
	}
	return h
}

// deliver feeds changes to a fresh doc in a random order with duplicates,
// holding back changes whose parents are missing (like the gate's causal
// buffer) and releasing them once they can be applied.
func deliver(tb testing.TB, rng *rand.Rand, changes []histChange) *Doc {
	tb.Helper()
	pool := make([]histChange, 0, len(changes)*5/4)
	pool = append(pool, changes...)
	for range rng.IntN(len(changes)/4 + 1) {
		pool = append(pool, changes[rng.IntN(len(changes))])
	}
	rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	d := NewDoc(DocOptions{ID: "doc"})
	waiting := map[ID][]histChange{} // missing parent -> changes waiting for it
	var try func(hc histChange)
	try = func(hc histChange) {
		_, err := d.Apply(hc.id, hc.c)
		switch {
		case err == nil:
			w := waiting[hc.id]
			delete(waiting, hc.id)
			for _, x := range w {
				try(x)
			}
		case errors.Is(err, ErrDuplicate):
		case errors.Is(err, ErrMissingParents):
			m := d.Graph().Missing(hc.c)
			waiting[m[0]] = append(waiting[m[0]], hc)
		default:
			tb.Fatal(err)
		}
	}
	for _, hc := range pool {
		try(hc)
	}
	if d.Graph().Len() != len(changes) {
		tb.Fatalf("delivered %d of %d changes", d.Graph().Len(), len(changes))
	}
	return d
}
