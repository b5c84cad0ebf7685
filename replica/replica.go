package replica

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/ephemeral"
	"github.com/convergenode/convergenode/internal/compact"
	"github.com/convergenode/convergenode/internal/testhook"
)

// Errors returned by the Replica's inputs.
var (
	ErrInvalidOp = errors.New("replica: invalid op")
	ErrNotWriter = errors.New("replica: the local author is not a writer of the document")
	ErrRestore   = errors.New("replica: restore")
)

// Replica is the protocol core for one document: the document, the BFT
// gate, the ephemeral store and the per-peer reconciliation state. It is a
// deterministic state machine driven by Step, Tick, Propose, SetPresence,
// PeerUp and PeerDown; its outputs are collected in a Ready. It is not safe
// for concurrent use: the driver serialises every call (including Doc).
type Replica struct {
	// The fields a gossiped change reads come first, together: in a
	// simulation of many replicas, each cold in the cache, every line of
	// the struct a Step reads is a miss (cfg, 472 bytes, is last).
	gate     *bft.Gate
	doc      *crdt.Doc
	envCache *bft.EnvCache // cfg.EnvCache
	sigCache *bft.SigCache // cfg.SigCache
	// envs holds the envelope of every change of the document (wired:
	// bft.Envelope.Wired), by the change's node number in the document's graph
	// (crdt.Graph.Index). A change enters the graph and envs in the same
	// step (the gate's accepted changes, a trusted replay, a snapshot's
	// covered changes), so the graph indexes envs by ID, and its
	// numbering, the order the changes were applied in, is the causal
	// order sessions send them in. A nil entry (or none, past the end) is
	// a change held without its envelope, treated as not held; no path
	// makes one today.
	envs []*bft.Envelope
	now  time.Time
	// quietUntil: until then a Tick has nothing to do but advance now
	// (see quietDeadline). Every input but Tick clears it.
	quietUntil time.Time
	// regossipWait holds the IDs in regossipQ (below) not yet heard by
	// gossip (see regossip).
	regossipWait map[crdt.ID]struct{}
	// viaSync holds the buffered changes that came on a sync stream: they
	// are re-gossiped once their parents arrive (see regossip). It and
	// waiting are nil when empty, as they nearly always are: then a
	// lookup or len reads no map header, a cache miss of its own for a
	// replica among thousands.
	viaSync     map[crdt.ID]struct{}
	restoring   bool
	deferredAny bool // some peer has deferred work (see runDeferred)
	// catchingUp is set from creation, and whenever the first peer comes
	// up while none was, until a session completes: the replica was away
	// and what reconciliation brings it now is what it missed, not what
	// the network missed, so it does not re-gossip.
	catchingUp bool
	// flushOnReady is cfg.Flush == FlushOnReady, here where HasReady
	// reads it: cfg is lines away, cold in the cache.
	flushOnReady bool
	// regossipQ holds the changes waiting for their re-gossip delay, in
	// the order they were applied.
	regossipQ []pendingGossip
	docID     string // cfg.Doc
	rd        Ready

	eph    *ephemeral.Store
	author crdt.Author
	// epoch is the first time Tick was given; tick is now as a tick (the
	// compact time of the replica's per-peer state).
	epoch time.Time
	tick  tick
	// ephDue is when the presence store has work for Tick next (its
	// Idle, as a tick): until then Tick leaves the store alone, another
	// cache miss for a replica among thousands. Zero after any call that
	// may change the store (changingEph): due at once.
	ephDue tick

	// waiting maps each change the gate buffered to its parents, so a
	// session can ask for the missing ancestors of a buffered head.
	waiting map[crdt.ID][]crdt.ID
	// regossipTokens is the re-gossip budget (changes), refilled at
	// RegossipRate per second of Tick time; regossipAt is its last refill.
	regossipTokens float64
	regossipAt     time.Time

	pending     []crdt.Op
	pendingSize int

	// peerIx finds a peer by ID: positions in peers, the peers in the
	// order added, under a seeded hash of the ID (see peer). The peers
	// live by value in one or two chunks, so the loops over them
	// (busyPair, tickSync) read neighbouring memory.
	peerIx compact.Slots
	peers  compact.Stable[peer]
	sorted []*peer // the peers in ID order (a peer is never removed)
	attn   []*peer // the peers tickSync visits (see attend)
	// deferList holds the peers with put-off work (see runDeferred), in
	// ID order.
	deferList []*peer
	proofs    map[[64]byte]*bft.EquivocationProof
	proofsBy  map[crdt.Author]int
	nextSync  time.Time

	presencePending bool // local presence writes not yet in a batch
	stats           Stats

	cfg Config
}

// Stats counts what a Replica did; for tests, benchmarks and metrics.
type Stats struct {
	LocalChanges   uint64 // signed local changes
	LocalOps       uint64 // ops in them
	Accepted       uint64 // remote changes accepted by the gate
	MsgsSent       uint64 // messages in Ready.Send and Ready.Broadcast
	BytesSent      uint64 // their bytes
	SessionsOpened uint64 // sessions this replica initiated
	SessionsDone   uint64 // initiated sessions that completed
	SessionsFailed uint64 // sessions (either role) that failed or timed out
	RoundTrips     uint64 // round trips of the completed initiated sessions: 1 (hello) + needs rounds
	NeedsRounds    uint64 // needs rounds sent in sessions of either role (each costs a round trip)
	NeedsServed    uint64 // changes sent in answer to needs
	StreamSent     uint64 // changes sent in session streams
	Regossiped     uint64 // changes learned by reconciliation and published again (see Config.RegossipRate)
	RegossipHeard  uint64 // changes not re-gossiped because gossip brought them during the delay
	RegossipCapped uint64 // changes not re-gossiped because the RegossipRate budget was spent
}

// Footprint is the size of the replica's per-peer protocol state, the part
// a misbehaving peer could try to inflate.
type Footprint struct {
	Peers      int // peers known
	Sessions   int // open sessions
	QueuedIDs  int // change IDs queued in outgoing streams
	Tracked    int // IDs tracked as missing or asked for
	PendingOps int // proposed ops not yet in a change
	// Buffered and BufferedBytes are the changes waiting in the gate's
	// causal buffer for their parents, and their accounted size.
	Buffered      int
	BufferedBytes int
}

// New returns a replica for cfg.Doc with an empty document.
func New(cfg Config) (*Replica, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Replica{
		cfg:      cfg,
		envCache: cfg.EnvCache,
		sigCache: cfg.SigCache,
		docID:    cfg.Doc,

		regossipWait: make(map[crdt.ID]struct{}),
		proofs:       make(map[[64]byte]*bft.EquivocationProof),
		proofsBy:     make(map[crdt.Author]int),

		catchingUp:   true,
		flushOnReady: cfg.Flush == FlushOnReady,
	}
	r.author = bft.AuthorOf(cfg.Key.Public().(ed25519.PublicKey))
	r.doc = crdt.NewDoc(crdt.DocOptions{ID: cfg.Doc, Author: r.author, Now: r.nowMs, NoEventRows: cfg.NoEventRows})
	r.doc.Subscribe(func(ev crdt.ChangeEvent) {
		if !r.restoring {
			if cap(r.rd.Applied) == 0 {
				r.takeBuffers()
			}
			r.rd.Applied = append(r.rd.Applied, ev)
		}
	})
	r.gate = bft.NewGate(cfg.Gate, r.doc)
	r.doc.Reserve(cfg.ExpectChanges, cfg.ExpectRows)
	r.gate.Reserve(cfg.ExpectAuthors)
	if cfg.ExpectChanges > 0 {
		r.envs = compact.Grow(r.envs, cfg.ExpectChanges, 0)
	}
	eph, err := ephemeral.NewStore(cfg.Ephemeral)
	if err != nil {
		return nil, fmt.Errorf("%w: ephemeral: %w", ErrConfig, err)
	}
	r.eph = eph
	r.eph.Watch(func(ev ephemeral.Event) { r.rd.Presence = append(r.rd.Presence, ev) })
	return r, nil
}

func (r *Replica) nowMs() int64 {
	if r.now.IsZero() {
		return 0
	}
	return r.now.UnixMilli()
}

// Doc returns the document for reading. The caller must not apply changes
// to it directly, and must serialise access with the replica's inputs.
func (r *Replica) Doc() *crdt.Doc { return r.doc }

// Author returns the local author (the public half of Config.Key).
func (r *Replica) Author() crdt.Author { return r.author }

// Presence returns the ephemeral store, for reading.
func (r *Replica) Presence() *ephemeral.Store {
	r.wake() // the caller may write to it
	return r.eph
}

// Stats returns the counters.
func (r *Replica) Stats() Stats { return r.stats }

// Envelope returns the encoded envelope of a change the replica holds
// (every change of its document). The bytes must not be modified.
func (r *Replica) Envelope(id crdt.ID) ([]byte, bool) {
	b, _, ok := r.held(id)
	return b, ok
}

// held returns the encoded envelope of a change the replica holds, and
// its place in the apply order (its node number in the graph).
func (r *Replica) held(id crdt.ID) ([]byte, int32, bool) {
	i, ok := r.doc.Graph().Index(id)
	if !ok || int(i) >= len(r.envs) || r.envs[i] == nil {
		return nil, 0, false
	}
	return r.envs[i].Wire(), i, true
}

// hold keeps env, a change the document has just applied (or loaded from
// a snapshot), and returns its encoded form. It reports false, keeping
// nothing, if the replica held it already. An envelope is kept, not its
// bytes: the gate keeps it anyway (bft.Gate.Receive), and a pointer is a
// third of a slice, in every replica of a simulation.
func (r *Replica) hold(env *bft.Envelope) ([]byte, bool) {
	env = env.Wired()
	i, ok := r.doc.Graph().Index(env.ID)
	if !ok {
		panic(fmt.Sprintf("replica: holding change %s, which the document lacks", env.ID.Short()))
	}
	if n := int(i) + 1; n > len(r.envs) {
		// Grown by a quarter, not doubled: a simulation holds one per
		// replica. envs never shrinks, so the room past its length is
		// still zero.
		r.envs = compact.Grow(r.envs, n-len(r.envs), 0)[:n]
	}
	if r.envs[i] != nil {
		return nil, false
	}
	r.envs[i] = env
	return env.Wire(), true
}

// Footprint returns the size of the per-peer protocol state.
func (r *Replica) Footprint() Footprint {
	f := Footprint{Peers: len(r.sorted), PendingOps: len(r.pending)}
	for _, p := range r.sorted {
		for _, s := range []*session{p.out, p.in} {
			if s != nil {
				f.Sessions++
				f.QueuedIDs += len(s.queue) - s.qpos
				f.Tracked += len(s.missing)
			}
		}
		f.Tracked += len(p.asked)
	}
	f.Tracked += len(r.waiting) + len(r.viaSync) + len(r.regossipQ)
	f.Buffered, f.BufferedBytes = r.gate.Buffered()
	return f
}

// Restore replays the durable log on start: encoded envelopes, as written
// from Ready.Persist, in any order (Restore sorts them causally first).
// They pass through the gate like any remote change, signatures included
// (so a corrupt log cannot inject anything, and forks still yield proofs),
// but produce no Persist, no Broadcast and no Applied events (equivocation
// proofs found in the log are raised as alerts). Call it before any other
// input. It fails if an entry does not decode or its parents are
// not in the log; the valid entries are kept.
func (r *Replica) Restore(envs [][]byte) error {
	r.wake()
	r.restoring = true
	defer func() { r.restoring = false }()
	var errs []error
	byID := make(map[crdt.ID]*bft.Envelope, len(envs))
	var ids []crdt.ID
	for i, b := range envs {
		env, err := bft.DecodeEnvelope(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: entry %d: %w", ErrRestore, i, err))
			continue
		}
		if _, dup := byID[env.ID]; !dup && !r.gate.Has(env.ID) {
			byID[env.ID] = env
			ids = append(ids, env.ID)
		}
	}
	// Depth-first post-order over parents: a causal order of the log.
	slices.SortFunc(ids, crdt.ID.Compare)
	done := make(map[crdt.ID]bool, len(ids))
	order := make([]*bft.Envelope, 0, len(ids))
	type frame struct {
		env *bft.Envelope
		i   int
	}
	for _, root := range ids {
		if done[root] {
			continue
		}
		done[root] = true
		stack := []frame{{env: byID[root]}}
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if f.i < len(f.env.Change.Parents) {
				p := f.env.Change.Parents[f.i]
				f.i++
				if pe, ok := byID[p]; ok && !done[p] {
					done[p] = true
					stack = append(stack, frame{env: pe})
				}
				continue
			}
			order = append(order, f.env)
			stack = stack[:len(stack)-1]
		}
	}
	if r.cfg.TrustLog && r.doc.Graph().Len() == 0 && r.gate.Metrics().BufferCount == 0 {
		// Trusted replay: apply in causal order straight to the document,
		// then give it a fresh gate, which indexes what it holds.
		for _, env := range order {
			if err := r.applyTrusted(env); err != nil {
				errs = append(errs, err)
				continue
			}
			r.hold(env)
		}
		r.gate = bft.NewGate(r.cfg.Gate, r.doc)
		return errors.Join(errs...)
	}
	return r.replayGated(order, errs)
}

// applyTrusted applies a logged change straight to the document (trusted
// replay): its ID is checked against its bytes, its signature is not.
func (r *Replica) applyTrusted(env *bft.Envelope) error {
	if crdt.HashChange(env.Raw) != env.ID {
		return fmt.Errorf("%w: change %s: ID does not match its bytes", ErrRestore, env.ID.Short())
	}
	if _, err := r.doc.Apply(env.ID, env.Change); err != nil {
		return fmt.Errorf("%w: change %s: %w", ErrRestore, env.ID.Short(), err)
	}
	return nil
}

// replayGated passes logged changes through the gate in causal order and
// joins what it refuses to errs; a change left waiting for its parents is
// an error too.
func (r *Replica) replayGated(envs []*bft.Envelope, errs []error) error {
	for _, env := range envs {
		res := r.gate.Receive("", env, r.now)
		if res.Rejection != nil {
			errs = append(errs, fmt.Errorf("%w: change %s: %w", ErrRestore, env.ID.Short(), res.Rejection))
		}
		r.takeResult("", res)
	}
	if n := r.gate.Metrics().BufferCount; n > 0 {
		errs = append(errs, fmt.Errorf("%w: %d entries miss their parents", ErrRestore, n))
	}
	return errors.Join(errs...)
}

// Propose adds ops to the current group commit. They become one signed
// change (or several, past MaxOpsPerChange or MaxChangeBytes) at the next
// Tick (FlushOnTick) or Ready (FlushOnReady). Invalid ops are refused here
// (ErrInvalidOp), so one bad op never sinks the group, and so are writes by
// an author outside the document's writer set (ErrNotWriter).
func (r *Replica) Propose(ops ...crdt.Op) error {
	r.wake()
	if len(ops) == 0 {
		return nil
	}
	probe := crdt.Change{Doc: r.cfg.Doc, Seq: 1, Lamport: 1, Ops: ops}
	if len(ops) > crdt.MaxOps {
		probe.Ops = ops[:1]
		for _, o := range ops {
			probe.Ops[0] = o
			if err := probe.Validate(); err != nil {
				return fmt.Errorf("%w: %w", ErrInvalidOp, err)
			}
		}
	} else if err := probe.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOp, err)
	}
	if ws := r.gate.Writers(); ws != nil && !slices.Contains(ws, r.author) {
		return ErrNotWriter
	}
	for _, o := range ops {
		sz := opSize(&o)
		if len(r.pending) > 0 && (len(r.pending) >= r.cfg.MaxOpsPerChange || r.pendingSize+sz > r.cfg.MaxChangeBytes) {
			r.flush()
		}
		r.pending = append(r.pending, o)
		r.pendingSize += sz
	}
	return nil
}

func opSize(o *crdt.Op) int {
	n := 8 + len(o.Table) + len(o.Row)
	for _, c := range o.Cols {
		n += 12 + len(c.Name)
		if s, ok := c.Value.AsString(); ok {
			n += len(s)
		} else if c.Value.Kind() == crdt.KindBytes {
			b, _ := c.Value.AsBytes()
			n += len(b)
		}
	}
	return n
}

// flush signs the pending ops as one or more local changes.
func (r *Replica) flush() {
	ops := r.pending
	r.pending, r.pendingSize = nil, 0
	for len(ops) > 0 {
		n := len(ops)
		for {
			err := r.commit(ops[:n])
			if err == nil {
				break
			}
			var rej *bft.Rejection
			if errors.As(err, &rej) || n == 1 {
				// The gate refused the change (the writer set changed
				// under us) or a single op does not fit: splitting cannot
				// help. Drop these ops and say so.
				reason := "local-commit"
				if rej != nil {
					reason = "local-" + rej.Reason.String()
				}
				r.alert(Alert{Kind: AlertDropped, Reason: reason, Count: n})
				break
			}
			n /= 2 // over a size limit: split
		}
		ops = ops[n:]
	}
}

func (r *Replica) commit(ops []crdt.Op) error {
	c, err := r.doc.Prepare(ops)
	if err != nil {
		return err
	}
	env, err := bft.Sign(r.cfg.Key, c)
	if err != nil {
		return err
	}
	res := r.gate.Local(env, r.now)
	if res.Rejection != nil {
		return res.Rejection
	}
	r.takeResult("", res)
	r.stats.LocalChanges++
	r.stats.LocalOps += uint64(len(ops))
	b, _ := r.Envelope(env.ID)
	r.broadcast(TopicChanges, &Message{Type: MsgChange, Items: [][]byte{b}})
	return nil
}

// SetPresence sets an ephemeral value owned by the local author. It is
// signed and broadcast with the other presence writes of the tick (or of
// the next Ready with FlushOnReady).
func (r *Replica) SetPresence(ns, key string, v crdt.Value) error {
	r.wake()
	if err := r.changingEph().Set(ns, key, v, r.now); err != nil {
		return err
	}
	r.presencePending = true
	return nil
}

// DeletePresence deletes an ephemeral value owned by the local author.
func (r *Replica) DeletePresence(ns, key string) error {
	r.wake()
	if err := r.changingEph().Delete(ns, key, r.now); err != nil {
		return err
	}
	r.presencePending = true
	return nil
}

// Tick advances the replica's clock to now (it never goes back): it
// flushes the group commit (FlushOnTick), expires the gate's causal buffer
// and ephemeral entries, sends presence heartbeats, times out sessions and
// starts the periodic reconciliation with a random peer.
func (r *Replica) Tick(now time.Time) {
	if now.After(r.now) {
		if r.now.IsZero() {
			r.epoch = now
		}
		r.now = now
		r.tick = tick(now.Sub(r.epoch))
	}
	if r.now.Before(r.quietUntil) {
		return
	}
	if len(r.pending) > 0 {
		r.flush()
	}
	for _, d := range r.gate.Tick(r.now) {
		r.alert(Alert{Kind: AlertDropped, Peer: PeerID(d.From), Reason: d.Reason.String(), IDs: []crdt.ID{d.ID}})
	}
	if len(r.waiting) > 0 || len(r.viaSync) > 0 {
		r.pruneWaiting()
	}
	// Before ephDue the store's Tick would only advance its clock, which
	// every later call to it does as well: leave the store alone.
	if r.presencePending || r.tick >= r.ephDue || testhook.FullTicks.Load() {
		batches, _ := r.eph.Tick(r.now)
		r.presencePending = false
		r.bcastBatches(batches)
		r.ephDue = r.ephIdle()
	}
	r.tickSync()
	r.runDeferred()
	if len(r.regossipQ) > 0 {
		r.tickRegossip()
	}
	r.quietUntil = r.quietDeadline()
}

// changingEph returns the presence store for a call that may change it
// (its pending writes, expiries or replay state), so the next Tick asks
// the store again (see ephDue).
func (r *Replica) changingEph() *ephemeral.Store {
	r.ephDue = 0
	return r.eph
}

// ephIdle returns the presence store's Idle as a tick, 0 if it has work.
func (r *Replica) ephIdle() tick {
	t, ok := r.eph.Idle()
	if !ok {
		return 0
	}
	return tick(t.Sub(r.epoch))
}

// quietDeadline returns the time before which a Tick would do nothing but
// advance the clock, or the zero time if the next Tick may have work.
// Most of a replica's ticks find nothing to do: no session, request,
// buffered change, deferred answer or re-gossip pending, and no periodic
// sync, presence expiry or replay-state pruning due. Such a tick then
// touches only the replica's clock, not the gate, the sessions and the
// presence store (in a simulation of thousands of replicas, each of those
// is a cache miss). Every input but Tick calls wake, so the deadline only
// covers ticks with no input since the last full one.
func (r *Replica) quietDeadline() time.Time {
	if testhook.FullTicks.Load() {
		return time.Time{}
	}
	if len(r.pending) > 0 || r.presencePending || len(r.waiting) > 0 || len(r.viaSync) > 0 ||
		len(r.attn) > 0 || r.deferredAny || len(r.regossipQ) > 0 {
		return time.Time{}
	}
	if n, _ := r.gate.Buffered(); n > 0 {
		return time.Time{}
	}
	if r.ephDue <= r.tick {
		return time.Time{}
	}
	t := r.epoch.Add(time.Duration(r.ephDue))
	if r.cfg.SyncInterval >= 0 && r.nextSync.Before(t) {
		t = r.nextSync
	}
	return t
}

// QuietUntil returns the time before which Tick has nothing to do but
// advance the replica's clock, as of the last Tick, or the zero time. Any
// other input ends the quiet period. A driver that ticks at a fixed rate
// may skip the ticks before it, provided it calls Tick with the last
// skipped time before the next input (the simulator does; see
// sim.ReplicaNode).
func (r *Replica) QuietUntil() time.Time {
	return r.quietUntil
}

// wake ends a quiet period: an input may have given the next Tick work.
func (r *Replica) wake() { r.quietUntil = time.Time{} }

func (r *Replica) bcastBatches(bs []*ephemeral.Batch) {
	for _, b := range bs {
		enc, err := b.Encode()
		if err != nil {
			panic(fmt.Sprintf("replica: encoding a local presence batch: %v", err))
		}
		r.broadcast(TopicEphemeral, &Message{Type: MsgEphemeral, Items: [][]byte{enc}})
	}
}

// HasReady reports whether Ready would return any work.
func (r *Replica) HasReady() bool {
	if r.flushOnReady && (len(r.pending) > 0 || r.presencePending) {
		return true
	}
	return !r.rd.IsEmpty()
}

// Ready returns the work accumulated since the previous Ready (see the
// Ready type for the order to do it in). With FlushOnReady it first packs
// the pending ops and presence writes. The driver must call Advance once
// it has acted on it.
func (r *Replica) Ready() Ready {
	// No wake: while quiet, nothing is pending for Ready to flush (an
	// input that left work for it woke the replica already).
	if r.cfg.Flush == FlushOnReady {
		if len(r.pending) > 0 {
			r.flush()
		}
		r.bcastBatches(r.changingEph().Flush(r.now))
		r.presencePending = false
	}
	rd := r.rd
	r.rd = Ready{}
	rd.Alerts = foldAlerts(rd.Alerts)
	return rd
}

// Advance tells the replica the last Ready has been acted on: its Persist
// entries are durable and its messages handed to the network.
func (r *Replica) Advance() {}

// Recycle hands back the slices of rd, a Ready the driver has acted on and
// keeps no slice of (it may keep what they hold: the encoded envelopes and
// messages, the changes); later Readys, of any replica in the process,
// reuse them instead of allocating. Calling it is optional: a driver that
// keeps Readys or pipelines them (the node does) does not. A process that
// runs many replicas on one goroutine, such as the simulator, saves an
// allocation or two per input with it.
func (r *Replica) Recycle(rd Ready) {
	b, _ := readyPool.Get().(*readyBufs)
	if b == nil {
		b = new(readyBufs)
	}
	b.persist = recycled(b.persist, rd.Persist)
	b.broadcast = recycled(b.broadcast, rd.Broadcast)
	b.send = recycled(b.send, rd.Send)
	b.applied = recycled(b.applied, rd.Applied)
	readyPool.Put(b)
}

// readyBufs holds empty slices handed back by Recycle.
type readyBufs struct {
	persist   [][]byte
	broadcast []Outgoing
	send      []Direct
	applied   []crdt.ChangeEvent
}

// readyPool holds *readyBufs.
var readyPool sync.Pool

// maxRecycled bounds the capacity of a slice Recycle keeps, so that a burst
// (a catch-up's Ready) does not stay allocated.
const maxRecycled = 256

// recycled returns got emptied, for reuse, unless have is as large or got
// is too large.
func recycled[T any](have, got []T) []T {
	if cap(got) <= cap(have) || cap(got) > maxRecycled {
		return have
	}
	clear(got)
	return got[:0]
}

// takeBuffers gives r.rd's slices that have no room the slices Recycle
// handed back, if there are any.
func (r *Replica) takeBuffers() {
	b, _ := readyPool.Get().(*readyBufs)
	if b == nil {
		return
	}
	if cap(r.rd.Persist) == 0 {
		r.rd.Persist, b.persist = b.persist, nil
	}
	if cap(r.rd.Broadcast) == 0 {
		r.rd.Broadcast, b.broadcast = b.broadcast, nil
	}
	if cap(r.rd.Send) == 0 {
		r.rd.Send, b.send = b.send, nil
	}
	if cap(r.rd.Applied) == 0 {
		r.rd.Applied, b.applied = b.applied, nil
	}
	readyPool.Put(b)
}

func (r *Replica) alert(a Alert) { r.rd.Alerts = append(r.rd.Alerts, a) }

func (r *Replica) broadcast(t Topic, m *Message) {
	b := MustEncode(m)
	r.stats.MsgsSent++
	r.stats.BytesSent += uint64(len(b))
	if cap(r.rd.Broadcast) == 0 {
		r.takeBuffers()
	}
	r.rd.Broadcast = append(r.rd.Broadcast, Outgoing{Topic: t, Data: b})
}

func (r *Replica) send(to PeerID, m *Message) {
	b := MustEncode(m)
	r.stats.MsgsSent++
	r.stats.BytesSent += uint64(len(b))
	if cap(r.rd.Send) == 0 {
		r.takeBuffers()
	}
	r.rd.Send = append(r.rd.Send, Direct{To: to, Data: b})
}

// Step handles one message from peer from: a gossip message (change,
// evidence, presence) or a reconciliation message. An undecodable message
// raises a penalty alert and returns an error wrapping ErrBadMessage;
// misbehaviour inside a valid message is reported through Ready.Alerts.
func (r *Replica) Step(from PeerID, data []byte) error {
	r.wake()
	if it, ok := changeItem(data); ok {
		// A gossiped change, decoded in place: receive keeps no part of
		// data (the gate and the envelope cache copy what they keep). The
		// sender's peer record is looked up (or made) only if the change
		// lacks parents to ask it for: in a simulation of thousands of
		// replicas, each cold in the cache, the lookup on every change was
		// nearly a tenth of the 100,000-node run.
		r.stepChange(from, it)
		r.runDeferred()
		return nil
	}
	// The message itself stays on the stack: the handlers keep parts of
	// it (its IDs, its filter), never the whole. A batch of changes goes
	// to receive item by item, which keeps no part of one (as for a
	// gossiped change), so its items alias data; other items are copied.
	var msg Message
	m := &msg
	if err := decodeInto(m, data, PeekType(data) == MsgChanges); err != nil {
		if len(data) >= 1 && data[0] != WireVersion {
			return err // another protocol version: not this peer's fault
		}
		r.alert(Alert{Kind: AlertPenalty, Peer: from, Reason: "bad-message", Penalize: true})
		return err
	}
	p := r.peer(from)
	switch m.Type {
	case MsgChange:
		r.stepChange(p.id, m.Items[0])
	case MsgEvidence:
		r.stepEvidence(p, m.Items[0])
	case MsgEphemeral:
		r.stepBatch(p, m.Items[0])
	case MsgPresence:
		for _, it := range m.Items {
			r.stepBatch(p, it)
		}
	case MsgHello:
		r.stepHello(p, m)
	case MsgNeeds:
		r.stepNeeds(p, m)
	case MsgChanges:
		r.stepChanges(p, m)
	case MsgAck:
		r.stepAck(p, m)
	case MsgDone:
		r.stepDone(p, m)
	}
	r.runDeferred()
	return nil
}

// stepChange handles a gossiped change (the envelope b) from the peer from.
func (r *Replica) stepChange(from PeerID, b []byte) {
	if id, ok := bft.PeekID(b); ok {
		r.heard(id)
	}
	if missing, ok := r.receive(from, b, false); ok && len(missing) > 0 {
		r.askMissing(r.peer(from), missing, false, false)
	}
}

// maxWaiting bounds the replica's index of buffered changes (the gate's
// own buffer is bounded by its quotas; this only mirrors it).
const maxWaiting = 1 << 16

// receive runs one encoded envelope from the peer from through the gate.
// It returns the parents the gate reports missing, and false if the
// envelope was refused in a way that blames the peer. viaSync says it came
// on the peer's sync stream, not by gossip: once applied, it is
// re-gossiped (see regossip).
func (r *Replica) receive(from PeerID, b []byte, viaSync bool) ([]crdt.ID, bool) {
	if id, ok := bft.PeekID(b); ok && r.gate.Has(id) {
		return nil, true
	}
	env, rej := r.envCache.Check(r.docID, b, r.sigCache)
	if rej != nil {
		r.alert(Alert{Kind: AlertPenalty, Peer: from, Reason: rej.Reason.String(), Penalize: rej.Reason.Penalize()})
		return nil, !rej.Reason.Penalize()
	}
	res := r.gate.Receive(string(from), env, r.now)
	if res.Buffered {
		if len(r.waiting) >= maxWaiting {
			r.pruneWaiting()
		}
		if len(r.waiting) < maxWaiting {
			if r.waiting == nil {
				r.waiting = make(map[crdt.ID][]crdt.ID)
			}
			r.waiting[env.ID] = env.Change.Parents
		}
		if viaSync && len(r.viaSync) < maxWaiting {
			if r.viaSync == nil {
				r.viaSync = make(map[crdt.ID]struct{})
			}
			r.viaSync[env.ID] = struct{}{}
		}
	}
	r.takeResult(from, res)
	for _, a := range res.Accepted {
		// This change if it came by sync, and the changes that came by
		// sync and waited in the causal buffer for it.
		if a.ID == env.ID && viaSync {
			r.regossip(a)
		} else if _, ok := r.viaSync[a.ID]; ok {
			delete(r.viaSync, a.ID)
			if len(r.viaSync) == 0 {
				r.viaSync = nil
			}
			r.regossip(a)
		}
	}
	if res.Rejection != nil && res.Rejection.Reason.Penalize() {
		return nil, false
	}
	return res.Missing, true
}

// pendingGossip is a change waiting for its re-gossip delay.
type pendingGossip struct {
	id crdt.ID
	at time.Time
}

// regossip schedules the re-gossip of a change that reached this replica
// by reconciliation and was just applied. Gossip missed this replica, so
// it probably missed some of its gossip neighbours too (on a sparse
// graph, every node down the path the lost message should have taken),
// and without this each would wait for a sync with a peer that holds it:
// one sync interval per hop. The message is byte for byte the author's
// gossip message (same GossipID), so nodes that saw it already drop the
// copy unvalidated; its parents are applied here, so a next hop that
// lacks them gets them from this replica.
//
// Three bounds keep it from becoming a flood. A replica that is catching
// up (just created or restarted, or back from having no peer at all,
// until its first session completes) re-gossips nothing: what it receives
// then is what it missed while away, which its neighbours already hold.
// The message goes out after a random delay in [0, RegossipDelay), and
// not at all if the change arrives by gossip meanwhile (suppression, as
// in Trickle): when many replicas learn the same changes by
// reconciliation at once (a partition heals), the first to publish
// floods them and the others keep quiet. And at most RegossipRate changes
// per second of Tick time are published; the rest are left to
// reconciliation.
func (r *Replica) regossip(env *bft.Envelope) {
	if r.catchingUp || r.cfg.RegossipRate < 0 {
		return
	}
	if r.cfg.RegossipDelay <= 0 {
		r.publishSynced(env.ID)
		return
	}
	if _, ok := r.regossipWait[env.ID]; ok || len(r.regossipQ) >= 4*r.cfg.RegossipRate {
		r.stats.RegossipCapped++
		return
	}
	at := r.now.Add(time.Duration(r.cfg.Rand.Int64N(int64(r.cfg.RegossipDelay))))
	r.regossipQ = append(r.regossipQ, pendingGossip{id: env.ID, at: at})
	r.regossipWait[env.ID] = struct{}{}
}

// heard notes that a change arrived by gossip: no need to re-gossip it.
func (r *Replica) heard(id crdt.ID) {
	if len(r.regossipQ) == 0 {
		// Nothing waits (regossipWait's IDs are in regossipQ), and the
		// queue's length sits with the fields every Step reads, where the
		// map's header is a cache miss of its own.
		return
	}
	if _, ok := r.regossipWait[id]; ok {
		delete(r.regossipWait, id)
		r.stats.RegossipHeard++
	}
}

// tickRegossip publishes the scheduled re-gossips whose delay is over.
func (r *Replica) tickRegossip() {
	q := r.regossipQ[:0]
	for _, pg := range r.regossipQ {
		if _, ok := r.regossipWait[pg.id]; !ok {
			continue // heard by gossip meanwhile
		}
		if r.now.Before(pg.at) {
			q = append(q, pg)
			continue
		}
		delete(r.regossipWait, pg.id)
		r.publishSynced(pg.id)
	}
	clear(r.regossipQ[len(q):])
	r.regossipQ = q
}

// publishSynced publishes a change learned by reconciliation, within the
// RegossipRate budget.
func (r *Replica) publishSynced(id crdt.ID) {
	rate := float64(r.cfg.RegossipRate)
	if r.regossipAt.IsZero() {
		r.regossipTokens = rate
	} else if el := r.now.Sub(r.regossipAt); el > 0 {
		r.regossipTokens = min(rate, r.regossipTokens+el.Seconds()*rate)
	}
	r.regossipAt = r.now
	if r.regossipTokens < 1 {
		r.stats.RegossipCapped++
		return
	}
	r.regossipTokens--
	r.stats.Regossiped++
	b, _ := r.Envelope(id)
	r.broadcast(TopicChanges, &Message{Type: MsgChange, Items: [][]byte{b}})
}

// takeResult records what the gate accepted and the proofs it made.
func (r *Replica) takeResult(from PeerID, res bft.Result) {
	for _, env := range res.Accepted {
		b, ok := r.hold(env)
		if !ok {
			continue
		}
		if !r.restoring {
			if cap(r.rd.Persist) == 0 {
				r.takeBuffers()
			}
			r.rd.Persist = append(r.rd.Persist, b)
			if from != "" {
				r.stats.Accepted++
			}
		}
	}
	if res.Rejection != nil && !res.Rejection.Reason.Penalize() && res.Rejection.Reason != bft.RejectNone {
		r.alert(Alert{Kind: AlertDropped, Peer: from, Reason: res.Rejection.Reason.String(), IDs: []crdt.ID{res.Rejection.ID}})
	}
	for _, d := range res.Dropped {
		r.alert(Alert{Kind: AlertDropped, Peer: PeerID(d.From), Reason: d.Reason.String(), IDs: []crdt.ID{d.ID}})
	}
	for _, pr := range res.Proofs {
		r.noteProof(pr, true)
	}
}

// maxProofsPerAuthor bounds the proofs kept per equivocating author.
const maxProofsPerAuthor = 4

func proofKey(pr *bft.EquivocationProof) [64]byte {
	var k [64]byte
	copy(k[:32], pr.A.ID[:])
	copy(k[32:], pr.B.ID[:])
	return k
}

// noteProof raises a new proof once, and gossips it if it was found here.
func (r *Replica) noteProof(pr *bft.EquivocationProof, gossip bool) {
	k := proofKey(pr)
	if r.proofs[k] != nil {
		return
	}
	// One proof convicts; keep (and raise) a few per author, so an author
	// that signs endless forks cannot grow this set or flood the alerts.
	if r.proofsBy[pr.Author()] >= maxProofsPerAuthor {
		return
	}
	r.proofsBy[pr.Author()]++
	r.proofs[k] = pr
	r.alert(Alert{Kind: AlertEquivocation, Reason: "equivocation", Author: pr.Author(), Proof: pr})
	if gossip && !r.restoring {
		r.broadcast(TopicEvidence, &Message{Type: MsgEvidence, Items: [][]byte{pr.Encode()}})
	}
}

// Proofs returns the equivocation proofs the replica holds (found by its
// gate or received as evidence), sorted by the IDs of their two changes.
// Which pairs of an author's conflicting changes a replica holds depends
// on the order it saw them in; the set of Equivocators does not.
func (r *Replica) Proofs() []*bft.EquivocationProof {
	keys := make([][64]byte, 0, len(r.proofs))
	for k := range r.proofs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [64]byte) int { return compareBytes(a[:], b[:]) })
	out := make([]*bft.EquivocationProof, len(keys))
	for i, k := range keys {
		out[i] = r.proofs[k]
	}
	return out
}

// Equivocators returns the authors the replica holds an equivocation proof
// against, sorted.
func (r *Replica) Equivocators() []crdt.Author {
	var out []crdt.Author
	for _, p := range r.proofs {
		out = append(out, p.Author())
	}
	slices.SortFunc(out, crdt.Author.Compare)
	return slices.Compact(out)
}

func compareBytes(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}

func (r *Replica) stepEvidence(p *peer, b []byte) {
	pr, err := bft.DecodeProof(b)
	if err == nil && pr.Doc() != r.cfg.Doc {
		err = errors.New("wrong doc")
	}
	if err == nil {
		err = pr.VerifyCached(r.cfg.SigCache)
	}
	if err != nil {
		r.alert(Alert{Kind: AlertPenalty, Peer: p.id, Reason: "bad-evidence", Penalize: true})
		return
	}
	// Both forks are valid signed changes: take them too, so the document
	// holds both sides like every other honest replica.
	for _, env := range []*bft.Envelope{pr.A, pr.B} {
		if missing, ok := r.receive(p.id, env.Encode(), false); ok && len(missing) > 0 {
			r.askMissing(p, missing, false, false)
		}
	}
	r.noteProof(pr, false)
}

func (r *Replica) stepBatch(p *peer, b []byte) {
	batch, err := ephemeral.DecodeBatch(b)
	if err == nil {
		_, err = r.changingEph().Merge(batch, r.now)
	}
	if err == nil {
		return
	}
	switch {
	case errors.Is(err, ephemeral.ErrStale), errors.Is(err, ephemeral.ErrReplay),
		errors.Is(err, ephemeral.ErrFuture):
		// Late, duplicated or skewed: no one to blame.
	case errors.Is(err, ephemeral.ErrRateLimited), errors.Is(err, ephemeral.ErrTooManyEntries):
		r.alert(Alert{Kind: AlertPenalty, Peer: p.id, Reason: "presence-flood"})
	default:
		r.alert(Alert{Kind: AlertPenalty, Peer: p.id, Reason: "bad-presence", Penalize: true})
	}
}

// PeerUp tells the replica a sync stream to p is open: it sends p a
// presence snapshot and starts a reconciliation (at once, or as soon as no
// other session is still bringing changes in, so a newcomer meeting
// several peers takes the history from one of them).
func (r *Replica) PeerUp(id PeerID) {
	r.wake()
	p := r.peer(id)
	if !p.up && !r.anyUp() {
		r.catchingUp = true // back from having no peer: see regossip
	}
	p.up = true
	r.sendSnapshot(p)
	r.requestSync(p)
}

// PeerDown tells the replica the stream to p is gone: its sessions end
// (without blame); what was last synced is kept for the next PeerUp.
func (r *Replica) PeerDown(id PeerID) {
	r.wake()
	p := r.findPeer(id)
	if p == nil {
		return
	}
	p.up = false
	p.out, p.in = nil, nil
	p.deferred, p.wantSync = nil, false
	clear(p.asked)
	r.deferredAny = true // sessions ended: deferred work may proceed
}

// anyUp reports whether a sync stream to some peer is open.
func (r *Replica) anyUp() bool {
	for _, p := range r.sorted {
		if p.up {
			return true
		}
	}
	return false
}

func (r *Replica) sendSnapshot(p *peer) {
	var items [][]byte
	size := 0
	flushItems := func() {
		if len(items) > 0 {
			r.send(p.id, &Message{Type: MsgPresence, Items: items})
			items, size = nil, 0
		}
	}
	for _, b := range r.eph.Snapshot() {
		enc, err := b.Encode()
		if err != nil {
			continue
		}
		if size+len(enc) > MaxMessageSize/2 || len(items) == MaxMsgItems {
			flushItems()
		}
		items = append(items, enc)
		size += len(enc)
	}
	flushItems()
}

// tick is a time as nanoseconds since the replica's epoch (its first
// Tick; time.Time.Sub, so a monotonic clock reading is used when there is
// one): what the replica keeps per peer, in 8 bytes instead of a
// time.Time's 24. Times before the first Tick are 0.
type tick int64

func (t tick) add(d time.Duration) tick { return t + tick(d) }
