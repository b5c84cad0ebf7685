package bft

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/internal/compact"
)

// ProofVersion is the first byte of an encoded equivocation proof.
const ProofVersion = 1

// MaxProofSize bounds an encoded proof: two envelopes and their lengths.
const MaxProofSize = 1 + 2*(3+MaxEnvelopeSize)

// EquivocationProof is self-verifying evidence that one author signed two
// conflicting changes for one document: two different changes whose seq
// ranges overlap, or that extend the same prev. Anyone can check it with
// [EquivocationProof.Verify] and nothing else: no document state is needed.
//
// A and B are ordered by ID (A.ID < B.ID), so a pair has exactly one proof
// and one encoding whichever order a node saw the changes in. The proof
// carries the two whole signed changes, because a change's ID (the signed
// message) is the hash of its whole encoding.
//
// The gate does not refuse an equivocating author's changes: both forks
// are delivered to the document and merged like concurrent changes, so
// honest replicas that see them in different orders still converge.
type EquivocationProof struct {
	A, B *Envelope
}

// NewProof returns the proof for two envelopes, ordering them by ID. It
// does not verify it (see [EquivocationProof.Verify]).
func NewProof(x, y *Envelope) *EquivocationProof {
	if y.ID.Compare(x.ID) < 0 {
		x, y = y, x
	}
	return &EquivocationProof{A: x, B: y}
}

// Author returns the equivocating author.
func (p *EquivocationProof) Author() crdt.Author { return p.A.Change.Author }

// Doc returns the document of the two changes.
func (p *EquivocationProof) Doc() string { return p.A.Change.Doc }

// Encode returns the canonical wire form of p:
//
//	version(1) = 1 | uvarint len(a) | a | uvarint len(b) | b
//
// where a and b are the encoded envelopes A and B (A.ID < B.ID).
func (p *EquivocationProof) Encode() []byte {
	dst := make([]byte, 0, 1+6+p.A.Size()+p.B.Size())
	dst = append(dst, ProofVersion)
	dst = binary.AppendUvarint(dst, uint64(p.A.Size()))
	dst = p.A.AppendEncode(dst)
	dst = binary.AppendUvarint(dst, uint64(p.B.Size()))
	return p.B.AppendEncode(dst)
}

// DecodeProof decodes a proof's wire form strictly (version, minimal
// lengths, canonical envelopes and changes, A.ID < B.ID, no trailing
// bytes). It does not verify the signatures or the conflict: call
// [EquivocationProof.Verify] before trusting it.
func DecodeProof(b []byte) (*EquivocationProof, error) {
	if len(b) > MaxProofSize {
		return nil, fmt.Errorf("%w: proof is %d bytes, limit %d", ErrTooLarge, len(b), MaxProofSize)
	}
	if len(b) < 1 || b[0] != ProofVersion {
		return nil, fmt.Errorf("%w: bad proof version", ErrBadEncoding)
	}
	off := 1
	var envs [2]*Envelope
	for i := range envs {
		n, k := binary.Uvarint(b[off:])
		if k <= 0 || k != uvarintLen(n) || n > uint64(len(b)-off-k) {
			return nil, fmt.Errorf("%w: bad proof envelope length", ErrBadEncoding)
		}
		off += k
		e, err := DecodeEnvelope(b[off : off+int(n)])
		if err != nil {
			return nil, fmt.Errorf("bft: decode proof: %w", err)
		}
		envs[i] = e
		off += int(n)
	}
	if off != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes after proof", ErrBadEncoding, len(b)-off)
	}
	if envs[0].ID.Compare(envs[1].ID) >= 0 {
		return nil, fmt.Errorf("%w: proof envelopes not in ID order", ErrBadEncoding)
	}
	return &EquivocationProof{A: envs[0], B: envs[1]}, nil
}

// Verify checks the proof on its own: both IDs are the hashes of their
// changes, both signatures verify under the same author, the changes are
// for the same document, they differ, and they conflict ([Conflicts]).
func (p *EquivocationProof) Verify() error { return p.VerifyCached(nil) }

// VerifyCached is [EquivocationProof.Verify] with the two signatures
// verified through cache (nil: no cache). Same answer for every proof.
func (p *EquivocationProof) VerifyCached(cache *SigCache) error {
	if p == nil || p.A == nil || p.B == nil || p.A.Change == nil || p.B.Change == nil {
		return fmt.Errorf("%w: incomplete proof", ErrBadEncoding)
	}
	a, b := p.A.Change, p.B.Change
	if a.Author != b.Author {
		return fmt.Errorf("%w: different authors", ErrNotEquivocation)
	}
	if a.Doc != b.Doc {
		return fmt.Errorf("%w: different documents", ErrNotEquivocation)
	}
	if p.A.ID == p.B.ID {
		return fmt.Errorf("%w: the same change twice", ErrNotEquivocation)
	}
	if !Conflicts(a, b) {
		return fmt.Errorf("%w: seq ranges [%d,%d] and [%d,%d] are disjoint and prevs differ",
			ErrNotEquivocation, a.Seq, a.LastSeq(), b.Seq, b.LastSeq())
	}
	for _, e := range []*Envelope{p.A, p.B} {
		// Always recheck: a decoded proof is untrusted.
		if crdt.HashChange(e.Raw) != e.ID {
			return fmt.Errorf("bft: verify proof: %w (%s)", ErrBadID, e.ID.Short())
		}
		if !cache.Verify(e.Change.Author, e.ID, &e.Sig) {
			return fmt.Errorf("bft: verify proof: %w (%s)", ErrBadSignature, e.ID.Short())
		}
	}
	return nil
}

// Conflicts reports whether two changes by one author conflict: their seq
// ranges [Seq, LastSeq] overlap or they extend the same prev. It compares
// headers only; the caller checks that they are different changes.
func Conflicts(a, b *crdt.Change) bool {
	if a.Author != b.Author {
		return false
	}
	return a.Prev == b.Prev || (a.Seq <= b.LastSeq() && b.Seq <= a.LastSeq())
}

// index records the accepted change c (ID id; env is nil for changes the
// gate did not see signed) for equivocation detection and the writer set,
// and returns a new proof if c conflicts with an accepted change of its
// author.
func (g *Gate) index(id crdt.ID, c *crdt.Change, env *Envelope, past *writerSnap) *EquivocationProof {
	if g.writers != nil {
		if past == nil {
			past = g.writers.past(c.Parents)
		}
		g.writers.record(id, c, past)
	}
	node, ok := g.graph.Index(id)
	if !ok {
		panic("bft: index a change the document does not hold")
	}
	var sig *[64]byte
	if env != nil {
		// The gate keeps env (see Receive), and envelopes are immutable:
		// point at its signature instead of copying it, so the gates that
		// share an envelope (EnvCache) keep one copy.
		sig = &env.Sig
	}
	ix := g.authors.get(g.graph, c.Author)
	if ix == nil {
		// An author's first change: nothing to conflict with.
		g.authors.add(c.Author, authorIndex{node: node, sig: sig})
		return nil
	}
	var proof *EquivocationProof
	if other, osig, ok := ix.overlap(g.graph, c.Seq, c.LastSeq()); ok && env != nil && osig != nil {
		oid, oc := g.graph.Node(other)
		if raw, err := oc.Encode(); err == nil {
			o := &Envelope{Change: oc, ID: oid, Sig: *osig, Raw: raw, checked: true}
			proof = g.keepProof(NewProof(env, o))
		}
	}
	ix.insert(g.graph, span{start: c.Seq, end: c.LastSeq(), node: node, sig: sig})
	return proof
}

// keepProof stores p unless it is known or its author has
// MaxProofsPerAuthor proofs; it returns p if stored.
func (g *Gate) keepProof(p *EquivocationProof) *EquivocationProof {
	k := [2]crdt.ID{p.A.ID, p.B.ID}
	a := p.Author()
	if g.proofs[k] != nil || g.byAuthor[a] >= g.cfg.MaxProofsPerAuthor {
		return nil
	}
	g.proofs[k] = p
	g.byAuthor[a]++
	return p
}

// AddProof verifies a proof received from elsewhere (e.g. the evidence
// topic) and keeps it. It reports whether the proof was new and kept; an
// invalid proof, or one for another document, is an error.
func (g *Gate) AddProof(p *EquivocationProof) (bool, error) {
	if err := p.Verify(); err != nil {
		return false, err
	}
	if p.Doc() != g.docID {
		return false, fmt.Errorf("bft: add proof: %w", ErrWrongDoc)
	}
	for _, e := range []*Envelope{p.A, p.B} {
		e.checked = true
	}
	return g.keepProof(p) != nil, nil
}

// Proofs returns the equivocation proofs held, sorted by author, then by
// the IDs of the two changes.
func (g *Gate) Proofs() []*EquivocationProof {
	out := make([]*EquivocationProof, 0, len(g.proofs))
	for _, p := range g.proofs {
		out = append(out, p)
	}
	slices.SortFunc(out, func(x, y *EquivocationProof) int {
		if c := x.Author().Compare(y.Author()); c != 0 {
			return c
		}
		if c := x.A.ID.Compare(y.A.ID); c != 0 {
			return c
		}
		return x.B.ID.Compare(y.B.ID)
	})
	return out
}

// Equivocators returns the authors the gate holds proofs against, sorted.
func (g *Gate) Equivocators() []crdt.Author {
	out := make([]crdt.Author, 0, len(g.byAuthor))
	for a := range g.byAuthor {
		out = append(out, a)
	}
	slices.SortFunc(out, crdt.Author.Compare)
	return out
}

// span is one accepted change of an author: its seq range, its graph node
// number ([crdt.Graph.Index]) and its signature (kept to build
// equivocation proofs later), and its links in the spans tree. sig is nil
// for changes that were in the document before the gate (unsigned); it
// points into a shared envelope's signature when the envelope came from
// an EnvCache, and to a copy otherwise.
type span struct {
	start, end  uint64
	maxEnd      uint64 // the largest end in this span's subtree
	node        int32
	left, right int32 // children in spanTree.spans, -1 for none
	height      int32 // of the subtree, 1 for a leaf
	sig         *[64]byte
}

// authorIndex holds an author's accepted changes. Most authors of a
// document have one change, so an index starts in a small form that names
// the change and its signature and takes its seq range from the graph;
// the second change moves it to the spans form, a spanTree.
type authorIndex struct {
	sig   *[64]byte // the one change's signature (small form)
	spans *spanTree // nil in the small form
	node  int32     // the one change's node number (small form)
}

// authorTable maps the authors of a gate's accepted changes to their
// indexes, which it keeps in one slice: per author, an 8-byte index slot
// (compact.Index: the author's key's first 4 bytes, with a collision map
// for keys ground to share them) and the index itself. The table does not
// keep the authors: an index's changes, in the graph, name it.
type authorTable struct {
	keys compact.Index[crdt.Author] // author -> ix slot
	ix   []authorIndex
}

// get returns the index of author a, or nil. The pointer is valid until
// the next add.
func (t *authorTable) get(gr *crdt.Graph, a crdt.Author) *authorIndex {
	k, ok := t.keys.Candidate(&a)
	if ok && t.ix[k].author(gr) != a {
		k, ok = t.keys.Collided(&a)
	}
	if !ok {
		return nil
	}
	return &t.ix[k]
}

// reserve makes room for n more authors.
func (t *authorTable) reserve(n int) {
	if n > 0 {
		t.ix = compact.Grow(t.ix, n, 0)
		t.keys.Reserve(n)
	}
}

// add adds the index x of author a, which get does not know.
func (t *authorTable) add(a crdt.Author, x authorIndex) {
	// Grown by a quarter, not by append's doubling: a simulation holds
	// thousands of gates.
	t.ix = append(compact.Grow(t.ix, 1, 0), x)
	t.keys.Add(&a, int32(len(t.ix)-1))
}

// author returns the author of x's changes.
func (x *authorIndex) author(gr *crdt.Graph) crdt.Author {
	node := x.node
	if x.spans != nil {
		node = x.spans.spans[0].node
	}
	_, c := gr.Node(node)
	return c.Author
}

// spanTree is an AVL tree of an author's changes ordered by (start, ID),
// each subtree with the largest end in it (span.maxEnd), so that insert
// and overlap query are O(log n) in the worst case: an honest author's
// chain (disjoint and append-only) and an equivocating author's forks
// (many changes with the same or overlapping ranges, in any order) alike.
// The spans live in one slice and link by position.
type spanTree struct {
	spans []span
	root  int32
}

// one returns the span of an index in the small form.
func (x *authorIndex) one(gr *crdt.Graph) span {
	_, c := gr.Node(x.node)
	return span{start: c.Seq, end: c.LastSeq(), node: x.node, sig: x.sig}
}

// cmpSpan orders spans by (start, ID); IDs are read from the graph.
func cmpSpan(gr *crdt.Graph, a, b *span) int {
	switch {
	case a.start < b.start:
		return -1
	case a.start > b.start:
		return 1
	case a.node == b.node:
		return 0
	}
	ida, _ := gr.Node(a.node)
	idb, _ := gr.Node(b.node)
	return ida.Compare(idb)
}

// overlap returns the accepted change (node number and signature) with
// the largest (start, ID) whose range intersects [s, e], if any.
func (x *authorIndex) overlap(gr *crdt.Graph, s, e uint64) (int32, *[64]byte, bool) {
	if x.spans == nil {
		if sp := x.one(gr); sp.start <= e && sp.end >= s {
			return sp.node, sp.sig, true
		}
		return -1, nil, false
	}
	t := x.spans
	if k := t.last(t.root, s, e); k >= 0 {
		return t.spans[k].node, t.spans[k].sig, true
	}
	return -1, nil, false
}

// insert adds sp (its tree fields are set here).
func (x *authorIndex) insert(gr *crdt.Graph, sp span) {
	if x.spans == nil {
		t := &spanTree{spans: make([]span, 0, 2), root: -1}
		t.insert(gr, x.one(gr))
		x.spans, x.sig, x.node = t, nil, -1
	}
	x.spans.insert(gr, sp)
}

// last returns the position of the last span (in (start, ID) order) of
// the subtree n with start <= e and end >= s, or -1. It follows one path
// down along e and enters at most one other subtree without giving up on
// it (maxEnd says whether it holds an answer), so it is O(height).
func (t *spanTree) last(n int32, s, e uint64) int32 {
	if n < 0 || t.spans[n].maxEnd < s {
		return -1
	}
	x := &t.spans[n]
	if x.start > e {
		return t.last(x.left, s, e)
	}
	if k := t.last(x.right, s, e); k >= 0 {
		return k
	}
	if x.end >= s {
		return n
	}
	return t.last(x.left, s, e)
}

func (t *spanTree) insert(gr *crdt.Graph, sp span) {
	sp.left, sp.right, sp.height, sp.maxEnd = -1, -1, 1, sp.end
	t.spans = append(t.spans, sp)
	t.root = t.insertAt(gr, t.root, int32(len(t.spans)-1))
}

// insertAt inserts span k into the subtree n and returns the subtree's
// new root.
func (t *spanTree) insertAt(gr *crdt.Graph, n, k int32) int32 {
	if n < 0 {
		return k
	}
	if cmpSpan(gr, &t.spans[k], &t.spans[n]) < 0 {
		l := t.insertAt(gr, t.spans[n].left, k)
		t.spans[n].left = l
	} else {
		r := t.insertAt(gr, t.spans[n].right, k)
		t.spans[n].right = r
	}
	return t.rebalance(n)
}

func (t *spanTree) height(n int32) int32 {
	if n < 0 {
		return 0
	}
	return t.spans[n].height
}

// update recomputes the height and maxEnd of n from its children.
func (t *spanTree) update(n int32) {
	x := &t.spans[n]
	x.height = 1 + max(t.height(x.left), t.height(x.right))
	x.maxEnd = x.end
	if x.left >= 0 {
		x.maxEnd = max(x.maxEnd, t.spans[x.left].maxEnd)
	}
	if x.right >= 0 {
		x.maxEnd = max(x.maxEnd, t.spans[x.right].maxEnd)
	}
}

// rebalance restores the AVL balance at n (its children are balanced and
// differ in height by at most 2) and returns the subtree's root.
func (t *spanTree) rebalance(n int32) int32 {
	x := &t.spans[n]
	switch bf := t.height(x.left) - t.height(x.right); {
	case bf > 1:
		if l := x.left; t.height(t.spans[l].left) < t.height(t.spans[l].right) {
			x.left = t.rotateLeft(l)
		}
		return t.rotateRight(n)
	case bf < -1:
		if r := x.right; t.height(t.spans[r].right) < t.height(t.spans[r].left) {
			x.right = t.rotateRight(r)
		}
		return t.rotateLeft(n)
	}
	t.update(n)
	return n
}

func (t *spanTree) rotateRight(n int32) int32 {
	l := t.spans[n].left
	t.spans[n].left = t.spans[l].right
	t.spans[l].right = n
	t.update(n)
	t.update(l)
	return l
}

func (t *spanTree) rotateLeft(n int32) int32 {
	r := t.spans[n].right
	t.spans[n].right = t.spans[r].left
	t.spans[r].left = n
	t.update(n)
	t.update(r)
	return r
}
