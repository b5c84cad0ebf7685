package bft

import (
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"

	"github.com/convergenode/convergenode/crdt"
)

// triple is a signed change ID, the input of SigCache.Verify.
type triple struct {
	author crdt.Author
	id     crdt.ID
	sig    [64]byte
}

func signedTriple(k ed25519.PrivateKey, i int) triple {
	var t triple
	t.author = authorOf(k)
	t.id[0], t.id[1], t.id[2] = byte(i), byte(i>>8), 0xcc
	copy(t.sig[:], ed25519.Sign(k, t.id[:]))
	return t
}

func wantStats(t *testing.T, c *SigCache, hits, misses uint64) {
	t.Helper()
	if s := c.Stats(); s.Hits != hits || s.Misses != misses {
		t.Fatalf("stats %+v, want %d hits, %d misses", s, hits, misses)
	}
}

func TestSigCacheHitSkipsCrypto(t *testing.T) {
	c := NewSigCache(16)
	tr := signedTriple(testKey(1), 1)
	if !c.Verify(tr.author, tr.id, &tr.sig) {
		t.Fatal("valid signature refused")
	}
	wantStats(t, c, 0, 1)
	for range 3 {
		if !c.Verify(tr.author, tr.id, &tr.sig) {
			t.Fatal("cached signature refused")
		}
	}
	wantStats(t, c, 3, 1)
	if n := c.Stats().Entries; n != 1 {
		t.Fatalf("%d entries, want 1", n)
	}
}

// A triple that differs from a cached one in any field is not a hit: it is
// verified (a miss) and refused.
func TestSigCacheTamperedIsNotAHit(t *testing.T) {
	c := NewSigCache(16)
	k1, k2 := testKey(1), testKey(2)
	tr := signedTriple(k1, 1)
	if !c.Verify(tr.author, tr.id, &tr.sig) {
		t.Fatal("valid signature refused")
	}
	other := signedTriple(k2, 1) // same ID, signed by k2
	cases := map[string]triple{}
	badSig := tr
	badSig.sig[5] ^= 1
	cases["signature"] = badSig
	badID := tr
	badID.id[31] ^= 1
	cases["id"] = badID
	badKey := tr
	badKey.author = other.author
	cases["key"] = badKey
	otherSig := tr
	otherSig.sig = other.sig // k2's valid signature of the same ID, under k1
	cases["another key's signature"] = otherSig
	misses := uint64(1)
	for name, x := range cases {
		for range 2 { // refused twice: failures are never cached
			if c.Verify(x.author, x.id, &x.sig) {
				t.Fatalf("%s tampered: accepted", name)
			}
			misses++
			wantStats(t, c, 0, misses)
		}
	}
	if n := c.Stats().Entries; n != 1 {
		t.Fatalf("%d entries, want 1 (failures stored?)", n)
	}
	// The genuine triple still hits.
	if !c.Verify(tr.author, tr.id, &tr.sig) {
		t.Fatal("cached signature refused")
	}
	wantStats(t, c, 1, misses)
}

func TestSigCacheBound(t *testing.T) {
	for _, n := range []int{1, 2, 7, 8} {
		c := NewSigCache(n)
		bound := max(n+n%2, 2)
		k := testKey(3)
		var last triple
		for i := range 50 {
			last = signedTriple(k, i)
			if !c.Verify(last.author, last.id, &last.sig) {
				t.Fatal("valid signature refused")
			}
			if e := c.Stats().Entries; e > bound {
				t.Fatalf("n=%d: %d entries after %d inserts, bound %d", n, e, i+1, bound)
			}
		}
		s := c.Stats()
		if !c.Verify(last.author, last.id, &last.sig) || c.Stats().Hits != s.Hits+1 {
			t.Fatalf("n=%d: the newest entry was evicted", n)
		}
		// The oldest were evicted: verified again (a miss), still valid.
		first := signedTriple(k, 0)
		if !c.Verify(first.author, first.id, &first.sig) || c.Stats().Misses != s.Misses+1 {
			t.Fatalf("n=%d: the oldest entry is still cached", n)
		}
	}
}

func TestSigCacheNil(t *testing.T) {
	var c *SigCache
	if NewSigCache(0) != nil || NewSigCache(-1) != nil {
		t.Fatal("NewSigCache(<=0) is not nil")
	}
	tr := signedTriple(testKey(1), 1)
	for range 2 {
		if !c.Verify(tr.author, tr.id, &tr.sig) {
			t.Fatal("nil cache: valid signature refused")
		}
	}
	bad := tr
	bad.sig[0] ^= 1
	if c.Verify(bad.author, bad.id, &bad.sig) {
		t.Fatal("nil cache: bad signature accepted")
	}
	if c.Stats() != (SigCacheStats{}) {
		t.Fatalf("nil cache stats %+v", c.Stats())
	}
	// nil through the stage 1 and gate plumbing.
	n := newNode(1, GateConfig{})
	b := n.propose(t).Encode()
	if _, rej := CheckStatelessCached(testDoc, b, nil); rej != nil {
		t.Fatal(rej)
	}
}

// Run with -race: many goroutines share one small cache (so generations
// rotate while others read); every answer matches Verify and every call is
// counted once.
func TestSigCacheConcurrent(t *testing.T) {
	c := NewSigCache(8)
	var good, bad []triple
	for i := range 24 {
		tr := signedTriple(testKey(byte(i%3+1)), i)
		good = append(good, tr)
		tr.sig[63] ^= 0x10
		bad = append(bad, tr)
	}
	const workers, rounds = 6, 20
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				for i := range good {
					j := (i + w*5 + r) % len(good)
					if !c.Verify(good[j].author, good[j].id, &good[j].sig) {
						errs <- "valid refused"
						return
					}
					if c.Verify(bad[j].author, bad[j].id, &bad[j].sig) {
						errs <- "invalid accepted"
						return
					}
				}
				_ = c.Stats()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	s := c.Stats()
	if s.Hits+s.Misses != workers*rounds*uint64(2*len(good)) {
		t.Fatalf("stats %+v: %d calls counted, want %d", s, s.Hits+s.Misses, workers*rounds*2*len(good))
	}
	if s.Entries > 8 {
		t.Fatalf("%d entries, bound 8", s.Entries)
	}
}

// Stage 1 and the gate through a shared cache: a validator's check makes
// the gate's check a hit, and the answers are those of CheckStateless.
func TestCheckStatelessCached(t *testing.T) {
	src := newNode(1, GateConfig{})
	var pool [][]byte
	for range 4 {
		pool = append(pool, src.propose(t).Encode())
	}
	c := NewSigCache(64)
	dst := newNode(2, GateConfig{SigCache: c})
	for i, b := range pool {
		if _, rej := CheckStatelessCached(testDoc, b, c); rej != nil {
			t.Fatal(rej)
		}
		wantStats(t, c, uint64(i), uint64(i+1))
		if res := dst.gate.ReceiveBytes("p", b, t0); len(res.Accepted) != 1 {
			t.Fatalf("not accepted: %v", res.Rejection)
		}
		wantStats(t, c, uint64(i+1), uint64(i+1))
	}
	// A tampered signature on a cached change: rejected like CheckStateless.
	b := append([]byte(nil), pool[0]...)
	b[len(b)-1] ^= 1
	_, rej := CheckStatelessCached(testDoc, b, c)
	_, want := CheckStateless(testDoc, b)
	wantReason(t, rej, RejectBadSignature)
	wantReason(t, want, RejectBadSignature)
	// Receive of a decoded (unchecked) envelope goes through the cache too.
	env, err := DecodeEnvelope(pool[0])
	if err != nil {
		t.Fatal(err)
	}
	third := newNode(3, GateConfig{SigCache: c})
	before := c.Stats()
	if res := third.gate.Receive("p", env, t0); len(res.Accepted) != 1 {
		t.Fatalf("not accepted: %v", res.Rejection)
	}
	wantStats(t, c, before.Hits+1, before.Misses)
}

func TestProofVerifyCached(t *testing.T) {
	a, b := forkPair(t)
	enc := NewProof(a, b).Encode()
	c := NewSigCache(8)
	for i := range 2 {
		p, err := DecodeProof(enc)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.VerifyCached(c); err != nil {
			t.Fatal(err)
		}
		wantStats(t, c, uint64(2*i), 2)
	}
	bad := append([]byte(nil), enc...)
	bad[len(bad)-1] ^= 1 // the second envelope's signature
	p, err := DecodeProof(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.VerifyCached(c); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered proof: %v", err)
	}
}
