package crdt

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/convergenode/convergenode/internal/cputime"
)

// The benchmark workload: 4 authors writing concurrently to one table of
// 10,000 rows. Each round every author makes one change whose parents are
// the 4 changes of the previous round, so the 4 changes of a round are
// concurrent. Ops: 10% inserts (3 columns), 80% single-column updates, 10%
// deletes, on random rows.

const (
	benchAuthors = 4
	benchRows    = 10000
)

type benchGen struct {
	rng       *rand.Rand
	authors   [benchAuthors]Author
	seq       [benchAuthors]uint64
	prev      [benchAuthors]ID
	parents   []ID
	lamport   uint64
	perChange int
	keys      []string
}

func newBenchGen(perChange int) *benchGen {
	g := &benchGen{rng: rand.New(rand.NewPCG(1, 2)), perChange: perChange, lamport: 1}
	for i := range g.authors {
		g.authors[i][0] = byte(i + 1)
		g.seq[i] = 1
	}
	for i := range benchRows {
		g.keys = append(g.keys, fmt.Sprintf("row%05d", i))
	}
	return g
}

func (g *benchGen) op() Op {
	row := g.keys[g.rng.IntN(benchRows)]
	switch p := g.rng.IntN(10); {
	case p == 0:
		return Op{Kind: OpInsert, Table: "items", Row: row, Cols: []Col{
			{Name: "done", Value: Bool(false)},
			{Name: "name", Value: String("item")},
			{Name: "score", Value: Int(int64(g.rng.IntN(1000)))},
		}}
	case p == 1:
		return Op{Kind: OpDelete, Table: "items", Row: row}
	case p < 6:
		return Op{Kind: OpUpdate, Table: "items", Row: row, Cols: []Col{{Name: "score", Value: Int(int64(g.rng.IntN(1000)))}}}
	}
	return Op{Kind: OpUpdate, Table: "items", Row: row, Cols: []Col{{Name: "done", Value: Bool(g.rng.IntN(2) == 0)}}}
}

// round returns the next 4 concurrent changes (one per author) and their IDs.
func (g *benchGen) round(fn func(id ID, c *Change)) {
	var ids []ID
	for a := range g.authors {
		ops := make([]Op, g.perChange)
		for i := range ops {
			ops[i] = g.op()
		}
		c := &Change{
			Doc: "bench", Author: g.authors[a], Seq: g.seq[a], Lamport: g.lamport,
			Prev: g.prev[a], Parents: g.parents, Time: 1, Ops: ops,
		}
		id := c.MustID()
		g.seq[a] += uint64(g.perChange)
		g.prev[a] = id
		ids = append(ids, id)
		fn(id, c)
	}
	g.lamport += uint64(g.perChange)
	g.parents = SortIDs(ids)
}

type benchChange struct {
	id  ID
	c   *Change
	raw []byte
}

var benchCache = map[int][]benchChange{}

// benchChanges returns nops ops of the workload as changes of perChange ops.
func benchChanges(tb testing.TB, nops, perChange int) []benchChange {
	key := nops*10000 + perChange
	if cs, ok := benchCache[key]; ok {
		return cs
	}
	g := newBenchGen(perChange)
	var out []benchChange
	for len(out)*perChange < nops {
		g.round(func(id ID, c *Change) {
			raw, err := c.Encode()
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, benchChange{id, c, raw})
		})
	}
	benchCache[key] = out
	return out
}

// reportOps reports throughput from wall time, and the CPU time the
// process used per iteration (cpu-ms/op; with -cpu 1 that is one core's
// time, garbage collection included) with the throughput it implies.
func reportOps(b *testing.B, ops int, cpu time.Duration) {
	b.ReportMetric(float64(ops)*float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	if cpu > 0 {
		b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/op")
		b.ReportMetric(float64(ops)*float64(b.N)/cpu.Seconds(), "ops/cpu-s")
	}
}

// BenchmarkApplyRemote applies 100,000 remote ops from 4 concurrent authors
// into a fresh doc, one iteration = all 100,000 ops.
//   - trusted: Apply with known IDs (the merge alone);
//   - decode+hash: DecodeChange + HashChange + Apply from the wire bytes
//     (everything a replica does except the signature check).
func BenchmarkApplyRemote(b *testing.B) {
	const nops = 100000
	for _, per := range []int{1, 64} {
		cs := benchChanges(b, nops, per)
		b.Run(fmt.Sprintf("ops=%d/trusted", per), func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				d := NewDoc(DocOptions{ID: "bench"})
				for _, x := range cs {
					if _, err := d.Apply(x.id, x.c); err != nil {
						b.Fatal(err)
					}
				}
			}
			reportOps(b, len(cs)*per, cputime.Process()-cpu0)
		})
		b.Run(fmt.Sprintf("ops=%d/decode+hash", per), func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				d := NewDoc(DocOptions{ID: "bench"})
				for _, x := range cs {
					c, err := DecodeChange(x.raw)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := d.Apply(HashChange(x.raw), c); err != nil {
						b.Fatal(err)
					}
				}
			}
			reportOps(b, len(cs)*per, cputime.Process()-cpu0)
		})
	}
}

// BenchmarkLocalWrite makes local changes: Prepare, encode, hash and apply.
func BenchmarkLocalWrite(b *testing.B) {
	b.Run("update", func(b *testing.B) {
		d := NewDoc(DocOptions{ID: "bench", Author: Author{1}})
		g := newBenchGen(1)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			row := g.keys[i%benchRows]
			i++
			if _, _, err := d.Update("items", row, "score", Int(int64(i))); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
	b.Run("tx64", func(b *testing.B) {
		d := NewDoc(DocOptions{ID: "bench", Author: Author{1}})
		g := newBenchGen(1)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, _, err := d.Change(func(tx *Tx) error {
				for range 64 {
					i++
					tx.Update("items", g.keys[i%benchRows], "score", Int(int64(i)))
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)*64/b.Elapsed().Seconds(), "ops/s")
	})
}

func BenchmarkEncode(b *testing.B) {
	for _, per := range []int{1, 64} {
		x := benchChanges(b, 1000, per)[5]
		b.Run(fmt.Sprintf("ops=%d", per), func(b *testing.B) {
			b.SetBytes(int64(len(x.raw)))
			b.ReportAllocs()
			buf := make([]byte, 0, len(x.raw))
			for b.Loop() {
				var err error
				if buf, err = x.c.AppendEncode(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, per := range []int{1, 64} {
		x := benchChanges(b, 1000, per)[5]
		b.Run(fmt.Sprintf("ops=%d", per), func(b *testing.B) {
			b.SetBytes(int64(len(x.raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeChange(x.raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkResident applies 1,000,000 ops (decoded from wire bytes, as a
// replica receives them) into a fresh doc and reports the heap the doc
// keeps per op after a GC: history (the DAG of changes) plus tables.
func BenchmarkResident(b *testing.B) {
	const nops = 1000000
	for _, per := range []int{64, 1} {
		b.Run(fmt.Sprintf("ops=%d", per), func(b *testing.B) {
			var perOp float64
			for b.Loop() {
				perOp = residentBytesPerOp(b, nops, per)
			}
			b.ReportMetric(perOp, "resident-B/op")
		})
	}
}

func residentBytesPerOp(tb testing.TB, nops, per int) float64 {
	var m0, m1 runtime.MemStats
	g := newBenchGen(per) // the generator's own state is not counted
	runtime.GC()
	runtime.ReadMemStats(&m0)
	d := NewDoc(DocOptions{ID: "bench"})
	n := 0
	var buf []byte
	for n < nops {
		g.round(func(_ ID, c *Change) {
			var err error
			if buf, err = c.AppendEncode(buf[:0]); err != nil {
				tb.Fatal(err)
			}
			dc, err := DecodeChange(buf)
			if err != nil {
				tb.Fatal(err)
			}
			if _, err := d.Apply(HashChange(buf), dc); err != nil {
				tb.Fatal(err)
			}
			n += per
		})
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	runtime.KeepAlive(d)
	runtime.KeepAlive(g)
	return float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / float64(n)
}

// BenchmarkGraph measures the DAG queries on the 100,000-op, 1-op-change
// workload (25,000 rounds of 4 concurrent changes): IsAncestor of a change
// 10 or 10,000 rounds below the head, and Since of one change 10 rounds
// old (40 changes after it, plus its 3 concurrent siblings).
func BenchmarkGraph(b *testing.B) {
	cs := benchChanges(b, 100000, 1)
	d := NewDoc(DocOptions{ID: "bench"})
	for _, x := range cs {
		if _, err := d.Apply(x.id, x.c); err != nil {
			b.Fatal(err)
		}
	}
	g := d.Graph()
	head := cs[len(cs)-1].id
	for _, back := range []int{10, 10000} {
		x := cs[len(cs)-1-4*back].id
		b.Run(fmt.Sprintf("IsAncestor/rounds=%d", back), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !g.IsAncestor(x, head) {
					b.Fatal("not an ancestor")
				}
			}
		})
	}
	b.Run("Since/rounds=10", func(b *testing.B) {
		v := NewVersion(cs[len(cs)-41].id)
		b.ReportAllocs()
		for b.Loop() {
			if n := len(g.Since(v)); n != 43 {
				b.Fatalf("Since gave %d changes", n)
			}
		}
	})
}
