package bft

import (
	"encoding/hex"
	"slices"

	"github.com/convergenode/convergenode/crdt"
)

// WritersTable is the reserved table whose ops change a document's writer
// set (see the package documentation, "Writer set"). Row key: the
// lowercase hex of an author key; Insert or Update adds it, Delete removes
// it. It has this meaning only in documents with a genesis writer set.
const WritersTable = "_writers"

// WriterRow returns the _writers row key for author a.
func WriterRow(a crdt.Author) string { return hex.EncodeToString(a[:]) }

// AddWriter returns the op that adds a to the writer set.
func AddWriter(a crdt.Author) crdt.Op { return crdt.Insert(WritersTable, WriterRow(a), nil) }

// RemoveWriter returns the op that removes a from the writer set.
func RemoveWriter(a crdt.Author) crdt.Op { return crdt.Delete(WritersTable, WriterRow(a)) }

// writerOp is one _writers op, with its place in the total op order.
type writerOp struct {
	lamport uint64
	author  crdt.Author
	seq     uint64
	id      crdt.ID
	key     crdt.Author
	add     bool
}

func (a *writerOp) after(b *writerOp) bool {
	if a.lamport != b.lamport {
		return a.lamport > b.lamport
	}
	if c := a.author.Compare(b.author); c != 0 {
		return c > 0
	}
	if a.seq != b.seq {
		return a.seq > b.seq
	}
	return a.id.Compare(b.id) > 0
}

// parseWriterOps returns the writer-set ops of change c (ID id).
func parseWriterOps(id crdt.ID, c *crdt.Change) []writerOp {
	var out []writerOp
	for i := range c.Ops {
		o := &c.Ops[i]
		if o.Table != WritersTable || len(o.Row) != 64 {
			continue
		}
		var key crdt.Author
		if _, err := hex.Decode(key[:], []byte(o.Row)); err != nil || hex.EncodeToString(key[:]) != o.Row {
			continue // not a lowercase hex key: plain data
		}
		out = append(out, writerOp{
			lamport: c.Lamport + uint64(i), author: c.Author, seq: c.Seq + uint64(i), id: id,
			key: key, add: o.Kind != crdt.OpDelete,
		})
	}
	return out
}

// writerSnap is the writer set as of some causal past: the IDs of the
// writer-set changes in that past and the resulting set. Snapshots are
// immutable and shared by every change with the same writer history.
type writerSnap struct {
	ids []crdt.ID // sorted
	set map[crdt.Author]struct{}
}

// writers tracks the writer set of a document with a genesis set.
type writers struct {
	genesis map[crdt.Author]struct{}
	root    *writerSnap
	ops     map[crdt.ID][]writerOp  // writer-set changes
	snaps   map[crdt.ID]*writerSnap // writer set as of each accepted change (its past plus itself)
}

func newWriters(genesis []crdt.Author) *writers {
	w := &writers{
		genesis: make(map[crdt.Author]struct{}, len(genesis)),
		ops:     make(map[crdt.ID][]writerOp),
		snaps:   make(map[crdt.ID]*writerSnap),
	}
	for _, a := range genesis {
		w.genesis[a] = struct{}{}
	}
	w.root = &writerSnap{set: w.genesis}
	return w
}

// past returns the writer set as of the causal past of a change with
// these parents (all of them accepted).
func (w *writers) past(parents []crdt.ID) *writerSnap {
	var first *writerSnap
	var more []*writerSnap
	for _, p := range parents {
		s := w.snaps[p]
		if s == nil {
			s = w.root
		}
		if first == nil {
			first = s
		} else if s != first && !slices.Contains(more, s) {
			more = append(more, s)
		}
	}
	if first == nil {
		return w.root
	}
	if len(more) == 0 {
		return first
	}
	ids := slices.Clone(first.ids)
	for _, s := range more {
		ids = append(ids, s.ids...)
	}
	ids = crdt.SortIDs(ids)
	for _, s := range append(more, first) {
		if len(s.ids) == len(ids) {
			return s // s already holds every writer change of the union
		}
	}
	return w.resolve(ids)
}

// resolve computes the set for the writer-set changes ids.
func (w *writers) resolve(ids []crdt.ID) *writerSnap {
	win := make(map[crdt.Author]*writerOp)
	for _, id := range ids {
		ops := w.ops[id]
		for i := range ops {
			o := &ops[i]
			if cur := win[o.key]; cur == nil || o.after(cur) {
				win[o.key] = o
			}
		}
	}
	set := make(map[crdt.Author]struct{}, len(w.genesis)+len(win))
	for a := range w.genesis {
		if o := win[a]; o == nil || o.add {
			set[a] = struct{}{}
		}
	}
	for a, o := range win {
		if o.add {
			set[a] = struct{}{}
		}
	}
	return &writerSnap{ids: ids, set: set}
}

func (s *writerSnap) allows(a crdt.Author) bool { _, ok := s.set[a]; return ok }

// record notes accepted change c (ID id), whose past had writer set past.
func (w *writers) record(id crdt.ID, c *crdt.Change, past *writerSnap) {
	ops := parseWriterOps(id, c)
	if len(ops) == 0 {
		w.snaps[id] = past
		return
	}
	w.ops[id] = ops
	ids := crdt.SortIDs(append(slices.Clone(past.ids), id))
	w.snaps[id] = w.resolve(ids)
}

// current returns the writer set as of the given heads, sorted.
func (w *writers) current(heads []crdt.ID) []crdt.Author {
	s := w.past(heads)
	out := make([]crdt.Author, 0, len(s.set))
	for a := range s.set {
		out = append(out, a)
	}
	slices.SortFunc(out, crdt.Author.Compare)
	return out
}
