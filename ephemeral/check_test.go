package ephemeral

import (
	"errors"
	"testing"
	"time"

	"github.com/convergenode/convergenode/crdt"
)

func TestCheckStateless(t *testing.T) {
	a, b := newTestStore(t, 1, nil), newTestStore(t, 2, nil)
	mustSet(t, a, "cursor", "pos", crdt.Int(1), t0)
	x := flushOne(t, a, t0)
	p, err := x.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := CheckStateless(testDoc, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.MergeVerified(got, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckStateless("doc-2", p); !errors.Is(err, ErrWrongDoc) || !Penalize(err) {
		t.Fatalf("wrong doc: %v", err)
	}
	bad := append([]byte(nil), p...)
	bad[len(bad)-1] ^= 1 // flip a signature bit
	if _, err := CheckStateless(testDoc, bad); !errors.Is(err, ErrBadSignature) || !Penalize(err) {
		t.Fatalf("bad signature: %v", err)
	}
	if _, err := CheckStateless(testDoc, p[:10]); !errors.Is(err, ErrTruncated) || !Penalize(err) {
		t.Fatalf("truncated: %v", err)
	}
	_, err = b.Merge(got, t0.Add(time.Second))
	if !errors.Is(err, ErrReplay) || Penalize(err) {
		t.Fatalf("replay should not penalize the forwarder: %v", err)
	}
}
