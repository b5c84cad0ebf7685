package crdt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"lukechampine.com/blake3"
)

// This file holds document snapshots: the materialized tables of a Doc
// encoded with the version they cover, so that a restart can load them
// instead of re-applying every op of the history (see docs/wire-format.md,
// "Snapshot").
//
// A snapshot does not repeat the values: every row's existence event and
// every cell name the op that wrote it (change ID and op index), and the
// loader takes the value from that op, which the document holds anyway
// (the graph keeps every change for sync, Since and time travel). The op
// identity is exactly what the merge needs to keep going: an op's stamp
// (lamport, author, seq, change ID) is a function of its change and index.
// So loading a snapshot and applying later changes gives the same state as
// replaying everything, and the snapshot cannot hold a value the log does
// not.

// SnapshotDomain is the domain-separation string hashed before a snapshot's
// bytes to form its checksum.
const SnapshotDomain = "convergenode/snapshot/v1"

// snapshotMagic opens every snapshot; the byte after it is the format
// version.
var snapshotMagic = []byte("CNSNAP")

const snapshotVersion = 1

// Snapshot errors. Every error of DecodeSnapshot and Doc.LoadSnapshot wraps
// ErrBadSnapshot (and, for malformed input, the codec error: ErrTruncated,
// ErrNonMinimal, ErrTooLarge or ErrInvalid).
var (
	ErrBadSnapshot      = errors.New("crdt: bad snapshot")
	ErrSnapshotChecksum = errors.New("crdt: snapshot checksum mismatch")
	ErrSnapshotVersion  = errors.New("crdt: unknown snapshot format version")
)

// Snapshot is a decoded snapshot, as [DecodeSnapshot] returns it: for
// inspection and tests. [Doc.LoadSnapshot] reads the encoded form directly.
type Snapshot struct {
	Doc     string          // document ID
	Changes uint64          // number of changes in the covered version (the causal past of Heads)
	Heads   Version         // the version covered
	Refs    []ID            // changes whose ops are referenced, sorted, each referenced at least once
	Tables  []SnapshotTable // sorted by name
}

// SnapshotTable is one table of a snapshot: every row the document holds
// merge state for, visible or not.
type SnapshotTable struct {
	Name string
	Rows []SnapshotRow // sorted by key
}

// SnapshotRow is the merge state of one row: the newest insert or delete
// (Exist; the row is visible iff it is an insert) and the surviving cell
// writes.
type SnapshotRow struct {
	Key   string
	Exist SnapshotRef    // zero if no insert or delete was seen
	Cells []SnapshotCell // sorted by name
}

// SnapshotCell is one column of a row and the op that wrote its value.
type SnapshotCell struct {
	Name string
	At   SnapshotRef // zero means the row's Exist op
}

// SnapshotRef names one op: Change is 1 + the index of its change in
// Snapshot.Refs (0: none), Op the op's index in that change.
type SnapshotRef struct {
	Change uint32
	Op     uint32
}

// AppendSnapshot appends the snapshot of d's current state and version to
// dst. The encoding is canonical: two documents holding the same changes
// give the same bytes. It costs one pass over every row the document
// holds, plus sorting the table names, row keys and referenced changes.
func (d *Doc) AppendSnapshot(dst []byte) []byte {
	// Number the referenced changes by ID: refOf[node] is 1 + the ref
	// index of graph node node-1 (0: not referenced).
	refOf := make([]uint32, d.g.n+1)
	var nodes []uint32
	mark := func(at opRef) {
		if at.node != 0 && refOf[at.node] == 0 {
			refOf[at.node] = 1
			nodes = append(nodes, at.node)
		}
	}
	names := make([]string, 0, len(d.tables))
	for name, t := range d.tables {
		names = append(names, name)
		for rs := range t.rows.all {
			mark(rs.exist)
			for k := range rs.cells {
				mark(rs.cells[k].at)
			}
		}
		for i := range t.base {
			rs := &t.base[i]
			mark(rs.exist)
			for k := range rs.cells {
				mark(rs.cells[k].at)
			}
		}
	}
	slices.Sort(names)
	slices.SortFunc(nodes, func(a, b uint32) int {
		return d.g.node(int32(a - 1)).c.id.Compare(d.g.node(int32(b - 1)).c.id)
	})
	for k, n := range nodes {
		refOf[n] = uint32(k) + 1
	}

	start := len(dst)
	dst = append(dst, snapshotMagic...)
	dst = append(dst, snapshotVersion)
	dst = appendBytes(dst, d.opts.ID)
	dst = binary.AppendUvarint(dst, uint64(d.g.n))
	dst = binary.AppendUvarint(dst, uint64(len(d.g.heads)))
	for _, h := range d.g.heads {
		dst = append(dst, h[:]...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(nodes)))
	for _, n := range nodes {
		id := d.g.node(int32(n - 1)).c.id
		dst = append(dst, id[:]...)
	}
	ref := func(dst []byte, at opRef) []byte {
		if at.node == 0 {
			return append(dst, 0)
		}
		dst = binary.AppendUvarint(dst, uint64(refOf[at.node]))
		return binary.AppendUvarint(dst, uint64(at.i))
	}
	dst = binary.AppendUvarint(dst, uint64(len(names)))
	var rows []*rowState
	for _, name := range names {
		t := d.tables[name]
		dst = appendBytes(dst, name)
		// The base is sorted already: sort the index's rows and merge.
		rows = rows[:0]
		for rs := range t.rows.all {
			rows = append(rows, rs)
		}
		slices.SortFunc(rows, func(a, b *rowState) int { return cmpString(a.key, b.key) })
		dst = binary.AppendUvarint(dst, uint64(len(rows)+len(t.base)))
		i, j := 0, 0
		for i < len(t.base) || j < len(rows) {
			var rs *rowState
			if j == len(rows) || (i < len(t.base) && t.baseKeys[i] < rows[j].key) {
				rs = &t.base[i]
				i++
			} else {
				rs = rows[j]
				j++
			}
			dst = appendBytes(dst, rs.key)
			dst = ref(dst, rs.exist)
			dst = binary.AppendUvarint(dst, uint64(len(rs.cells)))
			for _, c := range rs.cells {
				dst = appendBytes(dst, c.name)
				if c.at == rs.exist {
					dst = append(dst, 0)
				} else {
					dst = ref(dst, c.at)
				}
			}
		}
	}
	return appendSnapshotSum(dst, dst[start:])
}

func appendSnapshotSum(dst, body []byte) []byte {
	h := blake3.New(32, nil)
	h.Write([]byte(SnapshotDomain))
	h.Write(body)
	return h.Sum(dst)
}

// AppendEncode appends the canonical encoding of s to dst. It does not
// check s; DecodeSnapshot of the result fails if s breaks a rule.
func (s *Snapshot) AppendEncode(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, snapshotMagic...)
	dst = append(dst, snapshotVersion)
	dst = appendBytes(dst, s.Doc)
	dst = binary.AppendUvarint(dst, s.Changes)
	dst = binary.AppendUvarint(dst, uint64(len(s.Heads)))
	for _, h := range s.Heads {
		dst = append(dst, h[:]...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.Refs)))
	for _, r := range s.Refs {
		dst = append(dst, r[:]...)
	}
	ref := func(dst []byte, r SnapshotRef) []byte {
		dst = binary.AppendUvarint(dst, uint64(r.Change))
		if r.Change == 0 {
			return dst
		}
		return binary.AppendUvarint(dst, uint64(r.Op))
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.Tables)))
	for _, t := range s.Tables {
		dst = appendBytes(dst, t.Name)
		dst = binary.AppendUvarint(dst, uint64(len(t.Rows)))
		for _, r := range t.Rows {
			dst = appendBytes(dst, r.Key)
			dst = ref(dst, r.Exist)
			dst = binary.AppendUvarint(dst, uint64(len(r.Cells)))
			for _, c := range r.Cells {
				dst = appendBytes(dst, c.Name)
				dst = ref(dst, c.At)
			}
		}
	}
	return appendSnapshotSum(dst, dst[start:])
}

// snapHeader is the part of a snapshot before the tables.
type snapHeader struct {
	doc     string
	changes uint64
	heads   Version
	refs    []ID
}

// snapVisitor receives the tables of a snapshot as they are parsed. The
// byte slices alias the input.
type snapVisitor interface {
	header(h *snapHeader) error
	table(name []byte, nrows int) error
	row(key []byte, exist SnapshotRef, ncells int) error
	cell(name []byte, at SnapshotRef) error
}

// parseSnapshot checks the frame (magic, version, checksum), reads the
// header and hands the tables to v. It enforces every rule of the format,
// so that an accepted input is canonical.
func parseSnapshot(b []byte, v snapVisitor) (hdr snapHeader, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrBadSnapshot, err)
		}
	}()
	if len(b) < len(snapshotMagic)+1+32 || !bytes.Equal(b[:len(snapshotMagic)], snapshotMagic) {
		return hdr, fmt.Errorf("%w: not a snapshot (%d bytes)", ErrInvalid, len(b))
	}
	if ver := b[len(snapshotMagic)]; ver != snapshotVersion {
		return hdr, fmt.Errorf("%w: version %d", ErrSnapshotVersion, ver)
	}
	body := b[:len(b)-32]
	if sum := appendSnapshotSum(nil, body); !bytes.Equal(sum, b[len(body):]) {
		return hdr, ErrSnapshotChecksum
	}
	d := decoder{b: body, off: len(snapshotMagic) + 1}
	hdr.doc = d.str("doc ID", MaxDocIDLen, false)
	hdr.changes = d.uvarint()
	nh := d.countIn("heads", 32)
	if d.err == nil && uint64(nh) > hdr.changes {
		d.fail(ErrInvalid, "%d heads for %d changes", nh, hdr.changes)
	}
	hdr.heads = readIDs(&d, nh, "heads")
	nr := d.countIn("refs", 32)
	if d.err == nil && uint64(nr) > hdr.changes {
		d.fail(ErrInvalid, "%d referenced changes for %d changes", nr, hdr.changes)
	}
	hdr.refs = readIDs(&d, nr, "refs")
	if d.err != nil {
		return hdr, d.err
	}
	if err := v.header(&hdr); err != nil {
		return hdr, err
	}
	used := make([]bool, len(hdr.refs))
	refAt := func(what string, allowSame bool) SnapshotRef {
		r := d.uvarint()
		if d.err != nil {
			return SnapshotRef{}
		}
		if r == 0 {
			if !allowSame {
				d.fail(ErrInvalid, "%s names no op", what)
			}
			return SnapshotRef{}
		}
		if r > uint64(len(hdr.refs)) {
			d.fail(ErrInvalid, "%s names change %d of %d", what, r, len(hdr.refs))
			return SnapshotRef{}
		}
		op := d.uvarint()
		if d.err == nil && op >= MaxOps {
			d.fail(ErrTooLarge, "%s names op %d", what, op)
		}
		used[r-1] = true
		return SnapshotRef{Change: uint32(r), Op: uint32(op)}
	}
	nt := d.countIn("tables", 3)
	var lastTable []byte
	for ti := 0; ti < nt && d.err == nil; ti++ {
		name := d.raw("table", MaxNameLen)
		if d.err == nil && ti > 0 && bytes.Compare(lastTable, name) >= 0 {
			d.fail(ErrInvalid, "tables not sorted at %q", name)
		}
		lastTable = name
		nrows := d.countIn("rows", 4)
		if d.err == nil && nrows == 0 {
			d.fail(ErrInvalid, "table %q has no rows", name)
		}
		if d.err != nil {
			break
		}
		if err := v.table(name, nrows); err != nil {
			return hdr, err
		}
		var lastKey []byte
		for ri := 0; ri < nrows && d.err == nil; ri++ {
			key := d.raw("row", MaxRowLen)
			if d.err == nil && ri > 0 && bytes.Compare(lastKey, key) >= 0 {
				d.fail(ErrInvalid, "rows of %q not sorted at %q", name, key)
			}
			lastKey = key
			exist := refAt("row existence", true)
			ncells := d.countIn("cells", 2)
			if d.err == nil && exist.Change == 0 && ncells == 0 {
				d.fail(ErrInvalid, "row %q/%q holds nothing", name, key)
			}
			if d.err != nil {
				break
			}
			if err := v.row(key, exist, ncells); err != nil {
				return hdr, err
			}
			var lastCol []byte
			for ci := 0; ci < ncells && d.err == nil; ci++ {
				col := d.raw("column", MaxNameLen)
				if d.err == nil && ci > 0 && bytes.Compare(lastCol, col) >= 0 {
					d.fail(ErrInvalid, "columns of %q/%q not sorted at %q", name, key, col)
				}
				lastCol = col
				at := refAt("cell", exist.Change != 0)
				if d.err == nil && at == exist {
					d.fail(ErrInvalid, "cell %q/%q.%q repeats the row's op", name, key, col)
				}
				if d.err != nil {
					break
				}
				if err := v.cell(col, at); err != nil {
					return hdr, err
				}
			}
		}
	}
	if d.err != nil {
		return hdr, d.err
	}
	if d.off != len(body) {
		return hdr, fmt.Errorf("%w: %d bytes", ErrTrailingBytes, len(body)-d.off)
	}
	for k, u := range used {
		if !u {
			return hdr, fmt.Errorf("%w: change %s is listed but not referenced", ErrInvalid, hdr.refs[k].Short())
		}
	}
	return hdr, nil
}

// countIn reads a count of items that take at least min bytes each, and
// refuses counts the rest of the input cannot hold (before anything is
// allocated for them).
func (d *decoder) countIn(what string, min int) int {
	v := d.uvarint()
	if d.err == nil && v > uint64(len(d.b)-d.off)/uint64(min) {
		d.fail(ErrTruncated, "%d %s exceed the input", v, what)
		return 0
	}
	return int(v)
}

// readIDs reads n IDs, which must be sorted and unique.
func readIDs(d *decoder, n int, what string) []ID {
	if d.err != nil || n == 0 {
		return nil
	}
	ids := make([]ID, n)
	for i := range ids {
		d.fixed(ids[i][:])
		if d.err == nil && i > 0 && ids[i-1].Compare(ids[i]) >= 0 {
			d.fail(ErrInvalid, "%s not sorted", what)
		}
	}
	return ids
}

// DecodeSnapshot decodes and checks an encoded snapshot: the format version,
// the checksum, every length and count, the order of tables, rows, columns
// and IDs, and that nothing follows. An accepted input re-encodes
// ([Snapshot.AppendEncode]) to the same bytes. It does not check the
// snapshot against any document; [Doc.LoadSnapshot] does.
func DecodeSnapshot(b []byte) (*Snapshot, error) {
	var v snapBuilder
	hdr, err := parseSnapshot(b, &v)
	if err != nil {
		return nil, err
	}
	return &Snapshot{Doc: hdr.doc, Changes: hdr.changes, Heads: hdr.heads, Refs: hdr.refs, Tables: v.tables}, nil
}

type snapBuilder struct {
	tables []SnapshotTable
}

func (v *snapBuilder) header(*snapHeader) error { return nil }

func (v *snapBuilder) table(name []byte, nrows int) error {
	v.tables = append(v.tables, SnapshotTable{Name: string(name), Rows: make([]SnapshotRow, 0, nrows)})
	return nil
}

func (v *snapBuilder) row(key []byte, exist SnapshotRef, ncells int) error {
	t := &v.tables[len(v.tables)-1]
	t.Rows = append(t.Rows, SnapshotRow{Key: string(key), Exist: exist, Cells: make([]SnapshotCell, 0, ncells)})
	return nil
}

func (v *snapBuilder) cell(name []byte, at SnapshotRef) error {
	t := &v.tables[len(v.tables)-1]
	r := &t.Rows[len(t.Rows)-1]
	r.Cells = append(r.Cells, SnapshotCell{Name: string(name), At: at})
	return nil
}

// SnapshotHeads returns the version an encoded snapshot covers and its
// number of changes, after checking its frame and checksum; it does not
// parse the tables. Callers use it to find which stored changes the
// snapshot covers before calling [Doc.LoadSnapshot].
func SnapshotHeads(b []byte) (Version, uint64, error) {
	hdr, err := parseSnapshot(b, headerOnly{})
	if err != nil && !errors.Is(err, errHeaderDone) {
		return nil, 0, err
	}
	return hdr.heads, hdr.changes, nil
}

var errHeaderDone = errors.New("header read")

type headerOnly struct{}

func (headerOnly) header(*snapHeader) error           { return errHeaderDone }
func (headerOnly) table([]byte, int) error            { return errHeaderDone }
func (headerOnly) row([]byte, SnapshotRef, int) error { return errHeaderDone }
func (headerOnly) cell([]byte, SnapshotRef) error     { return errHeaderDone }

// LoadSnapshot makes the empty document d hold the state of the encoded
// snapshot snap without applying any op: changes (with their IDs in ids)
// must be exactly the changes the snapshot covers, in a causal order
// (parents first). They are added to the graph, which sync, heads, Since
// and time travel need, and the tables are built from the snapshot, taking
// every value from the op that wrote it. Later changes are applied with
// [Doc.Apply] as usual and give the same state as replaying everything.
//
// Every error wraps ErrBadSnapshot and leaves d unchanged (still empty): the
// caller can fall back to applying every change. The checks cover the
// frame, the checksum, the format rules, and the snapshot against the
// changes: the same document, version and number of changes, and every
// referenced op exists, is on that row, and writes that column. The
// subscribers are not called for the loaded changes. LoadSnapshot keeps
// the changes, like Apply, and freezes them ([Change.Freeze]): no Doc
// rewrites their strings afterwards.
func (d *Doc) LoadSnapshot(snap []byte, ids []ID, changes []*Change) error {
	if d.g.n != 0 {
		return fmt.Errorf("%w: the document is not empty", ErrBadSnapshot)
	}
	if len(ids) != len(changes) {
		return fmt.Errorf("%w: %d IDs for %d changes", ErrBadSnapshot, len(ids), len(changes))
	}
	nd := NewDoc(d.opts)
	for k, c := range changes {
		if err := nd.check(ids[k], c); err != nil {
			return fmt.Errorf("%w: %w", ErrBadSnapshot, err)
		}
		if _, err := nd.g.add(ids[k], c); err != nil {
			return fmt.Errorf("%w: %w", ErrBadSnapshot, err)
		}
		nd.noteTip(ids[k], c)
		// The ops are not materialized here, so their strings are not
		// shared with the document's: freeze the change, so that time
		// travel (which replays it) never rewrites them either and stays
		// a pure read.
		if !c.frozen {
			share(&c.Doc, nd.opts.ID)
			c.Freeze()
		}
	}
	if _, err := parseSnapshot(snap, &snapLoader{d: nd}); err != nil {
		return err
	}
	*d.g = *nd.g // keep the Graph pointer callers may hold
	d.tables, d.tips, d.names, d.lastTable, d.lastName = nd.tables, nd.tips, nd.names, nil, ""
	return nil
}

// snapLoader builds a document's tables from a snapshot (see
// Doc.LoadSnapshot).
type snapLoader struct {
	d     *Doc
	nodes []uint32 // graph node + 1 of every ref

	t     *table
	ri    int // index of the current row in t.base
	rs    *rowState
	key   []byte // the current row's key (aliases the input)
	exist *Op
	cells []cell // slab

	recent [8]string // column names interned lately
}

// header checks the snapshot's header against the graph.
func (l *snapLoader) header(hdr *snapHeader) error {
	d := l.d
	if hdr.doc != d.opts.ID {
		return fmt.Errorf("snapshot of %q, not %q", hdr.doc, d.opts.ID)
	}
	if hdr.changes != uint64(d.g.n) || !Version(hdr.heads).Equal(d.g.heads) {
		return fmt.Errorf("snapshot covers %d changes at %s, the changes given are %d at %s",
			hdr.changes, Version(hdr.heads), d.g.n, d.g.heads)
	}
	l.nodes = make([]uint32, len(hdr.refs))
	for k, id := range hdr.refs {
		i, ok := d.g.find(id)
		if !ok {
			return fmt.Errorf("snapshot references change %s, not covered", id.Short())
		}
		l.nodes[k] = uint32(i) + 1
	}
	return nil
}

// op resolves a reference; it fails unless the op is on the current row.
func (l *snapLoader) op(r SnapshotRef, key []byte) (*Op, opRef, error) {
	at := opRef{node: l.nodes[r.Change-1], i: r.Op}
	c := l.d.g.node(int32(at.node - 1)).c
	if int(r.Op) >= len(c.Ops) {
		return nil, at, fmt.Errorf("%w: change %s has no op %d", ErrInvalid, l.d.g.node(int32(at.node-1)).c.id.Short(), r.Op)
	}
	o := &c.Ops[r.Op]
	if o.Table != l.t.name || o.Row != string(key) {
		return nil, at, fmt.Errorf("%w: op %d of %s is on %s/%s, not %s/%s", ErrInvalid, r.Op,
			l.d.g.node(int32(at.node-1)).c.id.Short(), o.Table, o.Row, l.t.name, key)
	}
	return o, at, nil
}

// intern returns the document's copy of a column name, remembering the
// last few (rows mostly repeat the same columns).
func (l *snapLoader) intern(name []byte) string {
	for _, s := range l.recent {
		if s == string(name) {
			return s
		}
	}
	s := l.d.intern(string(name))
	copy(l.recent[1:], l.recent[:])
	l.recent[0] = s
	return s
}

func (l *snapLoader) table(name []byte, nrows int) error {
	n := l.d.intern(string(name))
	// The rows go to the table's sorted base (table.go), not its index.
	l.t = &table{name: n, base: make([]rowState, nrows), baseKeys: make([]string, nrows)}
	l.d.tables[n] = l.t
	l.ri = -1
	return nil
}

func (l *snapLoader) row(key []byte, exist SnapshotRef, ncells int) error {
	l.ri++
	rs := &l.t.base[l.ri]
	l.rs, l.key, l.exist = rs, key, nil
	if exist.Change != 0 {
		o, at, err := l.op(exist, key)
		if err != nil {
			return err
		}
		if o.Kind != OpInsert && o.Kind != OpDelete {
			return fmt.Errorf("%w: row %s/%s exists by an update", ErrInvalid, l.t.name, key)
		}
		rs.key, rs.exist, rs.alive, l.exist = o.Row, at, o.Kind == OpInsert, o
		if rs.alive {
			l.t.live++
		}
	}
	if ncells > 0 {
		if len(l.cells) < ncells {
			l.cells = make([]cell, max(ncells, 4096))
		}
		rs.cells = l.cells[:0:ncells]
		l.cells = l.cells[ncells:]
	}
	l.t.baseKeys[l.ri] = rs.key // else the first cell (which names an op) gives the key
	return nil
}

func (l *snapLoader) cell(name []byte, r SnapshotRef) error {
	rs := l.rs
	var o *Op
	at := rs.exist
	if r.Change != 0 {
		var err error
		o, at, err = l.op(r, l.key)
		if err != nil {
			return err
		}
		if l.d.cmpStamp(at, rs.exist) < 0 {
			return fmt.Errorf("%w: cell %s/%s.%s is older than its row's existence", ErrInvalid, l.t.name, l.key, name)
		}
		if rs.key == "" {
			// Share the key with the change, as Apply does.
			rs.key = o.Row
			l.t.baseKeys[l.ri] = rs.key
		}
	} else {
		o = l.exist
	}
	var v Value
	switch o.Kind {
	case OpInsert:
		k, ok := findCol(o.Cols, name)
		if !ok {
			return fmt.Errorf("%w: cell %s/%s.%s: the insert has no such column", ErrInvalid, l.t.name, rs.key, name)
		}
		v = o.Cols[k].Value
	case OpUpdate:
		if o.Cols[0].Name != string(name) {
			return fmt.Errorf("%w: cell %s/%s.%s: the update sets %s", ErrInvalid, l.t.name, rs.key, name, o.Cols[0].Name)
		}
		v = o.Cols[0].Value
	default:
		return fmt.Errorf("%w: cell %s/%s.%s written by a delete", ErrInvalid, l.t.name, rs.key, name)
	}
	rs.cells = append(rs.cells, cell{name: l.intern(name), v: v, at: at})
	return nil
}

// findCol returns the index of the column name in cols (sorted by name).
func findCol(cols []Col, name []byte) (int, bool) {
	return slices.BinarySearchFunc(cols, name, func(c Col, n []byte) int { return cmpString(c.Name, string(n)) })
}
