// Package crdt is convergenode's data model: replicated documents of
// tables, rows and columns that any number of peers edit concurrently and
// that converge to the same state whatever order the edits arrive in.
//
// # Overview
//
// A document ([Doc]) is built from changes ([Change]). A change is a run of
// ops ([Op]: insert, update or delete of a row) by one author, with the
// author's sequence number and Lamport time, the ID of the author's previous
// change and the IDs of the changes the author had seen (its parents). A
// change has one canonical binary encoding ([Change.Encode],
// [DecodeChange]) and is identified by the BLAKE3 hash of it
// ([HashChange]): the ID that is signed, gossiped and stored elsewhere.
//
// The changes form a hash DAG ([Graph]): [Graph.Heads] is the current
// version ([Version]), [Graph.IsAncestor] answers "is X in the causal past
// of Y", [Graph.Since] lists what a peer at some version lacks, in causal
// order, and [Graph.Topo] lists everything in a deterministic order.
//
// The document materializes the DAG into tables. Ops are totally ordered by
// (lamport, author, seq, change ID), each cell is a last-writer-wins register
// and rows follow one written rule (docs/semantics.md): the state is what
// executing every op in that order would give, with insert meaning
// insert-or-replace, update changing only existing rows and delete removing
// the row. The state depends only on the set of changes applied, so replicas
// that hold the same changes have the same [Doc.StateHash]. The tables are a
// cache of the DAG: [Doc.At] rebuilds the state at any earlier version and
// [Doc.Diff] compares two versions cell by cell.
//
// The package is a deterministic core: it does no I/O, starts no
// goroutines, never reads the clock (a time hint comes from
// [DocOptions].Now) and uses no randomness. A Doc's writes must be
// serialised by the caller; its reads may run concurrently with each other.
//
// # Usage
//
// Local writes make a change, apply it, and return it with its ID so the
// caller can sign and send it:
//
//	d := crdt.NewDoc(crdt.DocOptions{ID: "todo", Author: myKey})
//	c, id, err := d.Insert("tasks", "t1", map[string]crdt.Value{"title": crdt.String("milk")})
//	c, id, err = d.Change(func(tx *crdt.Tx) error { // several ops, one change
//		tx.Update("tasks", "t1", "done", crdt.Bool(true))
//		tx.Delete("tasks", "t0")
//		return nil
//	})
//
// Remote changes, once checked (the bft gate verifies the ID, the signature
// and causal validity), are applied with [Doc.Apply] in causal order: every
// parent first ([Graph.Missing] names the ones still lacking). Duplicates
// are refused with [ErrDuplicate]. Reads are [Doc.Get], [Doc.Scan] and
// [Doc.Tables]; [Doc.Subscribe] reports what every applied change did to
// rows. To bring a peer up to date, send it [Graph.Since] of its heads.
//
// A snapshot ([Doc.AppendSnapshot]) encodes the merge state of every row
// with the version it covers, naming the op behind each value rather than
// repeating it; [Doc.LoadSnapshot] rebuilds a document from a snapshot and
// the changes it covers without applying their ops, and later changes
// apply on top exactly as on a document that applied everything (see
// docs/wire-format.md, "Document snapshot").
//
// The memory a document keeps grows with its history: the changes
// themselves (a change is stored once, as the run of ops it arrived as, with
// table and column names shared) plus the visible tables and the
// tombstones of deleted rows.
package crdt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unsafe"
)

// Doc errors.
var (
	ErrWrongDoc = errors.New("crdt: change for another document")
)

// StateDomain is the domain-separation string hashed before the encoded
// materialized state by [Doc.StateHash].
const StateDomain = "convergenode/state/v1"

// DocOptions configures a Doc.
type DocOptions struct {
	// ID is the document ID. Apply refuses changes for another document,
	// and local changes carry it.
	ID string
	// Author is the key local changes are made by (Prepare, Insert, ...).
	Author Author
	// Now returns the wall-clock time in Unix milliseconds, used only as the
	// Time hint of local changes. nil means 0 (no hint).
	Now func() int64
	// NoEventRows leaves ChangeEvent.Rows empty, in what Apply returns
	// and what subscribers get: for a caller that reads only which changes
	// were applied (the simulator), it saves building the rows, two
	// allocations and a copy of every touched row's columns per change.
	// The document's state is the same either way.
	NoEventRows bool
}

// Row is one visible row: its key and its columns, sorted by name.
type Row struct {
	Key  string
	Cols []Col
}

// Col returns the value of the column name and whether the row has it.
func (r Row) Col(name string) (Value, bool) {
	i, ok := slices.BinarySearchFunc(r.Cols, name, func(c Col, n string) int { return cmpString(c.Name, n) })
	if !ok {
		return Value{}, false
	}
	return r.Cols[i].Value, true
}

// RowChangeKind says what a change did to a visible row.
type RowChangeKind uint8

// The row change kinds.
const (
	RowInserted RowChangeKind = 1 // the row was not visible before and is now
	RowUpdated  RowChangeKind = 2 // the row was visible before and after; columns were written
	RowDeleted  RowChangeKind = 3 // the row was visible before and is not now
)

func (k RowChangeKind) String() string {
	switch k {
	case RowInserted:
		return "inserted"
	case RowUpdated:
		return "updated"
	case RowDeleted:
		return "deleted"
	}
	return "rowchange(" + strconv.Itoa(int(k)) + ")"
}

// RowChange is what one applied change did to one row.
type RowChange struct {
	Table string
	Key   string
	Kind  RowChangeKind
	Cols  []Col // the row's visible columns after the change; nil for RowDeleted
}

// ChangeEvent is what one applied change did: the rows whose visible state
// it altered, in the order the change first touched them. Ops that lost to
// newer ops, or that touched only invisible rows, leave no RowChange. A
// document made with DocOptions.NoEventRows leaves Rows empty.
type ChangeEvent struct {
	ID     ID
	Change *Change
	Rows   []RowChange
}

type authorTip struct {
	seq uint64 // last seq of the author's newest change
	id  ID
}

type subscriber struct {
	id uint64
	fn func(ChangeEvent)
}

// Doc is a replicated document: a hash DAG of changes and the tables they
// materialize. It is a deterministic state machine: it does no I/O and reads
// no clock (except through DocOptions.Now for time hints).
//
// Doc is not safe for concurrent use with its writing methods (Apply,
// Insert, Update, Delete, Change, Prepare, Subscribe). Its read methods
// (ID, Heads, Get, Scan, Tables, StateHash, At, Diff and the Graph's
// queries) do not modify it, so they may run concurrently with each other,
// for example under a read lock.
type Doc struct {
	opts   DocOptions
	g      *Graph
	tables map[string]*table
	// lastTable is the table the last applied op wrote (nil if none):
	// changes tend to write the table the previous one did, and the
	// comparison of its name costs less than the map lookup. Reset
	// whenever tables is replaced.
	lastTable *table
	// lastName is the name intern returned last: a change's columns
	// tend to be the last one's, and a comparison costs less than the
	// names map, whose lines are cold when a process holds many
	// documents.
	lastName  string
	names     map[string]string // interned table and column names
	touched   []touch           // scratch for Apply
	cellSlab  []cell            // new rows' cells are carved from it (newCells)
	rowsHint  int               // rows to reserve in each new table (Reserve)
	cellsHint int               // the size of the next cell slab, if larger (Reserve)
	subs      []subscriber
	nextSub   uint64
	tips      authorTip // the newest change of opts.Author (Prepare continues it)
}

type touch struct {
	t   *table
	key string
	rs  *rowState
	was bool // visible before the change
	won bool // some op of the change won on this row
}

// NewDoc returns an empty document.
func NewDoc(opts DocOptions) *Doc {
	return &Doc{
		opts:   opts,
		g:      NewGraph(),
		tables: make(map[string]*table),
		names:  make(map[string]string),
	}
}

// Reserve makes room for about changes more changes, and in each table
// created from now on for about rows rows, so that applying them does not
// grow the graph and the row indexes step by step; the next rows created
// take their cells (one each, at least) from one slab. It is a size hint
// for programs that hold many documents, such as a simulation's replicas,
// and never changes a result.
func (d *Doc) Reserve(changes, rows int) {
	d.g.Reserve(changes)
	d.rowsHint = max(rows, 0)
	d.cellsHint = max(rows, 0)
}

// ID returns the document ID.
func (d *Doc) ID() string { return d.opts.ID }

// Graph returns the document's change graph. Callers must not add to it
// directly (use [Doc.Apply]), or the tables fall out of step.
func (d *Doc) Graph() *Graph { return d.g }

// Heads returns the document's current version.
func (d *Doc) Heads() Version { return d.g.Heads() }

func (d *Doc) intern(s string) string {
	if s == d.lastName {
		return d.lastName
	}
	v, ok := d.names[s]
	if !ok {
		d.names[s] = s
		v = s
	}
	d.lastName = v
	return v
}

// Apply applies the change c with ID id (trusted: the caller, normally the
// BFT gate, has checked the ID, the signature and causal validity). All of
// c's parents must already be applied (ErrMissingParents); a change already
// applied gives ErrDuplicate. The subscribers are called, in subscription
// order, before Apply returns. The Doc keeps c: it must not be modified
// afterwards. Apply may replace strings inside c (names, row keys, the
// document ID) by equal strings the Doc already holds, to keep one copy of
// each; the content of c stays the same. It never writes to a frozen c
// ([Change.Freeze]).
func (d *Doc) Apply(id ID, c *Change) (ChangeEvent, error) {
	return d.apply(id, c, true)
}

func (d *Doc) apply(id ID, c *Change, event bool) (ChangeEvent, error) {
	if err := d.check(id, c); err != nil {
		return ChangeEvent{}, err
	}
	ni, err := d.g.add(id, c)
	if err != nil {
		return ChangeEvent{}, err
	}
	d.noteTip(id, c)
	ev := ChangeEvent{ID: id, Change: c}
	event = (event || len(d.subs) > 0) && !d.opts.NoEventRows
	d.materialize(uint32(ni)+1, c, event)
	if event {
		ev.Rows = d.rowChanges()
	}
	d.touched = d.touched[:0]
	for _, s := range d.subs {
		s.fn(ev)
	}
	return ev, nil
}

// check refuses what Apply cannot apply: another document's change, or
// ops the merge cannot handle.
func (d *Doc) check(id ID, c *Change) error {
	if c == nil {
		return fmt.Errorf("%w: nil change", ErrInvalid)
	}
	if c.Doc != d.opts.ID {
		return fmt.Errorf("%w: change %s is for %q, not %q", ErrWrongDoc, id.Short(), c.Doc, d.opts.ID)
	}
	if len(c.Ops) == 0 || len(c.Ops) > MaxOps {
		return fmt.Errorf("%w: change %s has %d ops", ErrInvalid, id.Short(), len(c.Ops))
	}
	for i := range c.Ops {
		o := &c.Ops[i]
		bad := (o.Kind == OpUpdate && len(o.Cols) != 1) || (o.Kind == OpDelete && len(o.Cols) != 0) ||
			o.Kind < OpInsert || o.Kind > OpDelete
		for k := 1; k < len(o.Cols) && !bad; k++ {
			bad = o.Cols[k-1].Name >= o.Cols[k].Name // the merge relies on sorted insert columns
		}
		if bad {
			return fmt.Errorf("%w: change %s op %d malformed", ErrInvalid, id.Short(), i)
		}
	}
	return nil
}

// noteTip records c (ID id) as the Doc author's newest change if it is.
// Only the Doc's own author's tip is kept: it is all Prepare needs, and a
// document with many authors need not pay for a map of them.
func (d *Doc) noteTip(id ID, c *Change) {
	if c.Author != d.opts.Author {
		return
	}
	if t := d.tips; t.seq == 0 || c.LastSeq() > t.seq || (c.LastSeq() == t.seq && id.Compare(t.id) > 0) {
		d.tips = authorTip{seq: c.LastSeq(), id: id}
	}
}

// materialize applies the ops of the change at graph node node-1.
//
// It also makes the change share strings with the document: table and
// column names and row keys that the document already holds replace the
// change's own equal copies, so a long history keeps one copy of each name
// and key (the content of the change does not change). A frozen change
// (Change.Freeze) is left as it is.
func (d *Doc) materialize(node uint32, c *Change, event bool) {
	sh := !c.frozen // a frozen change is never written to (Change.Freeze)
	if sh {
		share(&c.Doc, d.opts.ID)
	}
	lastT := d.lastTable
	var colIn, colOut string // the last column name shared
	for i := range c.Ops {
		o := &c.Ops[i]
		t := lastT
		if t == nil || t.name != o.Table {
			t = d.tables[o.Table]
			if t == nil {
				name := d.intern(o.Table)
				t = &table{name: name}
				t.rows.reserve(d.rowsHint)
				d.tables[name] = t
			}
			lastT = t
		}
		if sh {
			share(&o.Table, t.name)
		}
		rs := t.get(o.Row)
		if rs == nil {
			rs = t.add(o.Row)
		}
		if sh {
			share(&o.Row, rs.key)
		}
		for k := range o.Cols {
			if !sh {
				break
			}
			name := &o.Cols[k].Name
			if unsafe.StringData(*name) != unsafe.StringData(colIn) || len(*name) != len(colIn) {
				colIn, colOut = *name, d.intern(*name)
			}
			share(name, colOut)
		}
		was := rs.alive
		at := opRef{node: node, i: uint32(i)}
		var won bool
		switch o.Kind {
		case OpInsert:
			won = d.applyInsert(rs, at, o.Cols)
		case OpUpdate:
			won = d.applyUpdate(rs, at, o.Cols[0])
		case OpDelete:
			won = d.applyDelete(rs, at)
		}
		if rs.alive != was {
			if rs.alive {
				t.live++
			} else {
				t.live--
			}
		}
		if event {
			d.touch(t, rs.key, rs, was, won)
		}
	}
	d.lastTable = lastT
}

// share sets *dst to canon, which must be equal to it, unless it already
// is the same string: only real replacements write, so replaying changes
// that already share (Doc.At) never writes to them.
func share(dst *string, canon string) {
	if unsafe.StringData(*dst) != unsafe.StringData(canon) {
		*dst = canon
	}
}

// touch records that the current change touched row rs. The row's entry
// is found through rs.touch (a stale index, from an earlier change, names
// another row or none), so a change of n ops costs O(n), not O(n²).
func (d *Doc) touch(t *table, key string, rs *rowState, was, won bool) {
	if k := int(rs.touch); k < len(d.touched) && d.touched[k].rs == rs {
		d.touched[k].won = d.touched[k].won || won
		return
	}
	rs.touch = int32(len(d.touched))
	d.touched = append(d.touched, touch{t: t, key: key, rs: rs, was: was, won: won})
}

func (d *Doc) rowChanges() []RowChange {
	n, ncols := 0, 0
	for _, tc := range d.touched {
		if tc.won && (tc.was || tc.rs.alive) {
			n++
			if tc.rs.alive {
				ncols += len(tc.rs.cells)
			}
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]RowChange, 0, n)
	slab := make([]Col, ncols) // one allocation for every row's columns
	for _, tc := range d.touched {
		if !tc.won {
			continue
		}
		rc := RowChange{Table: tc.t.name, Key: tc.key}
		switch {
		case tc.was && tc.rs.alive:
			rc.Kind = RowUpdated
		case !tc.was && tc.rs.alive:
			rc.Kind = RowInserted
		case tc.was && !tc.rs.alive:
			rc.Kind = RowDeleted
		default:
			continue
		}
		if tc.rs.alive {
			k := len(tc.rs.cells)
			rc.Cols = slab[:k:k]
			slab = slab[k:]
			for j, c := range tc.rs.cells {
				rc.Cols[j] = Col{Name: c.name, Value: c.v}
			}
		}
		out = append(out, rc)
	}
	return out
}

// Prepare builds the next local change by the Doc's author holding ops,
// without applying it: Seq and Prev continue the author's chain, Parents
// are the current heads (at most MaxParents of them) and Lamport is one
// more than the largest Lamport time of any op in the parents. The ops
// slice is copied; the ops' column slices are shared and must not be
// modified afterwards. It fails if the change would be invalid.
func (d *Doc) Prepare(ops []Op) (*Change, error) {
	return d.prepare(slices.Clone(ops))
}

// prepare is Prepare taking ownership of ops.
func (d *Doc) prepare(ops []Op) (*Change, error) {
	parents := d.g.Heads()
	tip := d.tips
	if len(parents) > MaxParents {
		// Keep a head that has the author's own tip in its past (the tip
		// itself when it is a head), so that Prev stays in the causal past
		// of the new change, then the newest heads.
		anchor := tip.id
		if !tip.id.IsZero() && !slices.Contains(parents, tip.id) {
			for _, h := range parents {
				if d.g.IsAncestor(tip.id, h) {
					anchor = h
					break
				}
			}
		}
		slices.SortFunc(parents, func(a, b ID) int {
			if a == anchor {
				return -1
			}
			if b == anchor {
				return 1
			}
			la, lb := d.g.lookup(a).c.LastLamport(), d.g.lookup(b).c.LastLamport()
			if la != lb {
				if la > lb {
					return -1
				}
				return 1
			}
			return a.Compare(b)
		})
		parents = SortIDs(parents[:MaxParents])
	}
	var lamport uint64
	for _, p := range parents {
		if l := d.g.lookup(p).c.LastLamport(); l > lamport {
			lamport = l
		}
	}
	var now int64
	if d.opts.Now != nil {
		now = d.opts.Now()
	}
	c := &Change{
		Doc:     d.opts.ID,
		Author:  d.opts.Author,
		Seq:     tip.seq + 1,
		Lamport: lamport + 1,
		Prev:    tip.id,
		Parents: parents,
		Time:    now,
		Ops:     ops,
	}
	if len(c.Parents) == 0 {
		c.Parents = nil
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("crdt: prepare: %w", err)
	}
	return c, nil
}

// commit prepares, hashes and applies a local change.
func (d *Doc) commit(ops []Op) (*Change, ID, error) {
	c, err := d.prepare(ops)
	if err != nil {
		return nil, ID{}, err
	}
	id, err := c.ID()
	if err != nil {
		return nil, ID{}, err
	}
	if _, err := d.Apply(id, c); err != nil {
		return nil, ID{}, err
	}
	return c, id, nil
}

// Insert makes and applies a local change inserting (or replacing) a row.
// It returns the change (to sign and send) and its ID.
func (d *Doc) Insert(table, row string, cols map[string]Value) (*Change, ID, error) {
	return d.commit([]Op{Insert(table, row, cols)})
}

// Update makes and applies a local change setting one column of a row. It
// does nothing visible if the row does not exist (see docs/semantics.md).
func (d *Doc) Update(table, row, col string, v Value) (*Change, ID, error) {
	return d.commit([]Op{Update(table, row, col, v)})
}

// Delete makes and applies a local change deleting a row.
func (d *Doc) Delete(table, row string) (*Change, ID, error) {
	return d.commit([]Op{Delete(table, row)})
}

// Get returns the visible row key of table, if any. The returned row is a
// copy.
func (d *Doc) Get(table, row string) (Row, bool) {
	t := d.tables[table]
	if t == nil {
		return Row{}, false
	}
	rs := t.get(row)
	if rs == nil || !rs.alive {
		return Row{}, false
	}
	return Row{Key: row, Cols: rs.visibleCols()}, true
}

// Scan returns the visible rows of table, sorted by key.
func (d *Doc) Scan(table string) []Row {
	t := d.tables[table]
	if t == nil || t.live == 0 {
		return nil
	}
	keys := t.liveKeys()
	rows := make([]Row, len(keys))
	for k, key := range keys {
		rows[k] = Row{Key: key, Cols: t.get(key).visibleCols()}
	}
	return rows
}

func (t *table) liveKeys() []string {
	keys := make([]string, 0, t.live)
	for rs := range t.rows.all {
		if rs.alive {
			keys = append(keys, rs.key)
		}
	}
	for i := range t.base { // rows loaded from a snapshot (table.go)
		if t.base[i].alive {
			keys = append(keys, t.base[i].key)
		}
	}
	slices.Sort(keys)
	return keys
}

// Tables returns the names of the tables that have at least one visible
// row, sorted.
func (d *Doc) Tables() []string {
	var names []string
	for n, t := range d.tables {
		if t.live > 0 {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// StateHash returns the BLAKE3-256 hash of the visible state: every table
// with visible rows, its rows and their columns, in sorted order (see
// docs/semantics.md for the exact encoding). Two docs with the same visible
// tables have the same hash whatever their histories; heads are not
// included.
func (d *Doc) StateHash() [32]byte {
	// A pooled hasher: a new one is 3.3 KB, and a simulation hashes every
	// replica's state at its end (100,000 of them at its peak of memory).
	st := hasherPool.Get().(*hashState)
	defer hasherPool.Put(st)
	h := st.h
	h.Reset()
	h.Write(stateDomainBytes)
	var buf []byte
	for _, name := range d.Tables() {
		t := d.tables[name]
		buf = appendBytes(buf[:0], name)
		buf = binary.AppendUvarint(buf, uint64(t.live))
		h.Write(buf)
		for _, key := range t.liveKeys() {
			rs := t.get(key)
			buf = appendBytes(buf[:0], key)
			buf = binary.AppendUvarint(buf, uint64(len(rs.cells)))
			for _, c := range rs.cells {
				buf = appendBytes(buf, c.name)
				buf = appendValue(buf, c.v)
			}
			h.Write(buf)
		}
	}
	h.Sum(st.out[:0])
	return st.out
}

// Subscribe registers fn to be called with the event of every change
// applied from now on, synchronously inside Apply (and so inside Insert,
// Update, Delete and Change), after the change is applied. fn must not
// block and must not modify the Doc. cancel unregisters fn; it may be
// called from fn.
func (d *Doc) Subscribe(fn func(ChangeEvent)) (cancel func()) {
	d.nextSub++
	id := d.nextSub
	// Copy on write, so Apply can iterate a snapshot while fn cancels.
	d.subs = append(slices.Clip(d.subs), subscriber{id: id, fn: fn})
	return func() {
		i := slices.IndexFunc(d.subs, func(s subscriber) bool { return s.id == id })
		if i >= 0 {
			d.subs = slices.Delete(slices.Clone(d.subs), i, i+1)
		}
	}
}
