package replica

import (
	"errors"
	"fmt"
	"slices"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
)

// ErrSnapshot is wrapped by RestoreSnapshot when the snapshot cannot be
// used (unreadable, corrupt, or not matching the log). The replica is then
// unchanged, and the caller falls back to Restore of the whole log.
var ErrSnapshot = errors.New("replica: snapshot unusable")

// Snapshot returns the encoded snapshot of the document's current state
// and version ([crdt.Doc.AppendSnapshot]), to store next to the log. Every
// change it covers has been in some Ready.Persist before the call; the
// caller must make the snapshot durable only after those.
func (r *Replica) Snapshot() []byte { return r.doc.AppendSnapshot(nil) }

// RestoreSnapshot is Restore starting from a snapshot: the log entries the
// snapshot covers (the causal past of its heads) are added to the document
// without applying their ops, the tables come from the snapshot, and only
// the other entries (the tail) are replayed as Restore does.
//
// The covered entries are checked against their IDs; their signatures are
// verified too unless Config.TrustLog is set (the same rule as Restore).
// They are indexed by the gate with their signatures, in the same causal
// order Restore would use, so forks among them yield their equivocation
// proofs again and the restored replica accepts and refuses later inputs
// exactly as a replica that replayed the whole log.
//
// If the snapshot cannot be used (it is corrupt, of another document, or a
// change it covers is missing or damaged in the log) the error wraps
// ErrSnapshot and nothing has changed: call Restore(envs). Other errors
// wrap ErrRestore and are about the tail, as for Restore. Call it before
// any other input, on a new replica.
func (r *Replica) RestoreSnapshot(snap []byte, envs [][]byte) error {
	r.wake()
	if r.doc.Graph().Len() != 0 || r.gate.Metrics().BufferCount != 0 {
		return fmt.Errorf("%w: the replica is not new", ErrSnapshot)
	}
	heads, n, err := crdt.SnapshotHeads(snap)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	var errs []error
	// One entry per distinct change of the log (one map, not four: this
	// runs once per stored change).
	byID := make(map[crdt.ID]*logEntry, len(envs))
	entries := make([]logEntry, 0, len(envs))
	for i, b := range envs {
		env, err := bft.DecodeEnvelope(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: entry %d: %w", ErrRestore, i, err))
			continue
		}
		if _, dup := byID[env.ID]; !dup {
			entries = append(entries, logEntry{env: env})
		}
		byID[env.ID] = nil // placeholder; pointers are set once entries stops growing
	}
	for k := range entries {
		byID[entries[k].env.ID] = &entries[k]
	}
	// The covered set: the causal past of the snapshot's heads.
	ncov := uint64(0)
	stack := slices.Clone([]crdt.ID(heads))
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		e := byID[id]
		if e == nil {
			return fmt.Errorf("%w: change %s is covered but not in the log", ErrSnapshot, id.Short())
		}
		if e.covered {
			continue
		}
		e.covered = true
		ncov++
		stack = append(stack, e.env.Change.Parents...)
	}
	if ncov != n {
		return fmt.Errorf("%w: the snapshot covers %d changes, the log %d", ErrSnapshot, n, ncov)
	}
	var cov, tail []*logEntry
	for _, e := range causalOrder(entries, byID) {
		if e.covered {
			cov = append(cov, e)
		} else {
			tail = append(tail, e)
		}
	}
	cids := make([]crdt.ID, len(cov))
	changes := make([]*crdt.Change, len(cov))
	for k, e := range cov {
		env := e.env
		if crdt.HashChange(env.Raw) != env.ID {
			return fmt.Errorf("%w: change %s: ID does not match its bytes", ErrSnapshot, env.ID.Short())
		}
		cids[k], changes[k] = env.ID, env.Change
	}
	if !r.cfg.TrustLog {
		// Verify before anything changes, so a failure leaves the replica
		// as it was. (RestoreGate below indexes without verifying again.)
		for _, e := range cov {
			env := e.env
			if !r.cfg.SigCache.Verify(env.Change.Author, env.ID, &env.Sig) {
				return fmt.Errorf("%w: change %s: bad signature", ErrSnapshot, env.ID.Short())
			}
		}
	}
	if err := r.doc.LoadSnapshot(snap, cids, changes); err != nil {
		return fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	r.restoring = true
	defer func() { r.restoring = false }()
	indexed := make([]*bft.Envelope, 0, len(cov)+len(tail))
	for _, e := range cov {
		r.hold(e.env)
		indexed = append(indexed, e.env)
	}
	if r.cfg.TrustLog {
		// Trusted tail: apply straight to the document, then index the
		// whole log (as Restore's trusted path does, but with signatures).
		for _, e := range tail {
			env := e.env
			if err := r.applyTrusted(env); err != nil {
				errs = append(errs, err)
				continue
			}
			r.hold(env)
			indexed = append(indexed, env)
		}
		tail = nil
	}
	gate, proofs, err := bft.RestoreGate(r.cfg.Gate, r.doc, indexed, false)
	if err != nil {
		panic(fmt.Sprintf("replica: restore gate: %v", err)) // cov is exactly the document's changes
	}
	r.gate = gate
	for _, pr := range proofs {
		r.noteProof(pr, true)
	}
	rest := make([]*bft.Envelope, len(tail))
	for i, e := range tail {
		rest[i] = e.env
	}
	return r.replayGated(rest, errs)
}

// logEntry is one distinct change of the log being restored.
type logEntry struct {
	env     *bft.Envelope
	covered bool // in the causal past of the snapshot's heads
	done    bool // placed by causalOrder
}

// causalOrder returns the entries in the order Restore applies them: a
// depth-first post-order over parents, from the entries sorted by ID.
func causalOrder(entries []logEntry, byID map[crdt.ID]*logEntry) []*logEntry {
	roots := make([]*logEntry, len(entries))
	for k := range entries {
		roots[k] = &entries[k]
	}
	slices.SortFunc(roots, func(a, b *logEntry) int { return a.env.ID.Compare(b.env.ID) })
	order := make([]*logEntry, 0, len(entries))
	type frame struct {
		e *logEntry
		i int
	}
	var stack []frame
	for _, root := range roots {
		if root.done {
			continue
		}
		root.done = true
		stack = append(stack[:0], frame{e: root})
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if ps := f.e.env.Change.Parents; f.i < len(ps) {
				p := ps[f.i]
				f.i++
				if pe := byID[p]; pe != nil && !pe.done {
					pe.done = true
					stack = append(stack, frame{e: pe})
				}
				continue
			}
			order = append(order, f.e)
			stack = stack[:len(stack)-1]
		}
	}
	return order
}
