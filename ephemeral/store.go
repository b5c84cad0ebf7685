package ephemeral

import (
	"cmp"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/convergenode/convergenode/crdt"
)

// Merge errors. Every error returned by Store.Merge wraps one of these or a
// decoding error (ErrMalformed, ErrTooLarge, ...).
var (
	ErrWrongDoc       = errors.New("ephemeral: batch for another document")
	ErrBadSignature   = errors.New("ephemeral: bad signature")
	ErrFuture         = errors.New("ephemeral: timestamp too far in the future")
	ErrStale          = errors.New("ephemeral: batch older than the TTL")
	ErrReplay         = errors.New("ephemeral: batch already seen or author removed")
	ErrRateLimited    = errors.New("ephemeral: author over its rate limit")
	ErrTooManyEntries = errors.New("ephemeral: author over its entry limit")
)

// slot identifies an entry within a namespace: (author, key) in an owned
// namespace, (zero author, key) in a shared one.
type slot struct {
	author crdt.Author
	key    string
}

type space struct {
	shared bool
	recs   map[slot]*record
}

// ref names a slot in the whole store.
type ref struct {
	ns string
	sl slot
}

// seenKey identifies an accepted batch for replay detection. The signature
// is part of it, so two different batches an equivocating author signed with
// the same time are both accepted (and resolved by LWW, identically on every
// replica) rather than whichever came first.
type seenKey struct {
	time Timestamp
	sig  [64]byte
}

// peer is what the store remembers about one remote author.
type peer struct {
	seen    map[seenKey]struct{} // batches accepted and not yet stale
	removed Timestamp            // batches at or before this are refused (peer left)
	maxSeen Timestamp
	bucket  bucket
	entries int // records in the store written by this author
}

type watcher struct {
	id int
	fn func(Event)
}

// Store is one peer's ephemeral state for one document: signed, expiring,
// last-writer-wins entries by namespace. It is not safe for concurrent use;
// the driver serialises calls (as it does for the replica).
type Store struct {
	cfg       Config
	self      crdt.Author
	ttl, hb   int64 // milliseconds
	skew      int64
	clock     Clock
	shared    map[string]bool
	keep      map[string]bool // Config.Namespaces; nil: all
	spaces    map[string]*space
	peers     map[crdt.Author]*peer
	pending   map[ref]struct{} // local writes not yet in a batch
	watchers  []watcher
	nextWatch int
	nextScan  int64 // no entry expires and no heartbeat is due before this (ms)
	nextPrune int64 // replay state is pruned at most once a second (ms)
	highNow   time.Time
}

// NewStore returns an empty store. It fails if cfg is invalid.
func NewStore(cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Store{
		cfg:      cfg,
		ttl:      cfg.TTL.Milliseconds(),
		hb:       cfg.Heartbeat.Milliseconds(),
		skew:     cfg.MaxSkew.Milliseconds(),
		shared:   make(map[string]bool, len(cfg.Shared)),
		spaces:   make(map[string]*space),
		peers:    make(map[crdt.Author]*peer),
		pending:  make(map[ref]struct{}),
		nextScan: math.MaxInt64,
	}
	s.cfg.Shared = slices.Clone(cfg.Shared)
	copy(s.self[:], cfg.Key.Public().(ed25519.PublicKey))
	for _, ns := range cfg.Shared {
		s.shared[ns] = true
	}
	if cfg.Namespaces != nil {
		s.cfg.Namespaces = slices.Clone(cfg.Namespaces)
		s.keep = make(map[string]bool, len(cfg.Namespaces))
		for _, ns := range cfg.Namespaces {
			s.keep[ns] = true
		}
	}
	return s, nil
}

// Self returns the local author (the public key of Config.Key).
func (s *Store) Self() crdt.Author { return s.self }

// Config returns the store's configuration with defaults filled in.
func (s *Store) Config() Config { return s.cfg }

// Shared reports whether ns is a shared namespace.
func (s *Store) Shared(ns string) bool { return s.shared[ns] }

// observe records now as the latest time seen and returns the latest time
// seen so far: time going backwards cannot make stale batches fresh again.
func (s *Store) observe(now time.Time) int64 {
	if now.After(s.highNow) {
		s.highNow = now
	}
	return s.highNow.UnixMilli()
}

func (s *Store) slotOf(ns string, author crdt.Author, key string) slot {
	if s.shared[ns] {
		return slot{key: key}
	}
	return slot{author: author, key: key}
}

func (s *Store) space(ns string) *space {
	sp := s.spaces[ns]
	if sp == nil {
		sp = &space{shared: s.shared[ns], recs: make(map[slot]*record)}
		s.spaces[ns] = sp
	}
	return sp
}

// Watch registers fn to receive every event as it happens: local sets and
// deletes, merges, expiry and removals. fn is called synchronously, on the
// caller's goroutine, from inside Set, Delete, Merge, Tick and RemoveAuthor,
// after the store has changed and in the order the events are returned; it
// may read the store but must not modify it. Watchers are called in the
// order they were registered. cancel removes fn.
func (s *Store) Watch(fn func(Event)) (cancel func()) {
	id := s.nextWatch
	s.nextWatch++
	s.watchers = append(s.watchers, watcher{id: id, fn: fn})
	return func() {
		s.watchers = slices.DeleteFunc(s.watchers, func(w watcher) bool { return w.id == id })
	}
}

func (s *Store) emit(evs []Event) {
	for _, e := range evs {
		s.emitOne(e)
	}
}

func (s *Store) emitOne(e Event) {
	for _, w := range s.watchers {
		w.fn(e)
	}
}

// Set writes key in namespace ns as the local author at physical time now.
// The write is visible at once and goes out in the next Flush or Tick.
func (s *Store) Set(ns, key string, v crdt.Value, now time.Time) error {
	if err := checkLocal(ns, key, v); err != nil {
		return fmt.Errorf("ephemeral: set %s/%s: %w", ns, key, err)
	}
	s.observe(now)
	ts := s.clock.Now(now)
	r := &record{author: s.self, time: ts, renewed: ts, value: v}
	ev, ok := s.put(ns, s.slotOf(ns, s.self, key), r)
	s.pending[ref{ns, s.slotOf(ns, s.self, key)}] = struct{}{}
	if ok {
		s.emitOne(ev)
	}
	return nil
}

// Delete removes key from namespace ns: the local author's own entry, or in
// a shared namespace the key's entry whoever wrote it. The tombstone goes out
// in the next Flush or Tick. Deleting a missing key does nothing.
func (s *Store) Delete(ns, key string, now time.Time) error {
	if err := checkLocal(ns, key, crdt.Null()); err != nil {
		return fmt.Errorf("ephemeral: delete %s/%s: %w", ns, key, err)
	}
	sl := s.slotOf(ns, s.self, key)
	if sp := s.spaces[ns]; sp == nil || sp.recs[sl] == nil || sp.recs[sl].deleted {
		return nil
	}
	s.observe(now)
	ts := s.clock.Now(now)
	r := &record{author: s.self, time: ts, renewed: ts, deleted: true}
	ev, ok := s.put(ns, sl, r)
	s.pending[ref{ns, sl}] = struct{}{}
	if ok {
		s.emitOne(ev)
	}
	return nil
}

func checkLocal(ns, key string, v crdt.Value) error {
	if err := checkName("namespace", ns, MaxNamespaceLen); err != nil {
		return err
	}
	if err := checkName("key", key, MaxKeyLen); err != nil {
		return err
	}
	return checkValue(v)
}

// put stores r in slot sl of ns if it beats the current record, and returns
// the visible event and whether there is one (false if nothing visible
// changed).
func (s *Store) put(ns string, sl slot, r *record) (Event, bool) {
	sp := s.space(ns)
	cur := sp.recs[sl]
	if cur != nil && cur.sameWrite(r) {
		// A heartbeat: the same write, carried by a newer batch.
		if r.renewed.Compare(cur.renewed) > 0 {
			cur.renewed, cur.batch = r.renewed, r.batch
			s.scheduleScan(cur)
		}
		return Event{}, false
	}
	if cur != nil && lwwCompare(r.time, r.author, r.deleted, r.value,
		cur.time, cur.author, cur.deleted, cur.value) <= 0 {
		return Event{}, false
	}
	sp.recs[sl] = r
	if cur != nil {
		s.countEntry(cur.author, -1)
	}
	s.countEntry(r.author, 1)
	s.scheduleScan(r)
	switch {
	case !r.deleted && (cur == nil || cur.deleted || cur.author != r.author || !cur.value.Equal(r.value)):
		return Event{Kind: EventSet, Namespace: ns, Key: sl.key, Author: r.author, Value: r.value, Time: r.time}, true
	case r.deleted && cur != nil && !cur.deleted:
		return Event{Kind: EventDelete, Namespace: ns, Key: sl.key, Author: r.author, Value: cur.value, Time: r.time}, true
	}
	return Event{}, false
}

func (s *Store) countEntry(a crdt.Author, d int) {
	if p := s.peers[a]; p != nil {
		p.entries += d
	}
}

func (s *Store) scheduleScan(r *record) {
	at := r.renewed.Wall + s.ttl
	if r.author == s.self && !r.deleted {
		at = r.renewed.Wall + s.hb
	}
	s.nextScan = min(s.nextScan, at)
}

// Get returns the live entry for key in namespace ns written by author. In
// a shared namespace author is ignored (pass the zero Author): there is one
// entry per key.
func (s *Store) Get(ns string, author crdt.Author, key string) (Entry, bool) {
	sp := s.spaces[ns]
	if sp == nil {
		return Entry{}, false
	}
	r := sp.recs[s.slotOf(ns, author, key)]
	if r == nil || r.deleted {
		return Entry{}, false
	}
	return s.entry(ns, key, r), true
}

func (s *Store) entry(ns, key string, r *record) Entry {
	return Entry{Namespace: ns, Key: key, Author: r.author, Value: r.value, Time: r.time,
		Renewed: r.renewed, Expires: time.UnixMilli(r.renewed.Wall + s.ttl).UTC()}
}

// All returns the live entries of namespace ns sorted by key, then author.
// The caller owns the slice.
func (s *Store) All(ns string) []Entry {
	sp := s.spaces[ns]
	if sp == nil {
		return nil
	}
	out := make([]Entry, 0, len(sp.recs))
	for sl, r := range sp.recs {
		if !r.deleted {
			out = append(out, s.entry(ns, sl.key, r))
		}
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), a.Author.Compare(b.Author))
	})
	return out
}

// Namespaces returns the namespaces that hold live entries, sorted.
func (s *Store) Namespaces() []string {
	var out []string
	for ns, sp := range s.spaces {
		for _, r := range sp.recs {
			if !r.deleted {
				out = append(out, ns)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// Len returns the number of live entries (tombstones excluded).
func (s *Store) Len() int {
	n := 0
	for _, sp := range s.spaces {
		for _, r := range sp.recs {
			if !r.deleted {
				n++
			}
		}
	}
	return n
}

// Merge checks a remote batch and applies the updates that win, returning
// the visible changes in batch order. Checks, cheapest first: document,
// timestamp within [now-TTL, now+MaxSkew], not a replay, validity and
// signature, the author's rate limit and entry limit. Only then is the batch
// recorded as seen. A refused batch changes nothing and the error wraps one
// of ErrWrongDoc, ErrFuture, ErrStale, ErrReplay, ErrBadSignature (or a
// validation error), ErrRateLimited, ErrTooManyEntries.
//
// Batches signed by the local author (echoes of our own broadcasts) are
// ignored: Merge returns nil, nil. Events are also passed to the watchers.
// The store keeps an accepted batch (Snapshot returns it), so the caller
// must not modify it afterwards.
func (s *Store) Merge(b *Batch, now time.Time) ([]Event, error) {
	return s.merge(b, now, true)
}

// MergeVerified is Merge without the signature check, for batches whose
// signature the caller has already verified (for example with Batch.Verify
// in a pubsub validator, or from a trusted local source). Every other check
// still applies.
func (s *Store) MergeVerified(b *Batch, now time.Time) ([]Event, error) {
	return s.merge(b, now, false)
}

func (s *Store) merge(b *Batch, now time.Time, verify bool) ([]Event, error) {
	nowMs := s.observe(now)
	if b.Doc != s.cfg.Doc {
		return nil, fmt.Errorf("%w: %q, want %q", ErrWrongDoc, b.Doc, s.cfg.Doc)
	}
	if b.Author == s.self {
		return nil, nil
	}
	if b.Time.Wall > nowMs+s.skew {
		return nil, fmt.Errorf("%w: batch from %s at %v, local time %d, max skew %v",
			ErrFuture, b.Author.Short(), b.Time, nowMs, s.cfg.MaxSkew)
	}
	if b.Time.Wall+s.ttl <= nowMs {
		return nil, fmt.Errorf("%w: batch from %s at %v, local time %d, TTL %v",
			ErrStale, b.Author.Short(), b.Time, nowMs, s.cfg.TTL)
	}
	p := s.peers[b.Author]
	if p != nil {
		if b.Time.Compare(p.removed) <= 0 {
			return nil, fmt.Errorf("%w: batch from %s at %v, author removed after %v",
				ErrReplay, b.Author.Short(), b.Time, p.removed)
		}
		if _, ok := p.seen[seenKey{b.Time, b.Sig}]; ok {
			return nil, fmt.Errorf("%w: batch from %s at %v", ErrReplay, b.Author.Short(), b.Time)
		}
	}
	if verify {
		if err := b.Verify(); err != nil {
			return nil, fmt.Errorf("ephemeral: merge batch from %s at %v: %w", b.Author.Short(), b.Time, err)
		}
	} else if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("ephemeral: merge batch from %s at %v: %w", b.Author.Short(), b.Time, err)
	}
	if p == nil {
		p = &peer{seen: make(map[seenKey]struct{}), bucket: newBucket(s.cfg.Burst, now)}
		s.peers[b.Author] = p
	}
	if !p.bucket.take(max(1, len(b.Updates)), s.cfg.Rate, s.cfg.Burst, now) {
		return nil, fmt.Errorf("%w: %s sent %d updates", ErrRateLimited, b.Author.Short(), len(b.Updates))
	}
	// Each update adds at most one record: count exactly only near the limit.
	if p.entries+len(b.Updates) > s.cfg.MaxEntriesPerAuthor {
		if grow := s.growth(b); p.entries+grow > s.cfg.MaxEntriesPerAuthor {
			return nil, fmt.Errorf("%w: %s would hold %d entries, limit %d",
				ErrTooManyEntries, b.Author.Short(), p.entries+grow, s.cfg.MaxEntriesPerAuthor)
		}
	}
	p.seen[seenKey{b.Time, b.Sig}] = struct{}{}
	if b.Time.Compare(p.maxSeen) > 0 {
		p.maxSeen = b.Time
	}
	s.clock.Observe(b.Time)
	var evs []Event
	for i := range b.Updates {
		u := &b.Updates[i]
		if s.keep != nil && !s.keep[u.Namespace] {
			continue // not subscribed
		}
		r := &record{author: b.Author, time: u.Time, renewed: b.Time, deleted: u.Delete, value: u.Value, batch: b}
		if ev, ok := s.put(u.Namespace, s.slotOf(u.Namespace, b.Author, u.Key), r); ok {
			if evs == nil {
				evs = make([]Event, 0, len(b.Updates)-i)
			}
			evs = append(evs, ev)
		}
	}
	s.emit(evs)
	return evs, nil
}

// growth returns how many more records b's author would hold after b.
func (s *Store) growth(b *Batch) int {
	n := 0
	for i := range b.Updates {
		u := &b.Updates[i]
		var cur *record
		if sp := s.spaces[u.Namespace]; sp != nil {
			cur = sp.recs[s.slotOf(u.Namespace, b.Author, u.Key)]
		}
		if cur == nil || (cur.author != b.Author && lwwCompare(u.Time, b.Author, u.Delete, u.Value,
			cur.time, cur.author, cur.deleted, cur.value) > 0) {
			n++
		}
	}
	return n
}

// RemoveAuthor drops every entry written by author (the peer left) and
// refuses its batches up to the newest one seen, so they cannot be
// replayed. Later batches from the author are accepted again (it rejoined).
// It returns EventRemove for each live entry removed, sorted by namespace,
// key; the watchers get them too. Removing the local author does nothing.
func (s *Store) RemoveAuthor(author crdt.Author) []Event {
	if author == s.self {
		return nil
	}
	var evs []Event
	for ns, sp := range s.spaces {
		for sl, r := range sp.recs {
			if r.author != author {
				continue
			}
			delete(sp.recs, sl)
			if !r.deleted {
				evs = append(evs, Event{Kind: EventRemove, Namespace: ns, Key: sl.key, Author: r.author, Value: r.value, Time: r.time})
			}
		}
		if len(sp.recs) == 0 {
			delete(s.spaces, ns)
		}
	}
	if p := s.peers[author]; p != nil {
		p.entries = 0
		p.removed = p.maxSeen
	}
	sortEvents(evs)
	s.emit(evs)
	return evs
}

func sortEvents(evs []Event) {
	slices.SortFunc(evs, func(a, b Event) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Key, b.Key), a.Author.Compare(b.Author))
	})
}

// Flush packs the local writes made since the last Flush or Tick into signed
// batches (usually one; more only past MaxBatchEntries or MaxBatchSize) for
// the driver to broadcast. It returns nil if there is nothing to send.
func (s *Store) Flush(now time.Time) []*Batch {
	return s.flush(now, false)
}

// Tick advances the store to physical time now: it expires entries whose TTL
// ran out (EventExpire), forgets stale replay state, and returns the batches
// to broadcast: the pending local writes plus a heartbeat that re-sends, in a
// new signed batch, every local live entry last sent Config.Heartbeat ago or
// more. A heartbeat keeps each update's original Time, so it renews the
// entry without winning over newer writes in a shared namespace.
// Call it at least every Heartbeat/2 or so; it is cheap when nothing is due.
// The events are also passed to the watchers.
func (s *Store) Tick(now time.Time) ([]*Batch, []Event) {
	nowMs := s.observe(now)
	var evs []Event
	heartbeat := false
	if nowMs >= s.nextScan {
		evs = s.expire(nowMs)
		heartbeat = true
	}
	if nowMs >= s.nextPrune {
		s.prunePeers(now, nowMs)
		s.nextPrune = nowMs + 1000
	}
	bs := s.flush(now, heartbeat)
	s.emit(evs)
	return bs, evs
}

// NextTick returns the earliest time at which Tick may have work (an entry
// to expire or a heartbeat due), and false if there is none scheduled. It is
// a lower bound: Tick at that time may find nothing to do. Pending local
// writes are not included (Flush sends them at any time). Drivers that do not
// tick at a fixed rate (the simulator) can use it to schedule the next Tick.
func (s *Store) NextTick() (time.Time, bool) {
	if s.nextScan == math.MaxInt64 {
		return time.Time{}, false
	}
	return time.UnixMilli(s.nextScan).UTC(), true
}

// Idle returns the time before which Tick has nothing to do but advance
// the store's clock: no local write waits to be sent (Set and Delete since
// the last Flush or Tick), and no expiry, heartbeat or replay-state
// pruning is due. It returns false if Tick may have work at once.
func (s *Store) Idle() (time.Time, bool) {
	if len(s.pending) > 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(min(s.nextScan, s.nextPrune)).UTC(), true
}

// expire removes records past their TTL, recomputes nextScan, and returns
// the expiry events of live entries, sorted.
func (s *Store) expire(nowMs int64) []Event {
	var evs []Event
	s.nextScan = math.MaxInt64
	for ns, sp := range s.spaces {
		for sl, r := range sp.recs {
			if r.renewed.Wall+s.ttl > nowMs {
				s.scheduleScan(r)
				continue
			}
			delete(sp.recs, sl)
			s.countEntry(r.author, -1)
			if r.author == s.self {
				delete(s.pending, ref{ns, sl})
			}
			if !r.deleted {
				evs = append(evs, Event{Kind: EventExpire, Namespace: ns, Key: sl.key, Author: r.author, Value: r.value, Time: r.time})
			}
		}
		if len(sp.recs) == 0 {
			delete(s.spaces, ns)
		}
	}
	sortEvents(evs)
	return evs
}

func (s *Store) prunePeers(now time.Time, nowMs int64) {
	for a, p := range s.peers {
		for k := range p.seen {
			if k.time.Wall+s.ttl <= nowMs {
				delete(p.seen, k)
			}
		}
		if p.entries == 0 && len(p.seen) == 0 && p.removed.Wall+s.ttl <= nowMs &&
			p.bucket.full(s.cfg.Rate, s.cfg.Burst, now) {
			delete(s.peers, a)
		}
	}
}

// flush signs the pending local writes and, if heartbeat, the local live
// entries due for renewal.
func (s *Store) flush(now time.Time, heartbeat bool) []*Batch {
	nowMs := s.observe(now)
	type item struct {
		ref
		r *record
	}
	var items []item
	for rf := range s.pending {
		sp := s.spaces[rf.ns]
		if sp == nil {
			continue
		}
		if r := sp.recs[rf.sl]; r != nil && r.author == s.self && r.batch == nil {
			items = append(items, item{ref: rf, r: r})
		}
	}
	clear(s.pending)
	if heartbeat {
		for ns, sp := range s.spaces {
			for sl, r := range sp.recs {
				if r.author == s.self && !r.deleted && r.batch != nil && r.renewed.Wall+s.hb <= nowMs {
					items = append(items, item{ref: ref{ns, sl}, r: r})
				}
			}
		}
	}
	if len(items) == 0 {
		return nil
	}
	slices.SortFunc(items, func(a, b item) int {
		return cmp.Or(cmp.Compare(a.ns, b.ns), cmp.Compare(a.sl.key, b.sl.key))
	})
	var out []*Batch
	for len(items) > 0 {
		n, size := 0, 128+len(s.cfg.Doc)
		for n < len(items) && n < MaxBatchEntries {
			sz := 48 + len(items[n].ns) + len(items[n].sl.key) + valueLen(items[n].r.value)
			if n > 0 && size+sz > MaxBatchSize {
				break
			}
			size += sz
			n++
		}
		b := &Batch{Doc: s.cfg.Doc, Time: s.clock.Now(now), Updates: make([]Update, n)}
		for i, it := range items[:n] {
			it.r.renewed = b.Time
			s.scheduleScan(it.r)
			b.Updates[i] = Update{Namespace: it.ns, Key: it.sl.key, Time: it.r.time, Delete: it.r.deleted, Value: it.r.value}
			it.r.batch = b
		}
		if err := b.Sign(s.cfg.Key); err != nil {
			// Local writes were validated by Set and Delete, and the key by
			// NewStore: failing here is a bug.
			panic(fmt.Sprintf("ephemeral: signing a local batch: %v", err))
		}
		out = append(out, b)
		items = items[n:]
	}
	return out
}

// Snapshot returns the signed batches that carry the current state (live
// entries and tombstones), for a newcomer to Merge and verify; sorted by
// author, then time. Local writes not yet flushed are not included (call
// Flush first). The batches are shared: callers must not modify them.
func (s *Store) Snapshot() []*Batch {
	seen := make(map[*Batch]struct{})
	var out []*Batch
	for _, sp := range s.spaces {
		for _, r := range sp.recs {
			if r.batch == nil {
				continue
			}
			if _, ok := seen[r.batch]; !ok {
				seen[r.batch] = struct{}{}
				out = append(out, r.batch)
			}
		}
	}
	slices.SortFunc(out, func(a, b *Batch) int {
		return cmp.Or(a.Author.Compare(b.Author), a.Time.Compare(b.Time))
	})
	return out
}
