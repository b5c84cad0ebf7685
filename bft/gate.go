package bft

import (
	"crypto/ed25519"
	"fmt"
	"slices"
	"time"

	"github.com/convergenode/convergenode/crdt"
)

// LocalPeer is the peer name of changes made by this node ([Gate.Local]).
const LocalPeer = ""

// Gate is stage 2 of the BFT gate for one document: it drops duplicates,
// holds changes with missing parents in a bounded causal buffer, checks
// causal validity against each change's causal past, applies valid changes
// to the document in causal order and detects equivocation.
//
// A Gate does no I/O, starts no goroutines and reads no clock: time is an
// argument. It is not safe for concurrent use; the caller serialises calls
// to the Gate and to its Doc, and applies changes to the Doc only through
// the Gate.
type Gate struct {
	// What every change reads first (see causalBuf); cfg last.
	doc     *crdt.Doc
	graph   *crdt.Graph
	docID   string
	buf     causalBuf
	authors authorTable
	writers *writers // nil for an open document

	proofs   map[[2]crdt.ID]*EquivocationProof
	byAuthor map[crdt.Author]int // proofs held per author

	m   Metrics
	cfg GateConfig
}

// Result says what one call to [Gate.Receive] (or Local, ReceiveBytes)
// did. Slices are in a stable order and owned by the caller.
type Result struct {
	// Accepted are the changes applied to the document during the call, in
	// causal order: the input (if valid and its parents were present) and
	// then every buffered change it unblocked. They are already applied;
	// the caller persists and forwards them. What each did to the
	// document goes to the document's subscribers (crdt.Doc.Subscribe).
	Accepted []*Envelope

	// Duplicate is set when the input was already known (applied or
	// buffered) and was dropped.
	Duplicate bool

	// Buffered is set when the input waits in the causal buffer. Missing
	// lists its parents that are neither in the document nor buffered
	// (sorted): the caller fetches them, preferably from From, the peer
	// that sent the waiting change.
	Buffered bool
	Missing  []crdt.ID
	From     string

	// Rejection is why the input was refused, or nil.
	Rejection *Rejection

	// Dropped are other changes that left the causal buffer during the
	// call without being accepted: evicted to make room, expired, or
	// refused once their parents arrived (with the peer each came from).
	Dropped []Dropped

	// Proofs are the new equivocation proofs made during the call.
	Proofs []*EquivocationProof
}

// Dropped is a change that left the causal buffer without being accepted.
type Dropped struct {
	ID     crdt.ID
	Author crdt.Author
	From   string // peer that sent it
	Reason Reason // RejectEvicted, RejectExpired, RejectBadParent or a causal-validity reason
}

// Rejection returns d as a *Rejection (its Err is the reason's sentinel).
func (d Dropped) Rejection() *Rejection {
	return &Rejection{Reason: d.Reason, ID: d.ID, From: d.From, Err: d.Reason.Err()}
}

// Expired is what [Gate.Tick] returns; it is a [Dropped] with reason
// RejectExpired.
type Expired = Dropped

// NewGate returns the gate for doc. cfg's zero fields take defaults. If doc
// already holds changes (not passed through a gate), they are trusted and
// indexed; equivocation proofs can only involve changes the gate has seen
// signed.
func NewGate(cfg GateConfig, doc *crdt.Doc) *Gate {
	g := newGate(cfg, doc)
	for _, id := range g.graph.Topo() {
		c, _ := g.graph.Get(id)
		g.index(id, c, nil, nil)
	}
	return g
}

// newGate returns an empty gate for doc: cfg with its defaults, no index.
func newGate(cfg GateConfig, doc *crdt.Doc) *Gate {
	cfg = cfg.withDefaults()
	g := &Gate{
		cfg:      cfg,
		doc:      doc,
		graph:    doc.Graph(),
		docID:    doc.ID(),
		proofs:   make(map[[2]crdt.ID]*EquivocationProof),
		byAuthor: make(map[crdt.Author]int),
	}
	g.buf = newCausalBuf(&g.cfg)
	if len(cfg.Writers) > 0 {
		g.writers = newWriters(cfg.Writers)
	}
	return g
}

// Reserve makes room in the gate's author index for about authors more
// authors (the document has its own hint, crdt.Doc.Reserve). It is a size
// hint for programs that hold many gates, such as a simulation's
// replicas, and never changes a result.
func (g *Gate) Reserve(authors int) { g.authors.reserve(authors) }

// Doc returns the gate's document.
func (g *Gate) Doc() *crdt.Doc { return g.doc }

// Buffered returns how many changes wait in the causal buffer and their
// accounted size in bytes (bounded by Config.MaxBufferCount and
// MaxBufferBytes).
func (g *Gate) Buffered() (count, bytes int) { return g.buf.total.count, g.buf.total.bytes }

// Has reports whether the change id is known: applied to the document or
// waiting in the causal buffer. A receiver may drop any input claiming a
// known ID (see [PeekID]) without checking it.
func (g *Gate) Has(id crdt.ID) bool { return g.graph.Has(id) || g.buf.has(id) }

// Writers returns the writer set as of the document's current heads,
// sorted, or nil for an open document.
func (g *Gate) Writers() []crdt.Author {
	if g.writers == nil {
		return nil
	}
	return g.writers.current(g.graph.Heads())
}

// Metrics returns a snapshot of the gate's counters.
func (g *Gate) Metrics() Metrics {
	m := g.m
	m.BufferCount = g.buf.total.count
	m.BufferBytes = g.buf.total.bytes
	m.Proofs = len(g.proofs)
	m.Equivocators = len(g.byAuthor)
	return m
}

// ReceiveBytes runs both stages on an encoded envelope from peer from: a
// duplicate is dropped by its claimed ID before any work, then
// [CheckStateless] (through [GateConfig.SigCache]), then [Gate.Receive].
// Stage 1 rejections are counted.
func (g *Gate) ReceiveBytes(from string, b []byte, now time.Time) Result {
	if id, ok := PeekID(b); ok && g.Has(id) {
		var res Result
		g.expire(now, &res)
		res.Duplicate = true
		g.m.Duplicates++
		return res
	}
	env, rej := CheckStatelessCached(g.docID, b, g.cfg.SigCache)
	if rej != nil {
		var res Result
		g.expire(now, &res)
		g.refuse(&res, from, rej)
		return res
	}
	return g.Receive(from, env, now)
}

// Receive runs stage 2 on env, a change from peer from, at time now (which
// also expires buffered changes whose TTL has passed). env should come
// from [CheckStateless] or [Sign]; otherwise (e.g. from [DecodeEnvelope])
// its ID and signature are verified here first (through
// [GateConfig.SigCache]). The Gate keeps env.
func (g *Gate) Receive(from string, env *Envelope, now time.Time) Result {
	var res Result
	g.expire(now, &res)
	switch {
	case env == nil || env.Change == nil:
		g.refuse(&res, from, rejectf(RejectBadEncoding, crdt.ID{}, ErrBadEncoding, "nil envelope"))
		return res
	case env.Change.Doc != g.docID:
		g.refuse(&res, from, rejectf(RejectWrongDoc, env.ID, ErrWrongDoc, "change for doc %q", env.Change.Doc))
		return res
	case g.Has(env.ID):
		// Safe before verifying: whatever env is, the change with this ID
		// is already known.
		res.Duplicate = true
		g.m.Duplicates++
		return res
	}
	if rej := env.check(g.cfg.SigCache); rej != nil {
		g.refuse(&res, from, rej)
		return res
	}
	// Resolve looks the parents up for the Add that admit makes, too.
	waits := g.graph.Resolve(env.Change)
	if len(waits) == 0 {
		g.admit(from, env, &res)
		return res
	}
	evicted, reason := g.buf.add(from, env, waits, now)
	for _, e := range evicted {
		g.drop(&res, e, RejectEvicted)
	}
	if reason != RejectNone {
		g.refuse(&res, from, rejectf(reason, env.ID, ErrBufferFull, "peer %q, author %s", from, env.Change.Author.Short()))
		return res
	}
	g.m.Buffered++
	res.Buffered = true
	res.From = from
	for _, p := range waits {
		if !g.buf.has(p) {
			res.Missing = append(res.Missing, p)
		}
	}
	return res
}

// Local passes a change made and signed by this node (see [Sign] and
// [Gate.Propose]) through stage 2 and applies it. It is Receive with
// [LocalPeer] as the sender.
func (g *Gate) Local(env *Envelope, now time.Time) Result {
	return g.Receive(LocalPeer, env, now)
}

// Propose makes the next local change holding ops (crdt.Doc.Prepare),
// signs it with key (whose public half must be the Doc's author) and
// applies it through the gate. It returns the envelope to persist and
// broadcast, and the result (which may also release buffered changes).
func (g *Gate) Propose(key ed25519.PrivateKey, ops []crdt.Op, now time.Time) (*Envelope, Result, error) {
	c, err := g.doc.Prepare(ops)
	if err != nil {
		return nil, Result{}, fmt.Errorf("bft: propose: %w", err)
	}
	env, err := Sign(key, c)
	if err != nil {
		return nil, Result{}, fmt.Errorf("bft: propose: %w", err)
	}
	res := g.Local(env, now)
	if res.Rejection != nil {
		return env, res, fmt.Errorf("bft: propose: %w", res.Rejection)
	}
	return env, res, nil
}

// Tick expires buffered changes whose TTL has passed at now and returns
// them (reason RejectExpired), oldest first.
func (g *Gate) Tick(now time.Time) []Expired {
	var res Result
	g.expire(now, &res)
	return res.Dropped
}

// Waiting returns the IDs of the buffered changes, sorted. For tests and
// diagnostics.
func (g *Gate) Waiting() []crdt.ID {
	out := make([]crdt.ID, 0, len(g.buf.byID))
	for id := range g.buf.byID {
		out = append(out, id)
	}
	slices.SortFunc(out, crdt.ID.Compare)
	return out
}

func (g *Gate) expire(now time.Time, res *Result) {
	for _, e := range g.buf.expire(now) {
		g.drop(res, e, RejectExpired)
	}
}

// refuse records the rejection of the call's input.
func (g *Gate) refuse(res *Result, from string, rej *Rejection) {
	rej.From = from
	res.Rejection = rej
	g.m.Rejected[rej.Reason]++
}

// drop records a buffered change leaving without being accepted.
func (g *Gate) drop(res *Result, e *bufEntry, r Reason) {
	res.Dropped = append(res.Dropped, Dropped{ID: e.env.ID, Author: e.env.Change.Author, From: e.from, Reason: r})
	g.m.Rejected[r]++
}

type pending struct {
	env   *Envelope
	from  string
	input bool
}

// admit validates and applies env (all parents present), then everything
// it unblocks, in causal (breadth-first) order.
func (g *Gate) admit(from string, env *Envelope, res *Result) {
	var buf [4]pending // most changes release none or few: no allocation
	queue := append(buf[:0], pending{env: env, from: from, input: true})
	for k := 0; k < len(queue); k++ {
		p := queue[k]
		rej := g.stepChange(p.env, res)
		if rej != nil {
			rej.From = p.from
			g.m.Rejected[rej.Reason]++
			if p.input {
				res.Rejection = rej
			} else {
				res.Dropped = append(res.Dropped, Dropped{ID: p.env.ID, Author: p.env.Change.Author, From: p.from, Reason: rej.Reason})
			}
			for _, e := range g.buf.dropWaiters(p.env.ID) {
				g.drop(res, e, RejectBadParent)
			}
			continue
		}
		if !p.input {
			g.m.Released++
		}
		for _, e := range g.buf.arrived(p.env.ID) {
			queue = append(queue, pending{env: e.env, from: e.from})
		}
	}
}

// stepChange checks causal validity of env (all parents present), looks
// for equivocation, and applies it.
func (g *Gate) stepChange(env *Envelope, res *Result) *Rejection {
	c := env.Change
	maxL, ok := g.graph.MaxParentLamport(c)
	if !ok {
		panic("bft: admit with a missing parent")
	}
	if c.Lamport != maxL+1 {
		return rejectf(RejectBadLamport, env.ID, ErrBadLamport, "lamport %d, want %d", c.Lamport, maxL+1)
	}
	if c.Seq > 1 {
		pc, ok := g.graph.Get(c.Prev)
		switch {
		case !ok:
			return rejectf(RejectBadSeq, env.ID, ErrBadSeq, "prev %s is not in the causal past", c.Prev.Short())
		case pc.Author != c.Author:
			return rejectf(RejectBadSeq, env.ID, ErrBadSeq, "prev %s is by another author", c.Prev.Short())
		case pc.LastSeq()+1 != c.Seq:
			return rejectf(RejectBadSeq, env.ID, ErrBadSeq, "seq %d does not follow prev's last seq %d", c.Seq, pc.LastSeq())
		case !g.inPast(c.Prev, c.Parents):
			return rejectf(RejectBadSeq, env.ID, ErrBadSeq, "prev %s is not in the causal past", c.Prev.Short())
		}
	}
	var past *writerSnap
	if g.writers != nil {
		past = g.writers.past(c.Parents)
		if !past.allows(c.Author) {
			return rejectf(RejectNotWriter, env.ID, ErrNotWriter, "author %s", c.Author.Short())
		}
	}
	if _, err := g.doc.Apply(env.ID, c); err != nil {
		return reject(RejectApply, env.ID, fmt.Errorf("%w: %w", ErrApply, err))
	}
	g.m.Accepted++
	res.Accepted = append(res.Accepted, env)
	if p := g.index(env.ID, c, env, past); p != nil {
		res.Proofs = append(res.Proofs, p)
	}
	return nil
}

// inPast reports whether x is one of parents or an ancestor of one.
func (g *Gate) inPast(x crdt.ID, parents []crdt.ID) bool {
	if _, ok := slices.BinarySearchFunc(parents, x, crdt.ID.Compare); ok {
		return true
	}
	for _, p := range parents {
		if g.graph.IsAncestor(x, p) {
			return true
		}
	}
	return false
}
