package ephemeral

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convergenode/convergenode/crdt"
)

func TestSetGetAllAndMerge(t *testing.T) {
	a, b := newTestStore(t, 1, nil), newTestStore(t, 2, nil)
	var seen []string
	cancel := b.Watch(func(e Event) { seen = append(seen, e.Kind.String()+" "+e.Key) })
	mustSet(t, a, "cursor", "pos", crdt.Int(1), t0)
	mustSet(t, a, "cursor", "sel", crdt.String("x"), t0)
	if e, ok := a.Get("cursor", a.Self(), "pos"); !ok || e.Value != crdt.Int(1) {
		t.Fatalf("local get: %v %v", e, ok)
	}
	evs, err := b.Merge(flushOne(t, a, t0), t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Kind != EventSet || evs[0].Key != "pos" || evs[1].Key != "sel" {
		t.Fatalf("events %v", evs)
	}
	if dump(a) != dump(b) {
		t.Fatalf("states differ:\n%s\n%s", dump(a), dump(b))
	}
	if err := a.Delete("cursor", "sel", t0.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	evs, err = b.Merge(flushOne(t, a, t0.Add(time.Millisecond)), t0.Add(time.Millisecond))
	if err != nil || len(evs) != 1 || evs[0].Kind != EventDelete || evs[0].Value != crdt.String("x") {
		t.Fatalf("delete: %v %v", evs, err)
	}
	if got := b.All("cursor"); len(got) != 1 || got[0].Key != "pos" {
		t.Fatalf("All after delete: %v", got)
	}
	if want := []string{"set pos", "set sel", "delete sel"}; !slices.Equal(seen, want) {
		t.Fatalf("watcher saw %v, want %v", seen, want)
	}
	cancel()
	mustSet(t, a, "cursor", "pos", crdt.Int(2), t0.Add(2*time.Millisecond))
	if _, err := b.Merge(flushOne(t, a, t0.Add(2*time.Millisecond)), t0.Add(2*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 {
		t.Fatalf("cancelled watcher still called: %v", seen)
	}
	if a.Flush(t0) != nil {
		t.Fatalf("Flush with nothing pending returned batches")
	}
}

// A peer cannot overwrite another's key: in an owned namespace its write
// lands in its own slot, and claiming the other's authorship fails the
// signature check.
func TestOwnership(t *testing.T) {
	alice, mallory, bob := newTestStore(t, 1, nil), newTestStore(t, 2, nil), newTestStore(t, 3, nil)
	mustSet(t, alice, "cursor", "pos", crdt.Int(1), t0)
	if _, err := bob.Merge(flushOne(t, alice, t0), t0); err != nil {
		t.Fatal(err)
	}
	// Mallory writes the same key later: it is Mallory's own entry.
	mustSet(t, mallory, "cursor", "pos", crdt.Int(666), t0.Add(time.Second))
	if _, err := bob.Merge(flushOne(t, mallory, t0.Add(time.Second)), t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if e, ok := bob.Get("cursor", alice.Self(), "pos"); !ok || e.Value != crdt.Int(1) || e.Author != alice.Self() {
		t.Fatalf("alice's entry changed: %v %v", e, ok)
	}
	if n := len(bob.All("cursor")); n != 2 {
		t.Fatalf("want 2 cursor entries, got %d", n)
	}
	// Mallory deletes "pos": only her own entry goes.
	if err := mallory.Delete("cursor", "pos", t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Merge(flushOne(t, mallory, t0.Add(2*time.Second)), t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, ok := bob.Get("cursor", alice.Self(), "pos"); !ok {
		t.Fatalf("mallory deleted alice's entry")
	}
	// Forgery: Mallory signs a batch claiming to be Alice.
	forged := &Batch{Doc: testDoc, Time: Timestamp{Wall: t0.UnixMilli() + 3000}, Updates: []Update{
		{Namespace: "cursor", Key: "pos", Time: Timestamp{Wall: t0.UnixMilli() + 3000}, Value: crdt.Int(666)},
	}}
	if err := forged.Sign(testKey(2)); err != nil {
		t.Fatal(err)
	}
	forged.Author = alice.Self()
	if _, err := bob.Merge(forged, t0.Add(3*time.Second)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged batch: got %v, want ErrBadSignature", err)
	}
	// Tampering with a genuine batch of Alice's.
	mustSet(t, alice, "cursor", "pos", crdt.Int(2), t0.Add(3*time.Second))
	genuine := flushOne(t, alice, t0.Add(3*time.Second))
	tampered := *genuine
	tampered.Updates = slices.Clone(genuine.Updates)
	tampered.Updates[0].Value = crdt.Int(666)
	if _, err := bob.Merge(&tampered, t0.Add(3*time.Second)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered batch: got %v, want ErrBadSignature", err)
	}
	// The refused batches left no trace: the genuine one is still accepted.
	if _, err := bob.Merge(genuine, t0.Add(3*time.Second)); err != nil {
		t.Fatalf("genuine batch after forgeries: %v", err)
	}
	if e, _ := bob.Get("cursor", alice.Self(), "pos"); e.Value != crdt.Int(2) {
		t.Fatalf("alice's entry = %v, want 2", e.Value)
	}
	// Another document's batch is refused.
	other := newTestStore(t, 1, func(c *Config) { c.Doc = "doc-2" })
	mustSet(t, other, "cursor", "pos", crdt.Int(9), t0.Add(4*time.Second))
	if _, err := bob.Merge(flushOne(t, other, t0.Add(4*time.Second)), t0.Add(4*time.Second)); !errors.Is(err, ErrWrongDoc) {
		t.Fatalf("wrong doc: got %v", err)
	}
}

func TestSharedNamespaceLWW(t *testing.T) {
	a, b, c := newTestStore(t, 1, nil), newTestStore(t, 2, nil), newTestStore(t, 3, nil)
	mustSet(t, a, "board", "title", crdt.String("from a"), t0)
	mustSet(t, b, "board", "title", crdt.String("from b"), t0.Add(time.Millisecond))
	ba, bb := flushOne(t, a, t0), flushOne(t, b, t0.Add(time.Millisecond))
	for _, x := range []*Batch{bb, ba} {
		if _, err := c.Merge(x, t0.Add(time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Merge(bb, t0.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{a, c} {
		e, ok := s.Get("board", crdt.Author{}, "title")
		if !ok || e.Value != crdt.String("from b") || e.Author != b.Self() {
			t.Fatalf("shared key: %v %v", e, ok)
		}
		if n := len(s.All("board")); n != 1 {
			t.Fatalf("shared namespace holds %d entries for one key", n)
		}
	}
	// Any author may delete a shared key; a's clock has seen b's write, so
	// a's delete wins everywhere.
	if err := a.Delete("board", "title", t0); err != nil {
		t.Fatal(err)
	}
	evs, err := c.Merge(flushOne(t, a, t0), t0.Add(time.Millisecond))
	if err != nil || len(evs) != 1 || evs[0].Kind != EventDelete {
		t.Fatalf("shared delete: %v %v", evs, err)
	}
}

func TestReplayRefused(t *testing.T) {
	a, b := newTestStore(t, 1, nil), newTestStore(t, 2, nil)
	mustSet(t, a, "cursor", "pos", crdt.Int(1), t0)
	old := flushOne(t, a, t0)
	if _, err := b.Merge(old, t0); err != nil {
		t.Fatal(err)
	}
	// The same batch again.
	if _, err := b.Merge(old, t0.Add(time.Second)); !errors.Is(err, ErrReplay) {
		t.Fatalf("duplicate: got %v, want ErrReplay", err)
	}
	// Re-decoded from the wire, it is still the same batch.
	enc, _ := old.Encode()
	dec, err := DecodeBatch(enc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Merge(dec, t0.Add(time.Second)); !errors.Is(err, ErrReplay) {
		t.Fatalf("re-decoded duplicate: got %v, want ErrReplay", err)
	}
	// A newer value, then the old batch replayed: refused, value stays.
	mustSet(t, a, "cursor", "pos", crdt.Int(2), t0.Add(time.Second))
	if _, err := b.Merge(flushOne(t, a, t0.Add(time.Second)), t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Merge(old, t0.Add(2*time.Second)); !errors.Is(err, ErrReplay) {
		t.Fatalf("old after new: got %v", err)
	}
	// Once past the TTL, the replay state is forgotten but the batch is stale.
	b.Tick(t0.Add(40 * time.Second))
	if _, err := b.Merge(old, t0.Add(40*time.Second)); !errors.Is(err, ErrStale) {
		t.Fatalf("replay after TTL: got %v, want ErrStale", err)
	}
	if b.Len() != 0 {
		t.Fatalf("stale replay resurrected entries: %s", dump(b))
	}
}

func TestReplayAfterPeerLeft(t *testing.T) {
	a, b := newTestStore(t, 1, nil), newTestStore(t, 2, nil)
	mustSet(t, a, "cursor", "pos", crdt.Int(1), t0)
	b1 := flushOne(t, a, t0)
	mustSet(t, a, "cursor", "name", crdt.String("ann"), t0.Add(time.Millisecond))
	b2 := flushOne(t, a, t0.Add(time.Millisecond))
	if _, err := b.Merge(b2, t0); err != nil {
		t.Fatal(err)
	}
	evs := b.RemoveAuthor(a.Self())
	if len(evs) != 1 || evs[0].Kind != EventRemove || evs[0].Key != "name" {
		t.Fatalf("remove events: %v", evs)
	}
	// An older batch that never arrived before the peer left must not
	// bring it back, nor may a replay of the last one.
	for _, x := range []*Batch{b1, b2} {
		if _, err := b.Merge(x, t0.Add(time.Second)); !errors.Is(err, ErrReplay) {
			t.Fatalf("batch %v after peer left: got %v, want ErrReplay", x.Time, err)
		}
	}
	if b.Len() != 0 {
		t.Fatalf("entries after peer left: %s", dump(b))
	}
	// The peer rejoins: its new batches are accepted.
	mustSet(t, a, "cursor", "pos", crdt.Int(3), t0.Add(2*time.Second))
	if _, err := b.Merge(flushOne(t, a, t0.Add(2*time.Second)), t0.Add(2*time.Second)); err != nil {
		t.Fatalf("rejoin: %v", err)
	}
}

func TestFutureTimestampRefused(t *testing.T) {
	b := newTestStore(t, 2, nil)
	// A peer whose clock runs 10 s ahead (or who lies about it).
	fast := newTestStore(t, 1, nil)
	mustSet(t, fast, "cursor", "pos", crdt.Int(1), t0.Add(10*time.Second))
	if _, err := b.Merge(flushOne(t, fast, t0.Add(10*time.Second)), t0); !errors.Is(err, ErrFuture) {
		t.Fatalf("10 s ahead: got %v, want ErrFuture", err)
	}
	// Within the 5 s skew bound it is accepted.
	near := newTestStore(t, 3, nil)
	mustSet(t, near, "cursor", "pos", crdt.Int(1), t0.Add(4*time.Second))
	if _, err := b.Merge(flushOne(t, near, t0.Add(4*time.Second)), t0); err != nil {
		t.Fatalf("4 s ahead: %v", err)
	}
	// A batch whose header is honest but one update claims a far-future
	// time is malformed (update time after batch time).
	x := &Batch{Doc: testDoc, Time: Timestamp{Wall: t0.UnixMilli()}, Updates: []Update{
		{Namespace: "cursor", Key: "k", Time: Timestamp{Wall: t0.UnixMilli() + 3_600_000}, Value: crdt.Int(1)},
	}}
	if err := x.Sign(testKey(4)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("signing a batch with a future update: got %v", err)
	}
	if _, err := b.Merge(x, t0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("future update: got %v, want ErrMalformed", err)
	}
	// The local clock observed the accepted +4 s batch: local writes order
	// after it.
	mustSet(t, b, "board", "k", crdt.Int(1), t0)
	if e, _ := b.Get("board", crdt.Author{}, "k"); e.Time.Wall < t0.UnixMilli()+4000 {
		t.Fatalf("local write at %v does not order after observed remote time", e.Time)
	}
}

func TestExpiryAndHeartbeat(t *testing.T) {
	a, b := newTestStore(t, 1, nil), newTestStore(t, 2, nil)
	var expired []Event
	b.Watch(func(e Event) {
		if e.Kind == EventExpire {
			expired = append(expired, e)
		}
	})
	mustSet(t, a, "cursor", "pos", crdt.Int(1), t0)
	mustSet(t, a, "cursor", "sel", crdt.Int(2), t0)
	bs, _ := a.Tick(t0)
	if len(bs) != 1 {
		t.Fatalf("first tick: %d batches", len(bs))
	}
	if at, ok := a.NextTick(); !ok || !at.Equal(t0.Add(15*time.Second)) {
		t.Fatalf("a's next tick %v %v, want the heartbeat at +15s", at, ok)
	}
	if _, ok := b.NextTick(); ok {
		t.Fatalf("empty store has a next tick")
	}
	if _, err := b.Merge(bs[0], t0); err != nil {
		t.Fatal(err)
	}
	// a keeps both alive by heartbeat: drive a and b every second for 100 s.
	for sec := 1; sec <= 100; sec++ {
		now := t0.Add(time.Duration(sec) * time.Second)
		bs, _ := a.Tick(now)
		for _, x := range bs {
			evs, err := b.Merge(x, now)
			if err != nil {
				t.Fatalf("at %ds: %v", sec, err)
			}
			if len(evs) != 0 {
				t.Fatalf("heartbeat produced events: %v", evs)
			}
		}
		if _, evs := b.Tick(now); len(evs) != 0 {
			t.Fatalf("at %ds: entries expired despite heartbeats: %v", sec, evs)
		}
		if sec%15 == 0 && len(bs) != 1 {
			t.Fatalf("at %ds: want a heartbeat batch, got %d", sec, len(bs))
		}
	}
	if b.Len() != 2 {
		t.Fatalf("want 2 live entries, got %s", dump(b))
	}
	if at, ok := b.NextTick(); !ok || !at.Equal(t0.Add(120*time.Second)) {
		t.Fatalf("b's next tick %v %v, want expiry at +120s", at, ok)
	}
	// a goes silent: everything expires within TTL of the last heartbeat.
	last := t0.Add(90 * time.Second)
	if _, evs := b.Tick(last.Add(29 * time.Second)); len(evs) != 0 {
		t.Fatalf("expired early: %v", evs)
	}
	_, evs := b.Tick(last.Add(30 * time.Second))
	if len(evs) != 2 || evs[0].Key != "pos" || evs[1].Key != "sel" || evs[0].Kind != EventExpire {
		t.Fatalf("expiry events: %v", evs)
	}
	if len(expired) != 2 || b.Len() != 0 || len(b.peers) != 0 {
		t.Fatalf("after expiry: watcher %v, state %q, %d peers", expired, dump(b), len(b.peers))
	}
	// a's own entries stay alive locally as long as it ticks.
	if a.Len() != 2 {
		t.Fatalf("local entries lost: %s", dump(a))
	}
}

func TestPeerLeft(t *testing.T) {
	a, c, b := newTestStore(t, 1, nil), newTestStore(t, 3, nil), newTestStore(t, 2, nil)
	mustSet(t, a, "cursor", "pos", crdt.Int(1), t0)
	mustSet(t, a, "board", "title", crdt.String("a"), t0)
	mustSet(t, c, "cursor", "pos", crdt.Int(3), t0)
	for _, s := range []*Store{a, c} {
		if _, err := b.Merge(flushOne(t, s, t0), t0); err != nil {
			t.Fatal(err)
		}
	}
	var watched []Event
	b.Watch(func(e Event) { watched = append(watched, e) })
	evs := b.RemoveAuthor(a.Self())
	if len(evs) != 2 || evs[0].Namespace != "board" || evs[1].Namespace != "cursor" || !slices.Equal(evs, watched) {
		t.Fatalf("remove events %v, watched %v", evs, watched)
	}
	if got := b.All("cursor"); len(got) != 1 || got[0].Author != c.Self() {
		t.Fatalf("other peer's entries affected: %v", got)
	}
	if b.RemoveAuthor(b.Self()) != nil {
		t.Fatalf("removing self did something")
	}
}

func TestRateLimit(t *testing.T) {
	b := newTestStore(t, 2, func(c *Config) { c.Rate = 10; c.Burst = 20 })
	a := newTestStore(t, 1, nil)
	now := t0
	var accepted, limited int
	for i := 0; i < 30; i++ {
		mustSet(t, a, "cursor", "pos", crdt.Int(int64(i)), now)
		_, err := b.Merge(flushOne(t, a, now), now)
		switch {
		case err == nil:
			accepted++
		case errors.Is(err, ErrRateLimited):
			limited++
		default:
			t.Fatal(err)
		}
	}
	if accepted != 20 || limited != 10 {
		t.Fatalf("burst: accepted %d, limited %d; want 20, 10", accepted, limited)
	}
	// Another author is not affected.
	c := newTestStore(t, 3, nil)
	mustSet(t, c, "cursor", "pos", crdt.Int(1), now)
	if _, err := b.Merge(flushOne(t, c, now), now); err != nil {
		t.Fatalf("other author limited: %v", err)
	}
	// 10 updates/s: after 500 ms, 5 more fit.
	now = now.Add(500 * time.Millisecond)
	accepted = 0
	for i := 0; i < 8; i++ {
		mustSet(t, a, "cursor", "pos", crdt.Int(int64(100+i)), now)
		if _, err := b.Merge(flushOne(t, a, now), now); err == nil {
			accepted++
		}
	}
	if accepted != 5 {
		t.Fatalf("after 500 ms accepted %d, want 5", accepted)
	}
	// A batch bigger than the burst never fits.
	for i := 0; i < 21; i++ {
		mustSet(t, a, "cursor", "k"+string(rune('a'+i)), crdt.Int(1), now)
	}
	if _, err := b.Merge(flushOne(t, a, now), now.Add(time.Hour/1000)); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("oversized batch: %v", err)
	}
}

func TestEntryLimit(t *testing.T) {
	b := newTestStore(t, 2, func(c *Config) { c.MaxEntriesPerAuthor = 3 })
	a := newTestStore(t, 1, nil)
	for _, k := range []string{"a", "b", "c"} {
		mustSet(t, a, "cursor", k, crdt.Int(1), t0)
	}
	if _, err := b.Merge(flushOne(t, a, t0), t0); err != nil {
		t.Fatal(err)
	}
	mustSet(t, a, "cursor", "a", crdt.Int(2), t0) // overwrite: no growth
	if _, err := b.Merge(flushOne(t, a, t0), t0); err != nil {
		t.Fatal(err)
	}
	mustSet(t, a, "cursor", "d", crdt.Int(1), t0)
	if _, err := b.Merge(flushOne(t, a, t0), t0); !errors.Is(err, ErrTooManyEntries) {
		t.Fatalf("got %v, want ErrTooManyEntries", err)
	}
}

func TestSnapshotForNewcomer(t *testing.T) {
	a, b := newTestStore(t, 1, nil), newTestStore(t, 2, nil)
	mustSet(t, a, "cursor", "pos", crdt.Int(1), t0)
	mustSet(t, a, "cursor", "sel", crdt.Int(1), t0)
	flushOne(t, a, t0) // still carries "sel"
	mustSet(t, a, "cursor", "pos", crdt.Int(2), t0.Add(time.Second))
	flushOne(t, a, t0.Add(time.Second))
	mustSet(t, b, "board", "title", crdt.String("b"), t0.Add(time.Second))
	xb := flushOne(t, b, t0.Add(time.Second))
	if _, err := a.Merge(xb, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	snap := a.Snapshot()
	if len(snap) != 3 {
		t.Fatalf("snapshot has %d batches, want 3", len(snap))
	}
	n := newTestStore(t, 9, nil)
	for _, x := range snap {
		enc, err := x.Encode()
		if err != nil {
			t.Fatal(err)
		}
		d, err := DecodeBatch(enc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Merge(d, t0.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if dump(n) != dump(a) {
		t.Fatalf("newcomer differs:\n%s\nvs\n%s", dump(n), dump(a))
	}
}

func TestBadLocalInput(t *testing.T) {
	s := newTestStore(t, 1, nil)
	cases := []struct {
		ns, key string
		v       crdt.Value
		want    error
	}{
		{"", "k", crdt.Int(1), ErrMalformed},
		{"ns", "", crdt.Int(1), ErrMalformed},
		{"ns", "\xff", crdt.Int(1), ErrMalformed},
		{"ns", strings.Repeat("k", MaxKeyLen+1), crdt.Int(1), ErrTooLarge},
		{"ns", "k", crdt.String("\xff"), ErrMalformed},
		{"ns", "k", crdt.Bytes(make([]byte, MaxValueLen+1)), ErrTooLarge},
	}
	for _, c := range cases {
		err := s.Set(c.ns, c.key, c.v, t0)
		if !errors.Is(err, c.want) || !strings.HasPrefix(err.Error(), "ephemeral: set") {
			t.Errorf("Set(%q, %.10q): got %v, want %v", c.ns, c.key, err, c.want)
		}
	}
	if s.Len() != 0 || s.Flush(t0) != nil {
		t.Fatalf("bad input changed the store")
	}
	for _, cfg := range []Config{
		{Doc: testDoc},
		{Doc: testDoc, Key: testKey(1), TTL: time.Second, Heartbeat: 2 * time.Second},
		{Doc: testDoc, Key: testKey(1), Shared: []string{""}},
		{Doc: strings.Repeat("d", MaxDocIDLen+1), Key: testKey(1)},
	} {
		if _, err := NewStore(cfg); err == nil || !strings.HasPrefix(err.Error(), "ephemeral: config") {
			t.Errorf("NewStore accepted a bad config or gave an unclear error: %v", err)
		}
	}
}

func TestEchoOfOwnBatchIgnored(t *testing.T) {
	a := newTestStore(t, 1, nil)
	mustSet(t, a, "cursor", "pos", crdt.Int(1), t0)
	x := flushOne(t, a, t0)
	evs, err := a.Merge(x, t0)
	if err != nil || evs != nil {
		t.Fatalf("echo: %v %v", evs, err)
	}
}

// A heartbeat renews an entry but is not a new write: in a shared namespace
// it must not beat a newer write by someone else.
func TestHeartbeatDoesNotWinSharedKey(t *testing.T) {
	a, b, c := newTestStore(t, 1, nil), newTestStore(t, 2, nil), newTestStore(t, 3, nil)
	mustSet(t, a, "board", "title", crdt.String("old"), t0)
	xa := flushOne(t, a, t0)
	for _, s := range []*Store{b, c} {
		if _, err := s.Merge(xa, t0); err != nil {
			t.Fatal(err)
		}
	}
	t5 := t0.Add(5 * time.Second)
	mustSet(t, b, "board", "title", crdt.String("new"), t5)
	if _, err := c.Merge(flushOne(t, b, t5), t5); err != nil {
		t.Fatal(err)
	}
	// a has not heard of b's write and heartbeats its own.
	t15 := t0.Add(15 * time.Second)
	hb, _ := a.Tick(t15)
	if len(hb) != 1 || hb[0].Updates[0].Time.Wall != t0.UnixMilli() {
		t.Fatalf("heartbeat %+v", hb)
	}
	evs, err := c.Merge(hb[0], t15)
	if err != nil || len(evs) != 0 {
		t.Fatalf("heartbeat after newer write: %v %v", evs, err)
	}
	if e, _ := c.Get("board", crdt.Author{}, "title"); e.Value != crdt.String("new") {
		t.Fatalf("heartbeat overwrote a newer write: %v", e)
	}
	// Where a's write is still current, the heartbeat renews it silently.
	d := newTestStore(t, 4, nil)
	if _, err := d.Merge(xa, t0); err != nil {
		t.Fatal(err)
	}
	if evs, err := d.Merge(hb[0], t15); err != nil || len(evs) != 0 {
		t.Fatalf("renewal: %v %v", evs, err)
	}
	e, _ := d.Get("board", crdt.Author{}, "title")
	if want := t15.Add(30 * time.Second); !e.Expires.Equal(want) || e.Time.Wall != t0.UnixMilli() {
		t.Fatalf("renewed entry expires %v (time %v), want %v", e.Expires, e.Time, want)
	}
	if _, evs := d.Tick(t0.Add(40 * time.Second)); len(evs) != 0 {
		t.Fatalf("renewed entry expired early: %v", evs)
	}
	// A newcomer's snapshot carries the renewing batch, so it agrees on expiry.
	n := newTestStore(t, 5, nil)
	for _, x := range d.Snapshot() {
		if _, err := n.Merge(x, t15); err != nil {
			t.Fatal(err)
		}
	}
	if e2, _ := n.Get("board", crdt.Author{}, "title"); !e2.Expires.Equal(e.Expires) {
		t.Fatalf("newcomer expiry %v, want %v", e2.Expires, e.Expires)
	}
}

// An author that signs two different batches with the same time must not
// split the replicas: both are accepted and LWW picks the same winner.
func TestEquivocatingAuthorConverges(t *testing.T) {
	ts := Timestamp{Wall: t0.UnixMilli()}
	mk := func(v int64) *Batch {
		b := &Batch{Doc: testDoc, Time: ts, Updates: []Update{
			{Namespace: "board", Key: "title", Time: ts, Value: crdt.Int(v)},
			{Namespace: "cursor", Key: "pos", Time: ts, Value: crdt.Int(v)},
		}}
		if err := b.Sign(testKey(6)); err != nil {
			t.Fatal(err)
		}
		return b
	}
	x, y := mk(1), mk(2)
	r1, r2 := newTestStore(t, 1, nil), newTestStore(t, 2, nil)
	for _, p := range []struct {
		s  *Store
		bs []*Batch
	}{{r1, []*Batch{x, y}}, {r2, []*Batch{y, x}}} {
		for _, b := range p.bs {
			if _, err := p.s.Merge(b, t0); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := p.s.Merge(p.bs[0], t0); !errors.Is(err, ErrReplay) {
			t.Fatalf("exact replay: %v", err)
		}
	}
	if dump(r1) != dump(r2) {
		t.Fatalf("equivocation split the replicas:\n%s\n%s", dump(r1), dump(r2))
	}
	if e, _ := r1.Get("board", crdt.Author{}, "title"); e.Value != crdt.Int(2) {
		t.Fatalf("winner %v, want the larger value", e.Value)
	}
}
