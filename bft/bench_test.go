package bft

import (
	"crypto/ed25519"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"lukechampine.com/blake3"
)

// The gate benchmarks time the gate and its raw ceiling in the same loop,
// interleaved item by item, so machine load (these run on shared cores)
// hits both alike. Each reports:
//
//	gate-ns/change   time per change through ReceiveBytes (stage 1 + 2 + Doc.Apply)
//	ceil-ns/change   ed25519.Verify of a 32-byte message (+ BLAKE3 of the change for 64 ops)
//	x-ceiling        ceiling time / gate time: the gate's rate as a fraction of the ceiling
//	apply-ns/change  crdt.Doc.Apply of the same changes on a shadow document (the document's share)
//	x-ceiling-excl-apply  ceiling time / (gate time - apply time)
//
// The loop alternates blocks of 256 changes through the gate with 256
// ceiling operations; times are medians of the per-block means, and
// x-ceiling is the median of the per-block ratios (neighbouring blocks see
// the same load). Before each ceiling block an untimed runtime.GC() ends
// any collection the gate's allocations started, so the ceiling is not
// slowed by the gate's garbage; collections during a gate block are
// charged to the gate. ns/op is the plain mean of gate plus ceiling. The sign benchmark
// interleaves item by item and reports medians.
//
// Run: go test -run '^$' -bench . -benchtime 3s ./bft

type rawCeiling struct {
	pub ed25519.PublicKey
	sig []byte
	msg []byte
}

func newRawCeiling() *rawCeiling {
	k := testKey(77)
	msg := make([]byte, 32)
	for i := range msg {
		msg[i] = byte(i)
	}
	return &rawCeiling{pub: k.Public().(ed25519.PublicKey), msg: msg, sig: ed25519.Sign(k, msg)}
}

func (r *rawCeiling) verify() {
	if !ed25519.Verify(r.pub, r.msg, r.sig) {
		panic("raw verify failed")
	}
}

var sink [32]byte

// makePool returns n encoded envelopes of one author's chain, each with
// nops update ops, valid in order on an empty document.
func makePool(b *testing.B, n, nops int) [][]byte {
	src := newNode(1, GateConfig{})
	pool := make([][]byte, n)
	for i := range pool {
		ops := make([]crdt.Op, nops)
		for j := range ops {
			ops[j] = crdt.Update("items", fmt.Sprintf("row-%d", (i*nops+j)%1000), "qty", crdt.Int(int64(i*nops+j)))
		}
		env, _, err := src.gate.Propose(src.key, ops, t0)
		if err != nil {
			b.Fatal(err)
		}
		pool[i] = env.Encode()
	}
	return pool
}

func benchGate(b *testing.B, nops, poolSize int) {
	const block = 256
	pool := makePool(b, poolSize, nops)
	decoded := make([]*Envelope, len(pool))
	for k, in := range pool {
		e, err := DecodeEnvelope(in)
		if err != nil {
			b.Fatal(err)
		}
		decoded[k] = e
	}
	raw := newRawCeiling()
	var r *node
	var shadow *crdt.Doc
	var gateBlk, ceilBlk, ratio, applyBlk, ratioExcl []float64
	b.ResetTimer()
	for i := 0; i < b.N; i += block {
		n := min(block, b.N-i)
		if i%len(pool)+n > len(pool) || i%len(pool) == 0 {
			b.StopTimer()
			r = newNode(2, GateConfig{})
			shadow = crdt.NewDoc(crdt.DocOptions{ID: testDoc})
			b.StartTimer()
		}
		k0 := i % len(pool)
		if k0+n > len(pool) {
			k0 = 0
		}
		t1 := time.Now()
		for k := k0; k < k0+n; k++ {
			if res := r.gate.ReceiveBytes("peer", pool[k], t0); len(res.Accepted) != 1 {
				b.Fatalf("change %d not accepted: %+v", k, res.Rejection)
			}
		}
		t2 := time.Now()
		b.StopTimer()
		runtime.GC() // untimed: the ceiling runs without the gate's GC in flight
		b.StartTimer()
		t2b := time.Now()
		for range n {
			raw.verify()
		}
		if nops > 1 {
			for k := k0; k < k0+n; k++ {
				sink = blake3.Sum256(pool[k]) // hashing the change: part of the ceiling
			}
		}
		t3 := time.Now()
		// The same changes applied to a shadow document with the trusted
		// crdt.Doc.Apply: the document's share of the gate's time.
		for k := k0; k < k0+n; k++ {
			if _, err := shadow.Apply(decoded[k].ID, decoded[k].Change); err != nil {
				b.Fatal(err)
			}
		}
		t4 := time.Now()
		g := float64(t2.Sub(t1).Nanoseconds()) / float64(n)
		c := float64(t3.Sub(t2b).Nanoseconds()) / float64(n)
		a := float64(t4.Sub(t3).Nanoseconds()) / float64(n)
		gateBlk, ceilBlk, ratio = append(gateBlk, g), append(ceilBlk, c), append(ratio, c/g)
		applyBlk, ratioExcl = append(applyBlk, a), append(ratioExcl, c/(g-a))
	}
	b.StopTimer()
	g, c := medianF(gateBlk), medianF(ceilBlk)
	b.ReportMetric(g, "gate-ns/change")
	b.ReportMetric(c, "ceil-ns/change")
	b.ReportMetric(medianF(ratio), "x-ceiling")
	b.ReportMetric(float64(nops)*1e9/g, "ops/s")
	b.ReportMetric(float64(nops)*1e9/c, "ceil-ops/s")
	b.ReportMetric(medianF(applyBlk), "apply-ns/change")
	b.ReportMetric(medianF(ratioExcl), "x-ceiling-excl-apply")
}

func medianF(x []float64) float64 {
	slices.Sort(x)
	return x[len(x)/2]
}

// BenchmarkGate1Op: changes of one op; target x-ceiling >= 0.85 (the gate's
// change rate is at least 85% of the raw ed25519.Verify rate).
func BenchmarkGate1Op(b *testing.B) { benchGate(b, 1, 4096) }

// BenchmarkGate64Ops: changes of 64 ops; target x-ceiling >= 0.8 where the
// ceiling is 64 ops / (one verify + BLAKE3 of the change).
func BenchmarkGate64Ops(b *testing.B) { benchGate(b, 64, 512) }

// BenchmarkSign64Ops: the sign side of a 64-op transaction (bft.Sign:
// encode, hash, sign) against one ed25519.Sign of 32 bytes plus BLAKE3 of
// the encoded change; target x-ceiling >= 1/1.2 = 0.83.
func BenchmarkSign64Ops(b *testing.B) {
	k := testKey(1)
	ops := make([]crdt.Op, 64)
	for j := range ops {
		ops[j] = crdt.Update("items", fmt.Sprintf("row-%d", j), "qty", crdt.Int(int64(j)))
	}
	c := mkChange(k, 1, 1, crdt.ZeroID, nil, ops...)
	enc, err := c.Encode()
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 32)
	signDur := make([]time.Duration, 0, b.N)
	ceilDur := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t1 := time.Now()
		env, err := Sign(k, c)
		t2 := time.Now()
		_ = ed25519.Sign(k, msg)
		sink = blake3.Sum256(enc)
		t3 := time.Now()
		if err != nil || env == nil {
			b.Fatal(err)
		}
		signDur = append(signDur, t2.Sub(t1))
		ceilDur = append(ceilDur, t3.Sub(t2))
	}
	b.StopTimer()
	s, cl := median(signDur), median(ceilDur)
	b.ReportMetric(s, "sign-ns/tx")
	b.ReportMetric(cl, "ceil-ns/tx")
	b.ReportMetric(s/cl, "x-sign+hash")
	b.ReportMetric(cl/s, "x-ceiling")
}

// BenchmarkPropose64Ops: a local 64-op transaction end to end
// (Doc.Prepare, Sign, Gate.Local with Doc.Apply). Informational.
func BenchmarkPropose64Ops(b *testing.B) {
	ops := make([]crdt.Op, 64)
	for j := range ops {
		ops[j] = crdt.Update("items", fmt.Sprintf("row-%d", j), "qty", crdt.Int(int64(j)))
	}
	n := newNode(1, GateConfig{})
	b.ResetTimer()
	for i := range b.N {
		if i%4096 == 0 {
			b.StopTimer()
			n = newNode(1, GateConfig{})
			b.StartTimer()
		}
		if _, _, err := n.gate.Propose(n.key, ops, t0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(64*b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkCheckStateless1Op: stage 1 alone.
func BenchmarkCheckStateless1Op(b *testing.B) {
	in := makePool(b, 1, 1)[0]
	b.ResetTimer()
	for range b.N {
		if _, rej := CheckStateless(testDoc, in); rej != nil {
			b.Fatal(rej)
		}
	}
}

// BenchmarkCheckStatelessCached1Op: stage 1 through a SigCache. Hit: the
// triple is cached (the second check of a node, after its validator), so
// no Ed25519 verification runs. Miss: a cache that never keeps anything
// (a fresh cache each iteration is too costly, so the pool of distinct
// changes is larger than the cache): the verification plus the cache's
// bookkeeping.
func BenchmarkCheckStatelessCached1Op(b *testing.B) {
	b.Run("hit", func(b *testing.B) {
		in := makePool(b, 1, 1)[0]
		c := NewSigCache(1024)
		if _, rej := CheckStatelessCached(testDoc, in, c); rej != nil {
			b.Fatal(rej)
		}
		b.ResetTimer()
		for range b.N {
			if _, rej := CheckStatelessCached(testDoc, in, c); rej != nil {
				b.Fatal(rej)
			}
		}
		b.StopTimer()
		if s := c.Stats(); s.Misses != 1 {
			b.Fatalf("stats %+v", s)
		}
	})
	b.Run("miss", func(b *testing.B) {
		pool := makePool(b, 64, 1)
		c := NewSigCache(2) // 64 distinct changes cycle through 2 entries
		b.ResetTimer()
		for i := range b.N {
			if _, rej := CheckStatelessCached(testDoc, pool[i%len(pool)], c); rej != nil {
				b.Fatal(rej)
			}
		}
		b.StopTimer()
		if s := c.Stats(); s.Hits != 0 {
			b.Fatalf("stats %+v", s)
		}
	})
}

// BenchmarkRawVerify and BenchmarkRawBLAKE3 are the ceilings on their own.
func BenchmarkRawVerify(b *testing.B) {
	r := newRawCeiling()
	for range b.N {
		r.verify()
	}
}

// BenchmarkRawBLAKE3Change64: BLAKE3 of one encoded 64-op change.
func BenchmarkRawBLAKE3Change64(b *testing.B) {
	in := makePool(b, 1, 64)[0]
	b.SetBytes(int64(len(in)))
	b.ResetTimer()
	for range b.N {
		sink = blake3.Sum256(in)
	}
}

func BenchmarkRawBLAKE3(b *testing.B) {
	msg := make([]byte, 32)
	for range b.N {
		sink = blake3.Sum256(msg)
	}
}

func median(d []time.Duration) float64 {
	slices.Sort(d)
	return float64(d[len(d)/2].Nanoseconds())
}
