package replica

import (
	"cmp"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
)

// peer is what the replica knows about one remote peer. Its times are
// ticks (nanoseconds since the replica's first Tick, see Replica.tick), 8
// bytes where a time.Time takes 24: a simulation holds a dozen peers in
// each of 100,000 replicas.
type peer struct {
	id PeerID
	// lastSync is a set of changes whose whole causal past the peer is
	// known to hold: its hello heads after a session we finished, both
	// hellos' heads once it said done too. Empty before the first sync.
	lastSync crdt.Version
	out, in  *session // the session we opened, the one it opened
	// fin is the last session we finished, waiting for the peer's done to
	// upgrade lastSync to both sides' hello heads.
	fin *finished

	count uint64 // changes the peer said it holds in its last hello

	failures     int
	backoffUntil tick
	hellos       float64 // hello budget: sessions the peer may open now (at most helloBurst)
	hellosAt     tick    // when hellos was last refilled
	helloFlood   int     // hellos ignored since the budget was last positive

	asked map[crdt.ID]time.Time // IDs asked for outside a session -> deadline

	// Work put off while another session brings changes in.
	deferred      *Message // a hello to answer
	deferredUntil tick     // answer it by then regardless
	wantUntil     tick

	tokens   float64 // serve budget, bytes
	tokensAt tick

	up       bool
	wantSync bool // open a session (PeerUp), by wantUntil
	// inDefer is set while the peer is in Replica.deferList.
	inDefer bool
	// attn is set while the peer is in Replica.attn: it has (or had at
	// the last Tick) a session or outstanding needs for tickSync to watch.
	attn bool
}

// helloBurst is how many sessions a peer may open back to back.
const helloBurst = 4

func (r *Replica) peer(id PeerID) *peer {
	h := peerHash(id)
	p := r.findPeerHash(id, h)
	if p == nil {
		var pos int32
		pos, p = r.peers.Add(peer{id: id, tokens: float64(r.cfg.ServeBurst), tokensAt: r.tick,
			hellos: helloBurst, hellosAt: r.tick})
		r.peerIx.Insert(h, pos)
		// A new slice, so a loop over the old one is not disturbed.
		i, _ := slices.BinarySearchFunc(r.sorted, id, cmpPeer)
		r.sorted = slices.Insert(slices.Clip(r.sorted), i, p)
	}
	return p
}

// peerSeed seeds peerHash, per process: nobody can choose peer IDs that
// pile up in one run of slots.
var peerSeed = maphash.MakeSeed()

// peerHash is the slot hash of a peer ID. A replica looks its sender up
// on every message: in a simulation of thousands of replicas, each cold in
// the cache, a Go map's header, directory and group drew a tenth of the
// run's profile samples; the slots are one line to read before the peer
// (the 10,000-node run is 2% faster).
func peerHash(id PeerID) uint32 { return uint32(maphash.String(peerSeed, string(id)) >> 32) }

// findPeer returns the peer id, or nil if the replica has not met it.
func (r *Replica) findPeer(id PeerID) *peer { return r.findPeerHash(id, peerHash(id)) }

func (r *Replica) findPeerHash(id PeerID, h uint32) *peer {
	i := r.peerIx.Find(h, func(i int32) bool { return r.peers.At(i).id == id })
	if i < 0 {
		return nil
	}
	return r.peers.At(i)
}

func cmpPeer(q *peer, id PeerID) int {
	switch {
	case q.id < id:
		return -1
	case q.id > id:
		return 1
	}
	return 0
}

// sortedPeers returns the peers in ID order. The slice is the replica's:
// callers must not modify it. A peer added meanwhile (peer) makes a new
// slice, so the returned one stays valid for a loop.
func (r *Replica) sortedPeers() []*peer {
	return r.sorted
}

// finished records a session we completed, until the peer says it has too.
type finished struct {
	id    uint64
	union crdt.Version // both hellos' heads: what both sides then hold
}

// session is one reconciliation with a peer (Kleppmann & Howard, with the
// Bloom filter step). Both sides exchange hellos (heads + Bloom filter of
// the changes since their last sync), then each streams, in causal order,
// its changes the other's filter does not hold plus all their descendants,
// in batches paced by acks. When both streams have ended, each side asks
// (needs) for the other's heads and the parents still missing, round after
// round, until it holds all of the other's heads.
type session struct {
	id        uint64
	initiator bool
	deadline  time.Time
	mine      []crdt.ID // our heads as sent in our hello
	peerDone  bool      // the peer's done arrived before we finished

	gotHello bool
	heads    []crdt.ID // the peer's heads, sorted

	queue    []crdt.ID // outgoing stream, causal order
	qpos     int
	sent     uint64 // batches sent
	acked    uint64 // batches acknowledged (highest seq + 1)
	sentLast bool

	recv     uint64 // next incoming batch number
	recvDone bool

	// missing holds parents the gate reported missing during this
	// session, each marked owed if the peer is accountable for it (see
	// owedBy).
	missing   map[crdt.ID]bool
	needsOut  bool                    // a needs request is waiting for its answer
	throttled bool                    // the outgoing stream waits for serve budget
	requested map[crdt.ID]*needStatus // the last needs round
	unserved  map[crdt.ID]bool        // IDs not owed that the peer did not serve: not asked again
	rounds    int                     // needs rounds sent
}

// needStatus is what became of one ID asked for in a needs round.
type needStatus struct {
	owed      bool // the peer is accountable for it (see owedBy)
	delivered bool // the answer carried it
}

// A peer is accountable for (owes) a change only when it provably claimed
// to hold it: an honest replica advertises only heads of its own document,
// and streams or serves only changes it applied, so it holds the whole
// causal past of both. A session's owed set is therefore the peer's hello
// heads and the missing parents of changes it sent on its sync stream,
// plus, transitively, everything our frontier walk finds below them. A
// change relayed by gossip proves nothing (gossip forwards a change after
// the stateless check, before the relay holds its parents), so the
// parents missing below it are asked for too but never owed. Only an owed
// ID left unserved can bring a penalty (see maybeFinish).

func (r *Replica) newSession(id uint64, initiator bool) *session {
	// The maps are made when first written: most sessions find nothing
	// missing.
	return &session{id: id, initiator: initiator, deadline: r.now.Add(r.cfg.SyncTimeout)}
}

func (r *Replica) wireHeads() []crdt.ID {
	h := r.doc.Heads()
	if len(h) > MaxMsgIDs {
		h = h[:MaxMsgIDs]
	}
	return h
}

// bloomFor returns the filter of the changes added since the last sync
// with p (nil if there are none).
func (r *Replica) bloomFor(p *peer) *Bloom {
	g := r.doc.Graph()
	buf := indexPool.Get().(*[]int32)
	defer indexPool.Put(buf)
	*buf = g.AppendSince((*buf)[:0], p.lastSync)
	n := len(*buf)
	if n == 0 {
		return nil
	}
	if n > r.cfg.MaxBloomEntries {
		// Too many: the filter covers the newest, in causal order.
		since := g.Since(p.lastSync)
		since = since[len(since)-r.cfg.MaxBloomEntries:]
		b := NewBloom(len(since), r.cfg.BloomFPRate, r.cfg.Rand.Uint64())
		for _, id := range since {
			b.Add(id)
		}
		return b
	}
	// All of them: a filter does not depend on the order of its entries.
	b := NewBloom(n, r.cfg.BloomFPRate, r.cfg.Rand.Uint64())
	for _, i := range *buf {
		id, _ := g.Node(i)
		b.Add(id)
	}
	return b
}

// indexPool holds scratch slices of graph node numbers.
var indexPool = sync.Pool{New: func() any { return new([]int32) }}

// candidates returns, in causal order, the changes p may lack: those not in
// the causal past of the last sync or of p's heads, that p's filter does
// not hold, plus all their descendants.
func (r *Replica) candidates(p *peer, heads []crdt.ID, bloom *Bloom) []crdt.ID {
	g := r.doc.Graph()
	base := slices.Concat(p.lastSync, heads)
	since := g.Since(crdt.NewVersion(base...))
	send := make(map[crdt.ID]struct{})
	out := since[:0]
	for _, id := range since {
		mark := !bloom.Has(id)
		if !mark {
			c, _ := g.Get(id)
			for _, par := range c.Parents {
				if _, ok := send[par]; ok {
					mark = true
					break
				}
			}
		}
		if mark {
			send[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

// startSync opens a session with p unless one is open already, or p's own
// session is waiting for our answer (it will reconcile both ways).
func (r *Replica) startSync(p *peer) {
	if p.out != nil || p.deferred != nil {
		return
	}
	id := r.cfg.Rand.Uint64() | 1
	if p.in != nil && p.in.id == id {
		id ^= 2
	}
	s := r.newSession(id, true)
	s.mine = r.wireHeads()
	p.out = s
	r.attend(p)
	r.stats.SessionsOpened++
	r.send(p.id, &Message{Type: MsgHello, Session: s.id, Count: uint64(r.doc.Graph().Len()), IDs: s.mine, Bloom: r.bloomFor(p)})
}

func (r *Replica) stepHello(p *peer, m *Message) {
	p.count = m.Count
	if m.Reply {
		s := p.out
		if s == nil || s.id != m.Session || s.gotHello {
			return // stale or duplicate
		}
		s.gotHello = true
		s.heads = m.IDs
		s.deadline = r.now.Add(r.cfg.SyncTimeout)
		s.queue = r.candidates(p, m.IDs, m.Bloom)
		r.pump(p, s)
		r.maybeFinish(p, s)
		return
	}
	if m.Session == 0 {
		r.alert(Alert{Kind: AlertPenalty, Peer: p.id, Reason: "bad-session", Penalize: true})
		return
	}
	if p.in != nil && p.in.id == m.Session {
		return // duplicate
	}
	// Hello budget: a token bucket of helloBurst sessions refilled at one
	// per MinHelloGap, so quick honest retries pass and a flood costs one
	// decode per hello.
	if el := r.tick - p.hellosAt; el > 0 {
		p.hellos = min(helloBurst, p.hellos+float64(el)/float64(r.cfg.MinHelloGap))
		p.hellosAt = r.tick
	}
	if p.hellos < 1 {
		p.helloFlood++
		if p.helloFlood == 8 {
			r.alert(Alert{Kind: AlertPenalty, Peer: p.id, Reason: "hello-flood", Penalize: true})
		}
		return
	}
	if o := p.out; o != nil && !o.gotHello {
		// Crossing hellos: keep the session with the smaller number, on
		// both sides, so one session reconciles both ways.
		if o.id == m.Session || o.id < m.Session {
			return
		}
		p.out = nil
		r.stats.SessionsOpened--
	}
	p.hellos--
	p.helloFlood = 0
	p.wantSync = false // the peer's session reconciles both ways
	if r.bigger(p) && r.busyExcept(p) {
		// The peer holds far more than we do and another session is
		// already bringing changes in: answer once it is done (at most
		// SyncTimeout/2 from now), so the Bloom filter we send covers
		// what it brought and this peer does not stream the same history
		// again (a newcomer meeting several peers at once). Hellos from
		// peers of about our size are answered at once: their heads and
		// filter would go stale while waiting.
		d := *m // m is the caller's, on its stack
		p.deferred, p.deferredUntil = &d, r.tick.add(r.cfg.SyncTimeout/2)
		r.deferPeer(p)
		return
	}
	r.answerHello(p, m)
}

// answerHello opens the responder's side of session m.Session.
func (r *Replica) answerHello(p *peer, m *Message) {

	s := r.newSession(m.Session, false)
	s.gotHello = true
	s.heads = m.IDs
	s.mine = r.wireHeads()
	p.in = s
	r.attend(p)
	r.send(p.id, &Message{Type: MsgHello, Session: s.id, Reply: true, Count: uint64(r.doc.Graph().Len()), IDs: s.mine, Bloom: r.bloomFor(p)})
	s.queue = r.candidates(p, m.IDs, m.Bloom)
	r.pump(p, s)
}

// refill tops up p's serve budget for the time elapsed.
func (r *Replica) refill(p *peer) {
	if el := time.Duration(r.tick - p.tokensAt); el > 0 {
		p.tokens = min(float64(r.cfg.ServeBurst), p.tokens+el.Seconds()*float64(r.cfg.ServeRate))
		p.tokensAt = r.tick
	}
}

// pump sends the next batches of s's outgoing stream, up to the window and
// within the peer's serve budget (a peer that asks for the whole history
// again and again gets it at ServeRate, not at line rate). A throttled
// stream resumes at the next Tick.
func (r *Replica) pump(p *peer, s *session) {
	for !s.sentLast && s.sent-s.acked < uint64(r.cfg.SyncWindow) {
		r.refill(p)
		if p.tokens <= 0 {
			s.throttled = true
			return
		}
		var items [][]byte
		size := 0
		for s.qpos < len(s.queue) && len(items) < r.cfg.MaxBatchChanges {
			env, _, ok := r.held(s.queue[s.qpos])
			if !ok {
				s.qpos++
				continue
			}
			if len(items) > 0 && size+len(env) > r.cfg.MaxBatchBytes {
				break
			}
			items = append(items, env)
			size += len(env)
			s.qpos++
		}
		last := s.qpos >= len(s.queue)
		r.send(p.id, &Message{Type: MsgChanges, Session: s.id, Seq: s.sent, Last: last, Items: items})
		r.stats.StreamSent += uint64(len(items))
		p.tokens -= float64(size)
		s.sent++
		if last {
			s.sentLast = true
			s.queue, s.qpos = nil, 0
		}
	}
}

func (r *Replica) sessionFor(p *peer, id uint64) *session {
	if id == 0 {
		return nil
	}
	if p.out != nil && p.out.id == id {
		return p.out
	}
	if p.in != nil && p.in.id == id {
		return p.in
	}
	return nil
}

func (r *Replica) stepAck(p *peer, m *Message) {
	s := r.sessionFor(p, m.Session)
	if s == nil || !s.gotHello || m.Seq >= s.sent {
		return
	}
	if m.Seq+1 > s.acked {
		s.acked = m.Seq + 1
	}
	s.deadline = r.now.Add(r.cfg.SyncTimeout)
	r.pump(p, s)
	r.maybeFinish(p, s)
}

func (r *Replica) stepChanges(p *peer, m *Message) {
	s := r.sessionFor(p, m.Session)
	if s != nil && !s.gotHello {
		s = nil
	}
	if s != nil && !m.Reply {
		if m.Seq < s.recv {
			return // duplicate batch
		}
		s.recv = m.Seq + 1
	}
	for _, it := range m.Items {
		if s != nil && m.Reply {
			if id, ok := bft.PeekID(it); ok {
				if st := s.requested[id]; st != nil {
					st.delivered = true
				}
			}
		}
		missing, ok := r.receive(p.id, it, true)
		if !ok {
			// Garbage from a peer that vouched for it: drop the session.
			if s != nil {
				r.failSession(p, s, AlertPenalty, "bad-change", true)
			}
			return
		}
		if len(missing) > 0 {
			// p sent this change on its sync stream, so it vouches for
			// holding it, and an honest p holds its parents: they are owed.
			switch {
			case s != nil:
				s.addMissing(missing, true, r.cfg.MaxOutstandingNeeds)
			default:
				r.askMissing(p, missing, m.Reply, true)
			}
		}
	}
	if s == nil {
		return
	}
	s.deadline = r.now.Add(r.cfg.SyncTimeout)
	if m.Reply {
		if m.Last {
			s.needsOut = false
		}
	} else if m.Last {
		// No ack for the last batch: acks only open the sender's window,
		// and a sender that sent its last batch sends no more.
		s.recvDone = true
	} else {
		r.send(p.id, &Message{Type: MsgAck, Session: s.id, Seq: m.Seq})
	}
	r.maybeFinish(p, s)
}

// maybeFinish ends s if both streams are done and nothing is missing, or
// asks for what is still missing.
func (r *Replica) maybeFinish(p *peer, s *session) {
	if !s.gotHello || !s.recvDone || !s.sentLast || s.needsOut {
		return
	}
	g := r.doc.Graph()
	for id := range s.missing {
		if g.Has(id) {
			delete(s.missing, id)
		}
	}
	// What the peer owes (its heads and the missing past of what it
	// streamed) and what we merely hope it has (the missing past of
	// changes it relayed by gossip).
	var owedRoots, hopedRoots []crdt.ID
	for _, id := range mapKeys(s.missing) {
		if s.missing[id] {
			owedRoots = append(owedRoots, id)
		} else {
			hopedRoots = append(hopedRoots, id)
		}
	}
	owed := r.frontier(slices.Concat(s.heads, owedRoots))
	need := owed
	if len(hopedRoots) > 0 {
		// A relayed change's missing past that the peer left out of an
		// answer is not to be had from it: ask once, not every round
		// (the change waits in the causal buffer; a session with a peer
		// that holds it brings its past).
		for id, st := range s.requested {
			if !st.owed && !st.delivered && len(s.unserved) < r.cfg.MaxOutstandingNeeds {
				if s.unserved == nil {
					s.unserved = make(map[crdt.ID]bool)
				}
				s.unserved[id] = true
			}
		}
		var hoped []crdt.ID
		for _, id := range r.frontier(hopedRoots) {
			if !s.unserved[id] {
				hoped = append(hoped, id)
			}
		}
		need = slices.Compact(crdt.SortIDs(slices.Concat(owed, hoped)))
		if len(need) > MaxMsgIDs {
			need = need[:MaxMsgIDs]
		}
	}
	if len(need) == 0 && !allIn(g, s.heads) {
		// Everything is here or buffered, yet a head is not applied: the
		// gate refused or dropped part of its past. Not this peer's fault
		// as far as we can tell; end without recording the sync.
		r.endSession(p, s)
		return
	}
	if len(need) == 0 {
		// We hold everything the peer advertised; once the peer says the
		// same (done), both hold what both advertised.
		// Versions are never modified, so the peer's heads serve as the
		// union when they hold ours (the common case once in sync): one
		// list per peer, not two, in every replica of a simulation.
		heads := crdt.NewVersion(s.heads...)
		union := heads
		for _, id := range s.mine {
			if !heads.Contains(id) {
				union = crdt.Version(crdt.SortIDs(slices.Concat(s.mine, s.heads)))
				break
			}
		}
		if s.peerDone {
			p.lastSync, p.fin = union, nil
		} else {
			p.lastSync = heads
			p.fin = &finished{id: s.id, union: union}
		}
		r.send(p.id, &Message{Type: MsgDone, Session: s.id})
		p.failures = 0
		r.catchingUp = false
		if s.initiator {
			r.stats.SessionsDone++
			r.stats.RoundTrips += uint64(1 + s.rounds)
		}
		r.endSession(p, s)
		return
	}
	if s.rounds >= r.cfg.MaxNeedsRounds {
		// Blame the peer only if, in the last round, it answered without
		// any of the owed IDs we asked for: it claimed changes it then
		// does not serve. An answer that carried some of them is progress
		// (an honest peer whose serve budget ran out cuts its answers
		// short), and IDs it never claimed are not its fault; give up
		// quietly then.
		asked, served := false, false
		for _, st := range s.requested {
			if st.owed {
				asked = true
				served = served || st.delivered
			}
		}
		if asked && !served {
			r.failSession(p, s, AlertNonService, "needs-unserved", true)
		} else {
			r.failSession(p, s, AlertNonService, "needs-exhausted", false)
		}
		return
	}
	s.rounds++
	r.stats.NeedsRounds++
	s.needsOut = true
	clear(s.requested)
	if s.requested == nil {
		s.requested = make(map[crdt.ID]*needStatus, len(need))
	}
	isOwed := make(map[crdt.ID]bool, len(owed))
	for _, id := range owed {
		isOwed[id] = true
	}
	for _, id := range need {
		s.requested[id] = &needStatus{owed: isOwed[id]}
	}
	r.send(p.id, &Message{Type: MsgNeeds, Session: s.id, IDs: need})
}

func (r *Replica) endSession(p *peer, s *session) {
	if p.out == s {
		p.out = nil
	}
	if p.in == s {
		p.in = nil
	}
}

func (r *Replica) failSession(p *peer, s *session, kind AlertKind, reason string, penalize bool) {
	r.endSession(p, s)
	r.stats.SessionsFailed++
	p.failures++
	back := r.cfg.SyncBackoff << min(p.failures-1, 6)
	p.backoffUntil = r.tick.add(back)
	r.alert(Alert{Kind: kind, Peer: p.id, Reason: reason, Penalize: penalize})
}

// stepNeeds answers a needs request with the wanted changes this replica
// holds, in causal order, within the peer's serve budget.
func (r *Replica) stepNeeds(p *peer, m *Message) {
	r.refill(p)
	type item struct {
		n   int32 // the apply order: a causal order
		env []byte
	}
	var found []item
	for _, id := range m.IDs {
		if env, n, ok := r.held(id); ok {
			found = append(found, item{n, env})
		}
	}
	slices.SortFunc(found, func(a, b item) int { return cmp.Compare(a.n, b.n) })
	var items [][]byte
	size := 0
	for _, f := range found {
		if p.tokens <= 0 {
			break
		}
		if len(items) > 0 && (size+len(f.env) > r.cfg.MaxBatchBytes || len(items) >= r.cfg.MaxBatchChanges) {
			r.send(p.id, &Message{Type: MsgChanges, Session: m.Session, Reply: true, Items: items})
			items, size = nil, 0
		}
		p.tokens -= float64(len(f.env))
		items = append(items, f.env)
		size += len(f.env)
		r.stats.NeedsServed++
	}
	r.send(p.id, &Message{Type: MsgChanges, Session: m.Session, Reply: true, Last: true, Items: items})
}

// askMissing asks p for the parents of a change it sent outside a
// session. A second level of missing parents (the answer to a needs was
// itself incomplete) starts a full session instead: it costs one round
// trip whatever the depth of the gap. owed says whether p vouched for the
// change (it came on p's sync stream) or only relayed it (gossip).
func (r *Replica) askMissing(p *peer, missing []crdt.ID, deep, owed bool) {
	if s := p.out; s != nil || p.in != nil {
		if s == nil {
			s = p.in
		}
		s.addMissing(missing, owed, r.cfg.MaxOutstandingNeeds)
		return
	}
	if deep {
		r.startSync(p)
		return
	}
	var ask []crdt.ID
	for _, id := range missing {
		if _, ok := p.asked[id]; ok || len(p.asked) >= r.cfg.MaxOutstandingNeeds {
			continue
		}
		if p.asked == nil {
			p.asked = make(map[crdt.ID]time.Time) // most peers are never asked
		}
		p.asked[id] = r.now.Add(r.cfg.SyncTimeout)
		r.attend(p)
		ask = append(ask, id)
	}
	if len(ask) == 0 {
		return
	}
	ask = crdt.SortIDs(ask)
	if len(ask) > MaxMsgIDs {
		ask = ask[:MaxMsgIDs]
	}
	r.send(p.id, &Message{Type: MsgNeeds, Session: 0, IDs: ask})
}

// addMissing records parents the gate reported missing, up to limit IDs;
// an ID owed once stays owed.
func (s *session) addMissing(ids []crdt.ID, owed bool, limit int) {
	if s.missing == nil && len(ids) > 0 {
		s.missing = make(map[crdt.ID]bool)
	}
	for _, id := range ids {
		if o, ok := s.missing[id]; ok {
			s.missing[id] = o || owed
		} else if len(s.missing) < limit {
			s.missing[id] = owed
		}
	}
}

// tickSync times out sessions and requests and starts the periodic sync.
func (r *Replica) tickSync() {
	// Only the peers with a session or outstanding needs have deadlines
	// to check: visit those, in ID order, and keep the ones still busy.
	if len(r.attn) > 0 {
		list := r.attn
		r.attn = nil
		slices.SortFunc(list, func(a, b *peer) int { return cmpPeer(a, b.id) })
		for _, p := range list {
			p.attn = false
		}
		for _, p := range list {
			r.tickPeer(p)
			if p.out != nil || p.in != nil || len(p.asked) > 0 {
				r.attend(p)
			}
		}
	}
	if r.cfg.SyncInterval < 0 || r.now.Before(r.nextSync) {
		return
	}
	var eligible, idle []*peer
	for _, p := range r.sortedPeers() {
		if p.up && p.out == nil && p.in == nil && p.deferred == nil {
			idle = append(idle, p)
			if r.tick >= p.backoffUntil {
				eligible = append(eligible, p)
			}
		}
	}
	if len(eligible) == 0 {
		// Every idle peer is backing off: back-off only orders the choice,
		// it never stops reconciliation.
		eligible = idle
	}
	// Next periodic sync in [0.5, 1.5) × SyncInterval.
	jitter := time.Duration(r.cfg.Rand.Int64N(int64(r.cfg.SyncInterval)))
	r.nextSync = r.now.Add(r.cfg.SyncInterval/2 + jitter)
	if len(eligible) > 0 {
		r.startSync(eligible[r.cfg.Rand.IntN(len(eligible))])
	}
}

// attend puts p on the list tickSync visits.
func (r *Replica) attend(p *peer) {
	if !p.attn {
		p.attn = true
		r.attn = append(r.attn, p)
	}
}

// tickPeer checks p's session deadlines, resumes throttled sessions and
// expires the needs p did not serve in time.
func (r *Replica) tickPeer(p *peer) {
	for _, s := range []*session{p.out, p.in} {
		switch {
		case s == nil:
		case r.now.After(s.deadline):
			r.failSession(p, s, AlertNonService, "sync-timeout", false)
		case s.throttled:
			s.throttled = false
			r.pump(p, s)
			r.maybeFinish(p, s)
		}
	}
	var unserved []crdt.ID
	for id, dl := range p.asked {
		if r.gate.Has(id) { // applied, or delivered and waiting for its own parents
			delete(p.asked, id)
		} else if r.now.After(dl) {
			delete(p.asked, id)
			unserved = append(unserved, id)
		}
	}
	if len(unserved) > 0 {
		unserved = crdt.SortIDs(unserved)
		if len(unserved) > 16 {
			unserved = unserved[:16]
		}
		r.alert(Alert{Kind: AlertNonService, Peer: p.id, Reason: "needs-timeout", IDs: unserved})
		// Fall back to a full session: it finds whatever is missing.
		if p.up && p.out == nil {
			r.startSync(p)
		}
	}
}

// mapKeys returns the keys of m, sorted (map order must never leak into
// the output).
func mapKeys[V any](m map[crdt.ID]V) []crdt.ID {
	out := make([]crdt.ID, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	slices.SortFunc(out, crdt.ID.Compare)
	return out
}

func allIn(g *crdt.Graph, ids []crdt.ID) bool {
	for _, id := range ids {
		if !g.Has(id) {
			return false
		}
	}
	return true
}

// frontier returns what must be fetched for the changes ids to apply: the
// IDs that are neither in the document nor in the gate's causal buffer,
// found by walking from ids through buffered changes to their missing
// ancestors. Sorted.
func (r *Replica) frontier(ids []crdt.ID) []crdt.ID {
	g := r.doc.Graph()
	seen := make(map[crdt.ID]bool)
	var out []crdt.ID
	stack := slices.Clone(ids)
	for len(stack) > 0 && len(out) < MaxMsgIDs {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[id] || g.Has(id) {
			continue
		}
		seen[id] = true
		parents, buffered := r.waiting[id]
		if !buffered || !r.gate.Has(id) {
			out = append(out, id)
			continue
		}
		stack = append(stack, parents...)
	}
	return crdt.SortIDs(out)
}

// pruneWaiting forgets buffered changes that were applied or dropped.
func (r *Replica) pruneWaiting() {
	g := r.doc.Graph()
	for id := range r.waiting {
		if g.Has(id) || !r.gate.Has(id) {
			delete(r.waiting, id)
		}
	}
	for id := range r.viaSync {
		if g.Has(id) || !r.gate.Has(id) {
			delete(r.viaSync, id)
		}
	}
	if len(r.waiting) == 0 {
		r.waiting = nil
	}
	if len(r.viaSync) == 0 {
		r.viaSync = nil
	}
}

func (r *Replica) stepDone(p *peer, m *Message) {
	if p.fin != nil && p.fin.id == m.Session {
		p.lastSync, p.fin = p.fin.union, nil
		return
	}
	if s := r.sessionFor(p, m.Session); s != nil {
		s.peerDone = true
	}
}

// bigger reports whether p said it holds at least a batch more changes
// than we do: a session with it will bring a lot in.
func (r *Replica) bigger(p *peer) bool {
	return p.count >= uint64(r.doc.Graph().Len()+r.cfg.MaxBatchChanges)
}

// busyExcept reports whether a session with a peer other than p may still
// bring a lot in: its incoming stream has not ended, and either we opened
// it and await the answer, or the peer is bigger than us. Peers whose last
// session failed do not count, so a peer that opens sessions and never
// streams cannot keep everyone else waiting.
func (r *Replica) busyExcept(p *peer) bool { return othersBusy(r.busyPair(), p) }

// busy reports whether a session with q may still bring a lot in (see
// busyExcept).
func (r *Replica) busy(q *peer) bool {
	if q.failures > 0 {
		return false
	}
	for _, s := range [2]*session{q.out, q.in} {
		if s != nil && !s.recvDone && ((s.initiator && !s.gotHello) || r.bigger(q)) {
			return true
		}
	}
	return false
}

// busyPeers holds the first two busy peers in ID order (nil if fewer):
// enough to answer busyExcept for every peer at once.
type busyPeers struct{ a, b *peer }

// busyPair returns the first two busy peers in ID order.
func (r *Replica) busyPair() busyPeers {
	var bp busyPeers
	for _, q := range r.sorted {
		if r.busy(q) {
			if bp.a != nil {
				bp.b = q
				return bp
			}
			bp.a = q
		}
	}
	return bp
}

// othersBusy reports whether a peer other than p is among the busy ones.
func othersBusy(bp busyPeers, p *peer) bool { return bp.a != nil && (bp.a != p || bp.b != nil) }

// requestSync opens a session with p now, or, if p may hold far more than
// we do and another session may bring a lot in, as soon as that one is
// done (at most SyncTimeout/2 later).
func (r *Replica) requestSync(p *peer) {
	if (p.count != 0 && !r.bigger(p)) || !r.busyExcept(p) {
		r.startSync(p)
		return
	}
	p.wantSync, p.wantUntil = true, r.tick.add(r.cfg.SyncTimeout/2)
	r.deferPeer(p)
}

// deferPeer notes that p has put-off work (p.deferred or p.wantSync) for
// runDeferred.
func (r *Replica) deferPeer(p *peer) {
	if !p.inDefer {
		p.inDefer = true
		i, _ := slices.BinarySearchFunc(r.deferList, p.id, cmpPeer)
		r.deferList = slices.Insert(r.deferList, i, p)
	}
	r.deferredAny = true
}

// runDeferred does the put-off work whose time has come. It runs after
// every input, so deferral never needs its own timer. It visits only the
// peers with put-off work (deferList), in ID order, and finds the busy
// sessions once per pass (and again after opening one), not once per
// deferred peer: until a newcomer's first sessions end, most of its peers
// wait here and it runs after every message.
func (r *Replica) runDeferred() {
	if !r.deferredAny {
		return
	}
	r.deferredAny = false
	list := r.deferList // in ID order (deferPeer)
	r.deferList = nil
	busy := r.busyPair()
	keep := list[:0]
	for _, p := range list {
		if m := p.deferred; m != nil {
			if othersBusy(busy, p) && r.tick < p.deferredUntil {
				r.deferredAny = true
			} else {
				p.deferred = nil
				r.answerHello(p, m)
				busy = r.busyPair()
			}
		}
		if p.wantSync {
			switch {
			case !p.up || p.out != nil:
				p.wantSync = false
			case (p.count == 0 || r.bigger(p)) && othersBusy(busy, p) && r.tick < p.wantUntil:
				r.deferredAny = true
			default:
				p.wantSync = false
				r.startSync(p)
				busy = r.busyPair()
			}
		}
		if p.deferred != nil || p.wantSync {
			keep = append(keep, p)
		} else {
			p.inDefer = false
		}
	}
	clear(list[len(keep):])
	// The peers deferred during the pass are not in keep (a peer in the
	// list is not added again): merge the two ordered lists.
	if len(r.deferList) > 0 {
		for _, p := range r.deferList {
			i, _ := slices.BinarySearchFunc(keep, p.id, cmpPeer)
			keep = slices.Insert(keep, i, p)
		}
	}
	r.deferList = keep
}
