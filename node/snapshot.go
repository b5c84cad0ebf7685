package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/replica"
)

// SnapshotStorage is implemented by stores that keep one snapshot per
// document next to its log (MemStorage and PebbleStorage do). A snapshot
// is the document's materialized state at a version (crdt.Doc.AppendSnapshot):
// on restart the node loads it and replays only the log entries it does
// not cover. The node works without one (it replays the whole log).
type SnapshotStorage interface {
	// SaveSnapshot replaces doc's snapshot with snap, atomically: after a
	// crash the store holds either the old snapshot or the new one, never
	// a mix. It returns once the new snapshot, and every earlier Append,
	// would survive a machine crash (fsync). The node calls it from the
	// goroutine that appends doc's log, after the appends the snapshot
	// covers.
	SaveSnapshot(doc string, snap []byte) error
	// LoadSnapshot returns doc's snapshot, or nil if there is none.
	LoadSnapshot(doc string) ([]byte, error)
}

var (
	_ SnapshotStorage = (*MemStorage)(nil)
	_ SnapshotStorage = (*PebbleStorage)(nil)
)

// DefaultSnapshotEvery is the default of Config.SnapshotEvery.
const DefaultSnapshotEvery = 100_000

// SaveSnapshot implements SnapshotStorage. It copies snap.
func (m *MemStorage) SaveSnapshot(doc string, snap []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.snaps[doc] = slices.Clone(snap)
	return nil
}

// LoadSnapshot implements SnapshotStorage.
func (m *MemStorage) LoadSnapshot(doc string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	return slices.Clone(m.snaps[doc]), nil
}

// Snapshots are stored in chunks (one Pebble value each), under
//
//	's' uvarint(len(doc)) doc uint32be(chunk) -> bytes
//
// and replaced in one synced batch that deletes the old chunks.
const snapChunk = 1 << 20

func snapKey(doc string, i uint32) []byte {
	return binary.BigEndian.AppendUint32(docKey('s', doc, 4), i)
}

// SaveSnapshot implements SnapshotStorage: one batch deletes the old
// chunks and writes the new ones, committed with fsync.
func (s *PebbleStorage) SaveSnapshot(doc string, snap []byte) error {
	return s.locked(func() error { return s.saveSnapshotLocked(doc, snap) })
}

func (s *PebbleStorage) saveSnapshotLocked(doc string, snap []byte) error {
	b := s.db.NewBatch()
	defer b.Close()
	lo, hi := docKey('s', doc, 0), append(docKey('s', doc, 0), 0xff, 0xff, 0xff, 0xff, 0xff)
	if err := b.DeleteRange(lo, hi, nil); err != nil {
		return fmt.Errorf("node: store: snapshot of %q: %w", doc, err)
	}
	for i := 0; i == 0 || i*snapChunk < len(snap); i++ {
		chunk := snap[i*snapChunk : min(len(snap), (i+1)*snapChunk)]
		if err := b.Set(snapKey(doc, uint32(i)), chunk, nil); err != nil {
			return fmt.Errorf("node: store: snapshot of %q: %w", doc, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("node: store: snapshot of %q: %w", doc, err)
	}
	return nil
}

// LoadSnapshot implements SnapshotStorage.
func (s *PebbleStorage) LoadSnapshot(doc string) ([]byte, error) {
	s.mu.Lock()
	db := s.db
	s.mu.Unlock()
	if db == nil {
		return nil, ErrClosed
	}
	lo := docKey('s', doc, 0)
	hi := append(docKey('s', doc, 0), 0xff, 0xff, 0xff, 0xff, 0xff)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("node: store: load snapshot of %q: %w", doc, err)
	}
	// Every chunk but the last is snapChunk bytes: size the buffer from
	// the last one.
	var out []byte
	if it.Last() && len(it.Key()) == len(lo)+4 {
		n := int(binary.BigEndian.Uint32(it.Key()[len(lo):]))
		if v, err := it.ValueAndErr(); err == nil && n < 1<<16 {
			out = make([]byte, 0, n*snapChunk+len(v))
		}
	}
	next := uint32(0)
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(lo)+4 || binary.BigEndian.Uint32(k[len(lo):]) != next {
			it.Close()
			return nil, fmt.Errorf("node: store: snapshot of %q: unexpected key %x", doc, k)
		}
		next++
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("node: store: load snapshot of %q: %w", doc, err)
		}
		out = append(out, v...)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("node: store: load snapshot of %q: %w", doc, err)
	}
	return out, nil
}

// snapshotEngine is the part of the engine that snapshots (the replica
// engine implements it).
type snapshotEngine interface {
	Snapshot() []byte
	RestoreSnapshot(snap []byte, envs [][]byte) error
}

func (e *replicaEngine) Snapshot() []byte { return e.r.Snapshot() }
func (e *replicaEngine) RestoreSnapshot(snap []byte, envs [][]byte) error {
	return e.r.RestoreSnapshot(snap, envs)
}

// snapState is a document's snapshot bookkeeping (owned by its loop).
type snapState struct {
	ops int // ops applied since the snapshot the store holds (or since the start)
}

// snapshotEvery returns the configured interval in ops, or 0 for never.
func (n *Node) snapshotEvery() int {
	switch {
	case n.cfg.SnapshotEvery < 0:
		return 0
	case n.cfg.SnapshotEvery == 0:
		return DefaultSnapshotEvery
	}
	return n.cfg.SnapshotEvery
}

// restore loads document id from the store into e: from its snapshot and
// the log entries the snapshot does not cover when there is a usable one,
// from the whole log otherwise. A snapshot that cannot be read or used is
// reported (log warning, alert "snapshot-unusable") and the whole log is
// replayed instead: nothing is lost. The error is about bad log entries.
func (d *Doc) restore(e engine, envs [][]byte) error {
	n, id := d.n, d.id
	ss, ok1 := n.store.(SnapshotStorage)
	se, ok2 := e.(snapshotEngine)
	var covered crdt.Version
	if ok1 && ok2 {
		snap, err := ss.LoadSnapshot(id)
		if err == nil && snap != nil {
			err = se.RestoreSnapshot(snap, envs)
			if err == nil || !errors.Is(err, replica.ErrSnapshot) {
				covered, _, _ = crdt.SnapshotHeads(snap)
				d.snap.ops = tailOps(e.Doc(), covered)
				n.log.Info("document snapshot loaded", "doc", id, "bytes", len(snap), "tail_ops", d.snap.ops)
				return err
			}
		}
		if err != nil {
			n.log.Warn("document snapshot unusable: replaying the whole log", "doc", id, "err", err)
			n.handleAlert(Alert{Doc: id, Kind: "storage", Reason: "snapshot-unusable", Detail: err.Error(), Time: time.Now()})
		}
	}
	err := e.Restore(envs)
	d.snap.ops = tailOps(e.Doc(), nil)
	return err
}

// tailOps counts the ops of the changes of d not in the causal past of v.
func tailOps(d *crdt.Doc, v crdt.Version) int {
	n := 0
	for _, id := range d.Graph().Since(v) {
		c, _ := d.Graph().Get(id)
		n += len(c.Ops)
	}
	return n
}

// countApplied notes the ops of a Ready's applied changes.
func (d *Doc) countApplied(rd *ready) {
	for _, ev := range rd.Applied {
		if ev.Change != nil {
			d.snap.ops += len(ev.Change.Ops)
		}
	}
}

// maybeSnapshot hands a snapshot of the document to the persister once
// enough ops were applied since the last one (or, with final, if any
// was), after every Ready it has taken: the persister writes it after the
// appends of those Readies, so a stored snapshot never covers a change
// the log lacks. It is called by the loop (the only writer of the
// engine) with nothing left in the engine's Ready; the encoding reads the
// document without the lock (readers only read too). It returns false if
// ctx ended while it waited for the persister.
func (d *Doc) maybeSnapshot(ctx context.Context, inflight *int, final bool) bool {
	every := d.n.snapshotEvery()
	if every == 0 || d.snap.ops == 0 || (!final && d.snap.ops < every) || d.Err() != nil {
		return true
	}
	se, ok := d.e.(snapshotEngine)
	if _, ok2 := d.n.store.(SnapshotStorage); !ok || !ok2 || d.e.HasReady() {
		return true
	}
	t0 := time.Now()
	snap := se.Snapshot()
	d.n.log.Debug("document snapshot taken", "doc", d.id, "bytes", len(snap), "ops_since", d.snap.ops, "took", time.Since(t0))
	d.snap.ops = 0
	b := &readyBatch{snap: snap}
	if final {
		d.readyQ <- b // the persister drains the queue until it is closed
		return true
	}
	for {
		select {
		case d.readyQ <- b:
			return true
		case local := <-d.acted:
			*inflight -= d.advance(local)
		case <-ctx.Done():
			return false
		}
	}
}

// saveSnapshot writes a snapshot handed over by the loop (see
// maybeSnapshot). A failure is reported and otherwise ignored: the log
// still holds everything.
func (d *Doc) saveSnapshot(snap []byte) {
	ss, ok := d.n.store.(SnapshotStorage)
	if !ok {
		return
	}
	t0 := time.Now()
	if err := ss.SaveSnapshot(d.id, snap); err != nil {
		d.n.log.Warn("document snapshot not saved", "doc", d.id, "err", err)
		d.n.handleAlert(Alert{Doc: d.id, Kind: "storage", Reason: "snapshot-save", Detail: err.Error(), Time: time.Now()})
		return
	}
	d.n.log.Info("document snapshot saved", "doc", d.id, "bytes", len(snap), "took", time.Since(t0))
}
