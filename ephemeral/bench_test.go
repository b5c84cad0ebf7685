package ephemeral

import (
	"crypto/ed25519"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/convergenode/convergenode/crdt"
)

const benchEntries = 64 // updates per batch: one signature per 64 entries

// benchPool returns nAuthors × perAuthor signed batches of benchEntries
// updates each, all fresh at t0, and their encodings. Every update is a new
// entry; with benchPoolUpdates instead, each author's batches rewrite the same
// 64 keys (a cursor moving), so merges replace entries instead of adding.
func benchPool(tb testing.TB, nAuthors, perAuthor int) ([]*Batch, [][]byte) {
	return makePool(tb, nAuthors, perAuthor, true)
}

func benchPoolUpdates(tb testing.TB, nAuthors, perAuthor int) ([]*Batch, [][]byte) {
	return makePool(tb, nAuthors, perAuthor, false)
}

func makePool(tb testing.TB, nAuthors, perAuthor int, distinct bool) ([]*Batch, [][]byte) {
	tb.Helper()
	var bs []*Batch
	var enc [][]byte
	for a := range nAuthors {
		key := testKey(1000 + a)
		for j := range perAuthor {
			ts := Timestamp{Wall: t0.UnixMilli(), Logical: uint32(j + 1)}
			b := &Batch{Doc: testDoc, Time: ts, Updates: make([]Update, benchEntries)}
			for e := range b.Updates {
				k := e
				if distinct {
					k += j * benchEntries
				}
				b.Updates[e] = Update{Namespace: "cursor", Key: fmt.Sprintf("k%06d", k),
					Time: ts, Value: crdt.Int(int64(j))}
			}
			if err := b.Sign(key); err != nil {
				tb.Fatal(err)
			}
			p, err := b.Encode()
			if err != nil {
				tb.Fatal(err)
			}
			bs = append(bs, b)
			enc = append(enc, p)
		}
	}
	return bs, enc
}

func benchStore(tb testing.TB) *Store {
	return newTestStore(tb, 1, func(c *Config) {
		c.Rate, c.Burst, c.MaxEntriesPerAuthor = 1<<30, 1<<20, 1<<20
	})
}

// BenchmarkMergeVerified measures the full remote path: decode the wire bytes,
// check, verify the signature (one per 64 entries) and apply. "new" adds 64
// new entries per batch (the store grows; rebuilt every 512 batches);
// "update" rewrites an author's same 64 entries (steady state).
func BenchmarkMergeVerified(b *testing.B) {
	for _, c := range []struct {
		name string
		pool func(testing.TB, int, int) ([]*Batch, [][]byte)
	}{{"new", benchPool}, {"update", benchPoolUpdates}} {
		b.Run(c.name, func(b *testing.B) {
			_, enc := c.pool(b, 16, 32)
			s := benchStore(b)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%len(enc) == 0 && i > 0 {
					b.StopTimer()
					s = benchStore(b)
					b.StartTimer()
				}
				x, err := DecodeBatch(enc[i%len(enc)])
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Merge(x, t0); err != nil {
					b.Fatal(err)
				}
			}
			reportRates(b)
		})
	}
}

// BenchmarkEd25519Verify is the ceiling for BenchmarkMergeVerified: one raw
// ed25519.Verify of a 32-byte digest, the only signature check a batch needs.
func BenchmarkEd25519Verify(b *testing.B) {
	key := testKey(7)
	pub := key.Public().(ed25519.PublicKey)
	var digest [32]byte
	sig := ed25519.Sign(key, digest[:])
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !ed25519.Verify(pub, digest[:], sig) {
			b.Fatal("verify failed")
		}
	}
	reportRates(b)
}

// BenchmarkVerifiedVsCeiling interleaves, in every iteration, one raw
// ed25519.Verify and one verified merge of a 64-entry batch (decode + Merge),
// timing each, so both see the same machine load. It reports their mean
// times and the merge rate as a percentage of the verify ceiling; "new" and
// "update" as in BenchmarkMergeVerified.
func BenchmarkVerifiedVsCeiling(b *testing.B) {
	for _, c := range []struct {
		name string
		pool func(testing.TB, int, int) ([]*Batch, [][]byte)
	}{{"new", benchPool}, {"update", benchPoolUpdates}} {
		b.Run(c.name, func(b *testing.B) {
			_, enc := c.pool(b, 16, 32)
			key := testKey(7)
			pub := key.Public().(ed25519.PublicKey)
			var digest [32]byte
			sig := ed25519.Sign(key, digest[:])
			s := benchStore(b)
			var verifyNs, mergeNs time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%len(enc) == 0 && i > 0 {
					b.StopTimer()
					s = benchStore(b)
					b.StartTimer()
				}
				t1 := time.Now()
				if !ed25519.Verify(pub, digest[:], sig) {
					b.Fatal("verify failed")
				}
				t2 := time.Now()
				x, err := DecodeBatch(enc[i%len(enc)])
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Merge(x, t0); err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				verifyNs += t2.Sub(t1)
				mergeNs += t3.Sub(t2)
			}
			n := float64(b.N)
			b.ReportMetric(float64(verifyNs.Nanoseconds())/n, "verify-ns")
			b.ReportMetric(float64(mergeNs.Nanoseconds())/n, "merge-ns")
			b.ReportMetric(100*float64(verifyNs)/float64(mergeNs), "%-of-ceiling")
		})
	}
}

// BenchmarkMergeTrusted measures applying already-verified batches
// (MergeVerified: every check but the signature); "new" and "update" as in
// BenchmarkMergeVerified.
func BenchmarkMergeTrusted(b *testing.B) {
	for _, c := range []struct {
		name string
		pool func(testing.TB, int, int) ([]*Batch, [][]byte)
	}{{"new", benchPool}, {"update", benchPoolUpdates}} {
		b.Run(c.name, func(b *testing.B) {
			bs, _ := c.pool(b, 16, 32)
			s := benchStore(b)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%len(bs) == 0 && i > 0 {
					b.StopTimer()
					s = benchStore(b)
					b.StartTimer()
				}
				if _, err := s.MergeVerified(bs[i%len(bs)], t0); err != nil {
					b.Fatal(err)
				}
			}
			reportRates(b)
		})
	}
}

// BenchmarkLocalSet measures local writes (Set), flushed and signed every 64
// writes as the driver's tick would.
func BenchmarkLocalSet(b *testing.B) {
	s := benchStore(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now := t0.Add(time.Duration(i/benchEntries) * time.Millisecond)
		if err := s.Set("cursor", fmt.Sprintf("k%d", i%4096), crdt.Int(int64(i)), now); err != nil {
			b.Fatal(err)
		}
		if i%benchEntries == benchEntries-1 {
			s.Flush(now)
		}
	}
}

func reportRates(b *testing.B) {
	if sec := b.Elapsed().Seconds(); sec > 0 {
		b.ReportMetric(float64(b.N)/sec, "batches/s")
		b.ReportMetric(float64(b.N)*benchEntries/sec, "entries/s")
	}
}

// BenchmarkMemoryPerEntry measures the heap held per live entry after
// merging 64 authors × 32 batches × 64 entries (131072 entries, 7-byte
// string keys, int values). The signed batches the store keeps for Snapshot
// are included: the baseline is taken before they are built.
func BenchmarkMemoryPerEntry(b *testing.B) {
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		bs, _ := benchPool(b, 64, 32)
		s := benchStore(b)
		for _, x := range bs {
			if _, err := s.MergeVerified(x, t0); err != nil {
				b.Fatal(err)
			}
		}
		bs = nil // the store keeps what it needs
		runtime.GC()
		runtime.ReadMemStats(&after)
		n := s.Len()
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "bytes/entry")
		b.ReportMetric(float64(n), "entries")
		runtime.KeepAlive(s)
		runtime.KeepAlive(bs)
	}
}
