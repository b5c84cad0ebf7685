package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/convergenode/convergenode/crdt"
)

// Doc is a joined document: reads come from the replica's materialized
// tables, writes go through the replica (signed, persisted, published).
// All methods are safe for concurrent use.
type Doc struct {
	n  *Node
	id string
	g  *gossip

	inbox  chan inMsg
	writes chan *writeReq
	readyQ chan *readyBatch // loop -> persister
	acted  chan bool        // persister -> loop: one batch done (true: it counted in inflight)

	mu     sync.Mutex // guards e (the loop mutates it; readers read it)
	e      engine
	err    error      // first storage error: the document refuses writes
	subMu  sync.Mutex // guards subs, psubs, nextID (not mu: the persister must not wait for the loop)
	subs   map[int]func(crdt.ChangeEvent)
	psubs  map[int]func(PresenceEvent)
	nextID int
	progMu sync.Mutex
	prog   catchup
	snap   snapState // owned by the loop (and by openDoc before it starts)
}

type peerEventKind uint8

const (
	noPeerEvent peerEventKind = iota
	peerUp
	peerDown
)

// inMsg is one input from the network: a gossip or stream message, or a
// peer joining or leaving the document.
type inMsg struct {
	from      string
	data      []byte
	peerEvent peerEventKind
}

// writeReq is a local write waiting to be durable.
type writeReq struct {
	ops      []crdt.Op
	presence *PresenceEntry
	done     chan error
	taken    time.Time // when the loop took it (set only while tracing)
}

// catchup tracks a burst of remote changes for the progress report.
type catchup struct {
	start, last, logged time.Time
	applied             int
}

// ErrStorage wraps a storage failure: the document stops accepting writes.
var ErrStorage = errors.New("node: storage failed")

func (n *Node) openDoc(ctx context.Context, id string) (*Doc, error) {
	e, err := n.core.newEngine(id, &n.cfg, n.caches)
	if err != nil {
		return nil, fmt.Errorf("node: document %q: %w", id, err)
	}
	d := &Doc{
		n:      n,
		id:     id,
		e:      e,
		inbox:  make(chan inMsg, 1024),
		writes: make(chan *writeReq, 1024),
		readyQ: make(chan *readyBatch, 64),
		acted:  make(chan bool, 64),
		subs:   map[int]func(crdt.ChangeEvent){},
		psubs:  map[int]func(PresenceEvent){},
	}
	t0 := time.Now()
	var envs [][]byte
	if err := n.store.Load(id, func(env []byte) error {
		envs = append(envs, append([]byte(nil), env...))
		return nil
	}); err != nil {
		return nil, fmt.Errorf("node: document %q: load: %w", id, err)
	}
	if err := d.restore(e, envs); err != nil {
		// The valid entries are kept; report and carry on serving them.
		n.log.Error("document log has bad entries", "doc", id, "err", err)
		n.handleAlert(Alert{Doc: id, Kind: "storage", Reason: "restore", Detail: err.Error(), Time: time.Now()})
	}
	e.Tick(time.Now())
	n.log.Info("document loaded", "doc", id, "changes", len(envs), "took", time.Since(t0))
	// Restore may produce output (e.g. nothing to persist, but events);
	// it is drained by the loop's first flush.
	if d.g, err = n.joinGossip(d); err != nil {
		return nil, err
	}
	n.wg.Add(3 + int(numTopics))
	for t := topicKind(0); t < numTopics; t++ {
		sub := d.g.subs[t]
		go func() { defer n.wg.Done(); n.readTopic(n.ctx, d, sub) }()
	}
	go func() { defer n.wg.Done(); n.readPeerEvents(n.ctx, d, d.g.events) }()
	go func() { defer n.wg.Done(); d.run(n.ctx) }()
	go func() { defer n.wg.Done(); d.persist(n.ctx) }()
	if n.dhtDisc != nil {
		n.advertise(id)
	}
	return d, nil
}

// ID returns the document's ID.
func (d *Doc) ID() string { return d.id }

// Err returns the storage error that stopped the document, or nil.
func (d *Doc) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// deliver queues an input for the loop; false once ctx is done.
func (d *Doc) deliver(ctx context.Context, m inMsg) bool {
	select {
	case d.inbox <- m:
		return true
	case <-ctx.Done():
		return false
	}
}

// run is the document's loop: the only goroutine that mutates the engine.
// It hands each Ready, with the local writes it carries, to the persister
// (see persist) and goes on stepping inputs while the fsync runs.
func (d *Doc) run(ctx context.Context) {
	tick := time.NewTicker(d.n.cfg.TickInterval)
	defer tick.Stop()
	defer close(d.readyQ)
	var pending []*writeReq
	inflight := 0 // batches handed to the persister and not done yet
	for {
		// Group commit: while the persister works, local writes wait in
		// d.writes and become one change when it is done. (Gating on
		// every batch, not only those with local writes, measured
		// better: fewer, larger changes mean fewer signatures to check
		// on every peer.)
		writes := d.writes
		if inflight > 0 {
			writes = nil
		}
		select {
		case <-ctx.Done():
			d.failWrites(pending, ErrNodeClosed)
			d.drainWrites(ErrNodeClosed)
			d.maybeSnapshot(ctx, &inflight, true)
			return
		case local := <-d.acted:
			inflight -= d.advance(local)
			continue
		case now := <-tick.C:
			d.mu.Lock()
			d.e.Tick(now)
			d.mu.Unlock()
		case m := <-d.inbox:
			d.step(m)
			for i := 0; i < 256; i++ { // batch what is already queued
				select {
				case m := <-d.inbox:
					d.step(m)
					continue
				default:
				}
				break
			}
		case w := <-writes:
			d.mu.Lock()
			pending = d.proposeLocked(w, pending)
			for i := 0; i < 4096; i++ { // group commit
				select {
				case w := <-d.writes:
					pending = d.proposeLocked(w, pending)
					continue
				default:
				}
				break
			}
			d.mu.Unlock()
		}
		for {
			d.mu.Lock()
			has := d.e.HasReady()
			var rd ready
			if has {
				rd = d.e.Ready()
				d.countApplied(&rd)
			}
			d.mu.Unlock()
			if traceHook != nil && has {
				d.traceReady(&rd, pending)
			}
			if !has && len(pending) == 0 {
				break
			}
			// The first Ready after a proposal holds the proposed changes
			// (FlushOnReady); writes with no change (presence) are acked
			// in order behind the earlier Readies.
			local := gateOnAll || len(pending) > 0 || len(rd.Broadcast) > 0
			for sent := false; !sent; {
				select {
				case d.readyQ <- &readyBatch{rd: rd, acks: pending, local: local}:
					sent = true
				case local := <-d.acted: // never block the persister on its report
					inflight -= d.advance(local)
				case <-ctx.Done():
					d.failWrites(pending, ErrNodeClosed)
					d.drainWrites(ErrNodeClosed)
					return
				}
			}
			if local {
				inflight++
			}
			pending = nil
			if !has {
				break
			}
		}
		if !d.maybeSnapshot(ctx, &inflight, false) {
			d.drainWrites(ErrNodeClosed)
			return
		}
	}
}

// readyBatch is one Ready and the local writes to ack once it is durable.
type readyBatch struct {
	rd    ready
	acks  []*writeReq
	local bool   // counted in the loop's inflight: report when done
	snap  []byte // a snapshot to store after the appends before it (no Ready: not reported)

	published bool // handed to the publisher, which reports it to the loop
}

// gateOnAll makes local writes wait for every batch in the persister, not
// only those with local changes (an experiment knob for benchmarks; off
// measured lower latency).
var gateOnAll = false

// advance tells the engine the persister has acted on one more Ready and
// returns 1 if that batch counted in the loop's inflight.
func (d *Doc) advance(local bool) int {
	d.mu.Lock()
	d.e.Advance()
	d.mu.Unlock()
	if local {
		return 1
	}
	return 0
}

// persist is the document's second stage: for each Ready, in order, it
// makes Persist durable, then hands Broadcast to the publisher and Send to
// the sync streams, then delivers events, then acks the writes and calls
// Advance. Readies queued together share one store append (one fsync),
// except that a run of Readies needing no fsync at the head of the queue
// is written and delivered first: changes received from peers do not wait
// for the fsync of a local change queued after them.
//
// Publishing runs in a goroutine of its own (in order), so neither the
// next append nor the events and acks behind a local change wait for
// gossipsub's event loop: the change is durable before it is handed over,
// which is all the ordering durability needs. The publisher reports a
// Ready it published to the loop, so the group commit still gathers the
// writes that arrive until the previous local change is out (a shorter
// gate measured half-size groups and 1.5x the time to converge in
// BenchmarkNodeConverge8x12500).
func (d *Doc) persist(ctx context.Context) {
	pubQ := make(chan pubItem, cap(d.readyQ))
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); d.publish(ctx, pubQ) }()
	defer func() {
		close(pubQ)
		<-pubDone
		d.g.close(d.n, d.id)
	}()
	for b := range d.readyQ {
		batch := []*readyBatch{b}
		for len(batch) < 64 {
			select {
			case b, ok := <-d.readyQ:
				if !ok {
					break
				}
				batch = append(batch, b)
				continue
			default:
			}
			break
		}
		for len(batch) > 0 {
			n := 0
			for n < len(batch) && !batch[n].needsSync() {
				n++
			}
			if n == 0 {
				n = len(batch) // from the first fsync on, one append
			}
			run := batch[:n]
			batch = batch[n:]
			if err := d.act(ctx, run, pubQ); err != nil {
				for _, b := range run {
					d.failWrites(b.acks, err)
				}
			}
			for _, b := range run {
				if b.snap != nil || b.published {
					continue // the publisher reports it
				}
				select {
				case d.acted <- b.local:
				case <-ctx.Done():
				}
			}
		}
	}
}

// needsSync reports whether b's append must be fsynced. Durability
// policy: fsync when a local write waits for its ack or the Ready
// publishes (a local change, or evidence). A Ready that only persists
// changes received from peers is written without fsync, even when it
// sends (requests, or changes served to a peer: they are signed by their
// authors and the peer has them either way): it survives a process
// crash, a machine crash at worst loses changes that peers still hold and
// reconciliation fetches again, and the next synced append makes it
// durable too (one write-ahead log). A local change always comes with its
// broadcast, so it is never sent anywhere before its fsync.
func (b *readyBatch) needsSync() bool {
	return len(b.acks) > 0 || len(b.rd.Broadcast) > 0
}

// pubItem is the broadcasts of one durable Ready, for the publisher.
type pubItem struct {
	msgs  []outgoing
	local bool // the Ready's readyBatch.local, reported to the loop once published
}

// publish publishes the durable broadcasts handed over by the persister,
// in order, until pubQ is closed, and reports each Ready to the loop.
func (d *Doc) publish(ctx context.Context, pubQ <-chan pubItem) {
	for it := range pubQ {
		msgs := it.msgs
		for _, o := range msgs {
			if err := d.g.topics[o.Topic].Publish(ctx, o.Data); err != nil {
				d.n.log.Debug("publish", "doc", d.id, "topic", o.Topic, "err", err)
			} else {
				d.n.met.gossipOut.Inc()
			}
		}
		if traceHook != nil {
			for _, o := range msgs {
				if o.Topic == topicChanges {
					d.n.traceMsg(tracePublished, o.Data)
				}
			}
		}
		select {
		case d.acted <- it.local:
		case <-ctx.Done():
		}
	}
}

// act carries out a run of Readies (see persist).
func (d *Doc) act(ctx context.Context, batch []*readyBatch, pubQ chan<- pubItem) error {
	if err := d.Err(); err != nil {
		return err
	}
	if traceHook != nil {
		d.traceBatch(batch, tracePersist, traceRPersist)
	}
	var envs [][]byte
	sync := false
	for _, b := range batch {
		envs = append(envs, b.rd.Persist...)
		sync = sync || b.needsSync()
	}
	if len(envs) > 0 {
		t0 := time.Now()
		if err := d.n.store.Append(d.id, envs, sync); err != nil {
			err = fmt.Errorf("%w: document %q: %w", ErrStorage, d.id, err)
			d.n.log.Error("storage error: document stops accepting writes", "doc", d.id, "err", err)
			d.n.met.storageErrors.Inc()
			d.mu.Lock()
			d.err = err
			d.mu.Unlock()
			d.n.handleAlert(Alert{Doc: d.id, Kind: "storage", Reason: "storage-error", Detail: err.Error(), Time: time.Now()})
			return err
		}
		d.n.met.persistSeconds.Observe(time.Since(t0).Seconds())
		d.n.met.persisted.Add(float64(len(envs)))
	}
	if traceHook != nil {
		d.traceBatch(batch, traceDurable, traceRDurable)
	}
	for _, b := range batch {
		if b.snap != nil {
			d.saveSnapshot(b.snap)
			continue
		}
		b.published = d.deliverReady(ctx, b, pubQ)
		for _, w := range b.acks {
			w.done <- nil
		}
	}
	return nil
}

// deliverReady queues the broadcasts (for the publisher) and the sends of
// one durable Ready and delivers its events. It reports whether the
// publisher took the Ready (and will report it to the loop).
func (d *Doc) deliverReady(ctx context.Context, b *readyBatch, pubQ chan<- pubItem) (published bool) {
	rd := b.rd
	if len(rd.Broadcast) > 0 {
		select {
		case pubQ <- pubItem{msgs: rd.Broadcast, local: b.local}:
			published = true
		case <-ctx.Done():
		}
	}
	for _, s := range rd.Send {
		d.n.sync.send(s.To, d.id, s.Data)
	}
	if traceHook != nil {
		d.n.traceReadyStage(&rd, traceCallback, false, time.Now())
	}
	d.subMu.Lock()
	subs := make([]func(crdt.ChangeEvent), 0, len(d.subs))
	for _, fn := range d.subs {
		subs = append(subs, fn)
	}
	psubs := make([]func(PresenceEvent), 0, len(d.psubs))
	for _, fn := range d.psubs {
		psubs = append(psubs, fn)
	}
	d.subMu.Unlock()
	for _, ev := range rd.Applied {
		for _, fn := range subs {
			fn(ev)
		}
	}
	for _, ev := range rd.Presence {
		for _, fn := range psubs {
			fn(ev)
		}
	}
	for _, a := range rd.Alerts {
		a.Doc = d.id
		if a.Time.IsZero() {
			a.Time = time.Now()
		}
		d.n.handleAlert(a)
	}
	d.n.met.applied.Add(float64(len(rd.Applied)))
	d.progress(len(rd.Applied))
	return published
}

// step hands one input to the engine. It locks per message so readers
// and the persister never wait for a whole batch of signature checks.
func (d *Doc) step(m inMsg) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stepLocked(m)
}

func (d *Doc) stepLocked(m inMsg) {
	switch m.peerEvent {
	case peerUp:
		d.e.PeerUp(m.from)
		return
	case peerDown:
		d.e.PeerDown(m.from)
		return
	}
	if traceHook != nil {
		d.n.traceMsg(traceStep, m.data)
	}
	if err := d.e.Step(m.from, m.data); err != nil {
		d.n.log.Debug("step", "doc", d.id, "peer", m.from, "err", err)
	}
}

func (d *Doc) proposeLocked(w *writeReq, pending []*writeReq) []*writeReq {
	if d.err != nil {
		w.done <- d.err
		return pending
	}
	var err error
	if traceHook != nil {
		w.taken = time.Now()
	}
	if w.presence != nil {
		err = d.e.SetPresence(w.presence.Namespace, w.presence.Key, w.presence.Value)
	} else {
		err = d.e.Propose(w.ops...)
	}
	if err != nil {
		w.done <- err
		return pending
	}
	return append(pending, w)
}

func (d *Doc) failWrites(ws []*writeReq, err error) {
	for _, w := range ws {
		w.done <- err
	}
}

func (d *Doc) drainWrites(err error) {
	for {
		select {
		case w := <-d.writes:
			w.done <- err
		default:
			return
		}
	}
}

// progress logs a progress report every second while a catch-up (a burst
// of more than 1,000 applied changes) runs.
func (d *Doc) progress(applied int) {
	if applied == 0 {
		return
	}
	now := time.Now()
	d.progMu.Lock()
	p := &d.prog
	if now.Sub(p.last) > time.Second {
		*p = catchup{start: now, logged: now}
	}
	p.last = now
	p.applied += applied
	report := p.applied >= 1000 && now.Sub(p.logged) >= time.Second
	if report {
		p.logged = now
	}
	n, rate := p.applied, float64(p.applied)/max(now.Sub(p.start).Seconds(), 1e-3)
	d.progMu.Unlock()
	if report {
		d.n.log.Info("catch-up progress", "doc", d.id, "applied", n, "changes", d.Len(), "per_second", int(rate))
	}
}

// CatchUp describes the current burst of applied changes (a catch-up
// when it is large), as the status shows it.
type CatchUp struct {
	Active    bool    `json:"active"`     // changes applied in the last second
	Applied   int     `json:"applied"`    // changes applied in this burst
	PerSecond float64 `json:"per_second"` // over the burst
}

// CatchUp returns the progress of the current burst of applied changes.
func (d *Doc) CatchUp() CatchUp {
	d.progMu.Lock()
	defer d.progMu.Unlock()
	p := d.prog
	if p.applied == 0 || time.Since(p.last) > time.Second {
		return CatchUp{}
	}
	return CatchUp{Active: true, Applied: p.applied, PerSecond: float64(p.applied) / max(p.last.Sub(p.start).Seconds(), 1e-3)}
}

// write submits a local write and waits until it is durable (or failed).
func (d *Doc) write(ctx context.Context, w *writeReq) error {
	w.done = make(chan error, 1)
	select {
	case d.writes <- w:
	case <-ctx.Done():
		return ctx.Err()
	case <-d.n.ctx.Done():
		return ErrNodeClosed
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return ctx.Err() // the write may still complete
	}
}

// Cols are the columns of an insert: values are nil, bool, int, int64,
// float64, string, []byte or crdt.Value.
type Cols map[string]any

func toValues(cols Cols) (map[string]crdt.Value, error) {
	out := make(map[string]crdt.Value, len(cols))
	for k, v := range cols {
		cv, err := crdt.ValueOf(v)
		if err != nil {
			return nil, fmt.Errorf("node: column %q: %w", k, err)
		}
		out[k] = cv
	}
	return out, nil
}

// Insert inserts (or replaces) a row. It returns once the change is signed
// and durable; it is then published.
func (d *Doc) Insert(ctx context.Context, table, row string, cols Cols) error {
	vs, err := toValues(cols)
	if err != nil {
		return err
	}
	return d.write(ctx, &writeReq{ops: []crdt.Op{crdt.Insert(table, row, vs)}})
}

// Update sets one column of a row.
func (d *Doc) Update(ctx context.Context, table, row, col string, v any) error {
	cv, err := crdt.ValueOf(v)
	if err != nil {
		return fmt.Errorf("node: column %q: %w", col, err)
	}
	return d.write(ctx, &writeReq{ops: []crdt.Op{crdt.Update(table, row, col, cv)}})
}

// Delete deletes a row.
func (d *Doc) Delete(ctx context.Context, table, row string) error {
	return d.write(ctx, &writeReq{ops: []crdt.Op{crdt.Delete(table, row)}})
}

// Tx collects the ops of one transaction (see Doc.Change).
type Tx struct {
	d   *Doc
	ops []crdt.Op
	err error
}

// Insert adds an insert of a row.
func (tx *Tx) Insert(table, row string, cols Cols) {
	vs, err := toValues(cols)
	if err != nil {
		tx.err = errors.Join(tx.err, err)
		return
	}
	tx.ops = append(tx.ops, crdt.Insert(table, row, vs))
}

// Update adds an update of one column.
func (tx *Tx) Update(table, row, col string, v any) {
	cv, err := crdt.ValueOf(v)
	if err != nil {
		tx.err = errors.Join(tx.err, fmt.Errorf("node: column %q: %w", col, err))
		return
	}
	tx.ops = append(tx.ops, crdt.Update(table, row, col, cv))
}

// Delete adds a delete of a row.
func (tx *Tx) Delete(table, row string) { tx.ops = append(tx.ops, crdt.Delete(table, row)) }

// Add adds ops built with the crdt package.
func (tx *Tx) Add(ops ...crdt.Op) { tx.ops = append(tx.ops, ops...) }

// Get reads a row as the document is now (without the transaction's writes).
func (tx *Tx) Get(table, row string) (crdt.Row, bool) { return tx.d.Get(table, row) }

// Change runs fn and commits the ops it collected as one change (one
// signature). If fn returns an error nothing is written.
func (d *Doc) Change(ctx context.Context, fn func(tx *Tx) error) error {
	tx := &Tx{d: d}
	if err := fn(tx); err != nil {
		return err
	}
	if tx.err != nil {
		return tx.err
	}
	if len(tx.ops) == 0 {
		return nil
	}
	return d.write(ctx, &writeReq{ops: tx.ops})
}

// Get returns a row and whether it is visible.
func (d *Doc) Get(table, row string) (crdt.Row, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.e.Doc().Get(table, row)
}

// Scan returns the visible rows of a table, ordered by key.
func (d *Doc) Scan(table string) []crdt.Row {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.e.Doc().Scan(table)
}

// Tables returns the tables that have visible rows, sorted.
func (d *Doc) Tables() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.e.Doc().Tables()
}

// Heads returns the current version (the heads of the change graph).
func (d *Doc) Heads() crdt.Version {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.e.Doc().Heads()
}

// Len returns the number of changes in the document.
func (d *Doc) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.e.Doc().Graph().Len()
}

// StateHash returns the hash of the materialized state: two replicas with
// the same hash hold the same tables.
func (d *Doc) StateHash() [32]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.e.Doc().StateHash()
}

// At returns a read-only copy of the document at an earlier version. The
// copy belongs to the caller.
func (d *Doc) At(v crdt.Version) (*crdt.Doc, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.e.Doc().At(v)
}

// Diff returns the cell changes between two versions.
func (d *Doc) Diff(from, to crdt.Version) ([]crdt.CellDiff, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.e.Doc().Diff(from, to)
}

// Subscribe calls fn with every change applied to the document (local
// and remote), in apply order, once the change is stored, until cancel is
// called. fn is called from the document's persister goroutine, one call
// at a time: it should return quickly (it delays the document's writes),
// may read the document, and must not write to it (the write would wait
// for fn to return).
func (d *Doc) Subscribe(fn func(crdt.ChangeEvent)) (cancel func()) {
	d.subMu.Lock()
	defer d.subMu.Unlock()
	id := d.nextID
	d.nextID++
	d.subs[id] = fn
	return func() {
		d.subMu.Lock()
		defer d.subMu.Unlock()
		delete(d.subs, id)
	}
}

// Presence is a document's ephemeral state (presence, cursors): signed,
// never persisted, expiring.
type Presence struct{ d *Doc }

// Set sets this node's value for (ns, key) and broadcasts it.
func (p *Presence) Set(ctx context.Context, ns, key string, v any) error {
	cv, err := crdt.ValueOf(v)
	if err != nil {
		return fmt.Errorf("node: presence %s/%s: %w", ns, key, err)
	}
	return p.d.write(ctx, &writeReq{presence: &PresenceEntry{Namespace: ns, Key: key, Value: cv}})
}

// List returns the live entries, in the engine's stable order.
func (p *Presence) List() []PresenceEntry {
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	return p.d.e.Presence()
}

// Watch calls fn with every presence change until cancel is called. The
// same rules as Doc.Subscribe apply to fn.
func (p *Presence) Watch(fn func(PresenceEvent)) (cancel func()) {
	d := p.d
	d.subMu.Lock()
	defer d.subMu.Unlock()
	id := d.nextID
	d.nextID++
	d.psubs[id] = fn
	return func() {
		d.subMu.Lock()
		defer d.subMu.Unlock()
		delete(d.psubs, id)
	}
}
