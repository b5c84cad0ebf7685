package sim

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/replica"
)

// chain is an author's change chain as an attacker builds it.
type chain struct {
	key  ed25519.PrivateKey
	seq  uint64 // last seq used
	prev crdt.ID
}

func (c *chain) author() crdt.Author { return bft.AuthorOf(c.key.Public().(ed25519.PublicKey)) }

// puppet returns a deterministic key the Byzantine node p controls besides
// its own (a sock puppet), so attacks that burn a chain do not touch p's.
func (s *Sim) puppet(p *peer, k uint64) *chain {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], s.cfg.Seed)
	binary.LittleEndian.PutUint64(seed[8:], uint64(p.i))
	binary.LittleEndian.PutUint64(seed[16:], k)
	copy(seed[24:], "puppet")
	return &chain{key: ed25519.NewKeyFromSeed(seed[:])}
}

// view returns the heads of p's document and the Lamport time a change on
// them must have.
func (s *Sim) view(p *peer) ([]crdt.ID, uint64) {
	rn, ok := p.node.(*ReplicaNode)
	if !ok {
		return nil, 1
	}
	g := rn.R.Doc().Graph()
	heads := g.Heads()
	if len(heads) > crdt.MaxParents {
		heads = heads[:crdt.MaxParents]
	}
	var lam uint64
	for _, h := range heads {
		if c, ok := g.Get(h); ok && c.LastLamport() > lam {
			lam = c.LastLamport()
		}
	}
	return append([]crdt.ID(nil), heads...), lam + 1
}

// next builds the next change of chain c on parents at lamport.
func (s *Sim) next(c *chain, doc string, parents []crdt.ID, lamport uint64, tag string) *crdt.Change {
	ch := &crdt.Change{
		Doc: doc, Author: c.author(), Seq: c.seq + 1, Lamport: lamport, Prev: c.prev,
		Parents: parents, Time: s.now / 1e6,
		Ops: []crdt.Op{crdt.Insert("byz", fmt.Sprintf("%s-%d", tag, s.rng.Uint32()), map[string]crdt.Value{"v": crdt.Int(int64(s.rng.Uint32()))})},
	}
	return ch
}

// sign signs ch with key (which need not be ch's author: a forgery).
func sign(key ed25519.PrivateKey, ch *crdt.Change) *bft.Envelope {
	raw, err := ch.Encode()
	if err != nil {
		panic(fmt.Sprintf("sim: attack built an unencodable change: %v", err))
	}
	e := &bft.Envelope{Change: ch, ID: crdt.HashChange(raw), Raw: raw}
	copy(e.Sig[:], ed25519.Sign(key, e.ID[:]))
	return e
}

func changeMsg(env []byte) []byte {
	return replica.MustEncode(&replica.Message{Type: replica.MsgChange, Items: [][]byte{env}})
}

// publishEnv gossips an envelope from p.
func (s *Sim) publishEnv(p *peer, env []byte) { s.publish(p, TopicChanges, changeMsg(env)) }

// markInvalid records a change ID no honest node may apply.
func (s *Sim) markInvalid(id crdt.ID, why string) { s.inv.invalid[id] = why }

// victim picks a random honest node.
func (s *Sim) victim() *peer {
	for tries := 0; tries < 64; tries++ {
		q := s.peers[s.rng.IntN(len(s.peers))]
		if q.byz == nil {
			return q
		}
	}
	return s.peers[0]
}

// attackWith runs one attack of behaviour b from p.
func (s *Sim) attackWith(p *peer, b Behaviour) {
	bs := p.byz
	doc := s.cfg.Doc
	switch b {
	case BehaviourEquivocate:
		// Two validly signed changes with the same seq and prev, sent to
		// the network; the chain then continues from the first.
		if bs.own == nil {
			bs.own = &chain{key: p.key}
		}
		heads, lam := s.view(p)
		a := sign(p.key, s.next(bs.own, doc, heads, lam, "eqa"))
		c := sign(p.key, s.next(bs.own, doc, heads, lam, "eqb"))
		s.inv.equivocators[p.author] = true
		s.publishEnv(p, a.Encode())
		s.publishEnv(p, c.Encode())
		bs.own.seq++
		bs.own.prev = a.ID
	case BehaviourForge:
		// A change claiming an honest author, signed with p's key.
		v := s.victim()
		heads, lam := s.view(p)
		ch := s.next(&chain{key: v.key}, doc, heads, lam, "forged")
		e := sign(p.key, ch)
		s.markInvalid(e.ID, "forged signature")
		s.publishEnv(p, e.Encode())
	case BehaviourTamper:
		// A valid envelope with one byte of the body flipped after signing.
		heads, lam := s.view(p)
		c := s.puppet(p, 1<<32|uint64(bs.attacks))
		e := sign(c.key, s.next(c, doc, heads, lam, "tamper"))
		raw := append([]byte(nil), e.Raw...)
		raw[len(raw)-1-s.rng.IntN(4)] ^= 0x01
		s.markInvalid(crdt.HashChange(raw), "tampered body")
		t := &bft.Envelope{ID: e.ID, Sig: e.Sig, Raw: raw}
		s.publishEnv(p, t.Encode())
	case BehaviourLamport:
		heads, lam := s.view(p)
		c := s.puppet(p, 2<<32|uint64(bs.attacks))
		e := sign(c.key, s.next(c, doc, heads, lam+1000+uint64(s.rng.IntN(1<<20)), "lamport"))
		s.markInvalid(e.ID, "inflated lamport")
		s.publishEnv(p, e.Encode())
	case BehaviourFakeParents:
		c := s.puppet(p, 3<<32|uint64(bs.attacks))
		var fake crdt.ID
		for i := range fake {
			fake[i] = byte(s.rng.Uint32())
		}
		e := sign(c.key, s.next(c, doc, []crdt.ID{fake}, 2+uint64(s.rng.IntN(100)), "fakeparent"))
		s.markInvalid(e.ID, "fake parent")
		s.publishEnv(p, e.Encode())
	case BehaviourWithhold:
		// Publish a child whose parent (by the same puppet) is never sent.
		heads, lam := s.view(p)
		c := s.puppet(p, 4<<32|uint64(bs.attacks))
		parent := sign(c.key, s.next(c, doc, heads, lam, "withheld"))
		c.seq++
		c.prev = parent.ID
		child := sign(c.key, s.next(c, doc, []crdt.ID{parent.ID}, parent.Change.LastLamport()+1, "orphan"))
		s.markInvalid(child.ID, "withheld parent")
		s.publishEnv(p, child.Encode())
	case BehaviourFloodInvalid:
		for k := 0; k < bs.b.Flood; k++ {
			switch k % 3 {
			case 0:
				s.publish(p, TopicChanges, s.garbage(64+s.rng.IntN(256)))
			case 1:
				s.publish(p, TopicChanges, changeMsg(s.garbage(120+s.rng.IntN(64))))
			default:
				v := s.victim()
				e := sign(p.key, s.next(&chain{key: v.key}, doc, nil, 1, "flood"))
				s.markInvalid(e.ID, "flood forgery")
				s.publishEnv(p, e.Encode())
			}
		}
	case BehaviourFloodValid:
		// Valid but useless changes from a puppet that writes a lot.
		if bs.flood == nil {
			bs.flood = s.puppet(p, 5<<32)
		}
		for k := 0; k < max(1, bs.b.Flood/5); k++ {
			heads, lam := s.view(p)
			if bs.flood.seq > 0 {
				heads = append(heads, bs.flood.prev)
				heads = crdt.SortIDs(dedupIDs(heads))
				if len(heads) > crdt.MaxParents {
					heads = heads[:crdt.MaxParents]
				}
				if bs.floodLam >= lam {
					lam = bs.floodLam + 1
				}
			}
			e := sign(bs.flood.key, s.next(bs.flood, doc, heads, lam, "spam"))
			bs.flood.seq++
			bs.flood.prev = e.ID
			bs.floodLam = e.Change.LastLamport()
			s.publishEnv(p, e.Encode())
		}
	case BehaviourReplay:
		// A change an honest author signed for another document.
		v := s.victim()
		e := sign(v.key, s.next(&chain{key: v.key}, doc+"-other", nil, 1, "replay"))
		s.markInvalid(e.ID, "replayed from another document")
		s.publishEnv(p, e.Encode())
	}
}

func dedupIDs(ids []crdt.ID) []crdt.ID {
	seen := make(map[crdt.ID]bool, len(ids))
	out := ids[:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// lie corrupts a reconciliation message: hellos claim heads that do not
// exist, needs ask for nonsense, change batches carry garbage.
func (s *Sim) lie(p *peer, data []byte) []byte {
	m, err := replica.DecodeMessage(data)
	if err != nil {
		return s.garbage(len(data))
	}
	randID := func() crdt.ID {
		var id crdt.ID
		for i := range id {
			id[i] = byte(s.rng.Uint32())
		}
		return id
	}
	switch m.Type {
	case replica.MsgHello:
		m.IDs = crdt.SortIDs([]crdt.ID{randID(), randID(), randID()})
		m.Bloom = nil
	case replica.MsgNeeds:
		m.IDs = crdt.SortIDs([]crdt.ID{randID(), randID()})
	case replica.MsgChanges:
		for i := range m.Items {
			m.Items[i] = s.garbage(len(m.Items[i]))
		}
	default:
		c := append([]byte(nil), data...)
		c[len(c)-1] ^= 0x5a
		return c
	}
	b, err := replica.EncodeMessage(m)
	if err != nil {
		return s.garbage(len(data))
	}
	return b
}

// censored reports whether a censoring node drops this stream message
// (it serves nothing: change batches are dropped).
func censored(data []byte) bool {
	return replica.PeekType(data) == replica.MsgChanges
}
