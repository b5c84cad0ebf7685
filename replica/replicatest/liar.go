package replicatest

import (
	"math/rand/v2"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/replica"
)

// Liar is a Byzantine peer that lies in reconciliation. It speaks the wire
// protocol but holds no document:
//
//   - it opens sessions advertising heads that do not exist, with a Bloom
//     filter that claims every change (so honest peers send it nothing);
//   - it answers hellos with fake heads and then either never streams or
//     streams garbage;
//   - it answers needs with garbage, with nothing, or not at all;
//   - with Flood set it sends, every tick and to every peer, bursts of
//     hellos, needs for thousands of random IDs and undecodable bytes.
//
// Honest replicas must still converge among themselves, with bounded
// memory, and raise alerts that name it.
type Liar struct {
	Rand  *rand.Rand
	Flood bool
	// FakeHeads is the number of nonexistent heads it advertises.
	FakeHeads int

	peers []replica.PeerID
	sent  uint64 // messages sent
}

// NewLiar returns a liar with its own seeded source.
func NewLiar(seed uint64, flood bool) *Liar {
	return &Liar{Rand: rand.New(rand.NewPCG(seed, 0x6c696172)), Flood: flood, FakeHeads: 64}
}

// Sent returns the number of messages the liar sent.
func (l *Liar) Sent() uint64 { return l.sent }

func (l *Liar) fakeIDs(n int) []crdt.ID {
	ids := make([]crdt.ID, n)
	for i := range ids {
		for j := 0; j < 32; j += 8 {
			v := l.Rand.Uint64()
			for k := 0; k < 8; k++ {
				ids[i][j+k] = byte(v >> (8 * k))
			}
		}
	}
	return crdt.SortIDs(ids)
}

func (l *Liar) allOnes() *replica.Bloom {
	b := &replica.Bloom{K: 1, Seed: 0, Bits: make([]uint64, 1)}
	b.Bits[0] = ^uint64(0)
	return b
}

func (l *Liar) garbage() []byte {
	b := make([]byte, 1+l.Rand.IntN(300))
	for i := range b {
		b[i] = byte(l.Rand.Uint32())
	}
	return b
}

func (l *Liar) send(n *Network, self *Node, to replica.PeerID, m *replica.Message) {
	j, ok := n.byID[to]
	if !ok {
		return
	}
	l.sent++
	n.Send(self.idx, j, replica.MustEncode(m))
}

func (l *Liar) sendRaw(n *Network, self *Node, to replica.PeerID, b []byte) {
	if j, ok := n.byID[to]; ok {
		l.sent++
		n.Send(self.idx, j, b)
	}
}

func (l *Liar) hello(n *Network, self *Node, to replica.PeerID) {
	l.send(n, self, to, &replica.Message{Type: replica.MsgHello, Session: l.Rand.Uint64() | 1,
		IDs: l.fakeIDs(l.FakeHeads), Bloom: l.allOnes()})
}

// PeerUp implements Handler.
func (l *Liar) PeerUp(n *Network, self *Node, p replica.PeerID) {
	l.peers = append(l.peers, p)
	l.hello(n, self, p)
}

// Step implements Handler.
func (l *Liar) Step(n *Network, self *Node, from replica.PeerID, data []byte) {
	m, err := replica.DecodeMessage(data)
	if err != nil {
		return
	}
	switch m.Type {
	case replica.MsgHello:
		if !m.Reply {
			l.send(n, self, from, &replica.Message{Type: replica.MsgHello, Session: m.Session, Reply: true,
				IDs: l.fakeIDs(l.FakeHeads), Bloom: l.allOnes()})
		}
		switch l.Rand.IntN(3) {
		case 0: // never stream
		case 1: // an empty stream: the honest side then asks for the fake heads
			l.send(n, self, from, &replica.Message{Type: replica.MsgChanges, Session: m.Session, Last: true})
		case 2: // garbage
			l.send(n, self, from, &replica.Message{Type: replica.MsgChanges, Session: m.Session, Last: true,
				Items: [][]byte{l.garbage(), l.garbage()}})
		}
	case replica.MsgNeeds:
		switch l.Rand.IntN(3) {
		case 0: // silence
		case 1:
			l.send(n, self, from, &replica.Message{Type: replica.MsgChanges, Session: m.Session, Reply: true, Last: true})
		case 2:
			l.send(n, self, from, &replica.Message{Type: replica.MsgChanges, Session: m.Session, Reply: true, Last: true,
				Items: [][]byte{l.garbage()}})
		}
	case replica.MsgChanges:
		if !m.Reply {
			l.send(n, self, from, &replica.Message{Type: replica.MsgAck, Session: m.Session, Seq: m.Seq})
		}
	}
}

// Tick implements Handler.
func (l *Liar) Tick(n *Network, self *Node) {
	for _, p := range l.peers {
		if l.Rand.IntN(10) == 0 {
			l.hello(n, self, p)
		}
		if !l.Flood {
			continue
		}
		for range 10 {
			l.hello(n, self, p)
		}
		l.send(n, self, p, &replica.Message{Type: replica.MsgNeeds, Session: l.Rand.Uint64(), IDs: l.fakeIDs(replica.MaxMsgIDs)})
		l.sendRaw(n, self, p, l.garbage())
		l.send(n, self, p, &replica.Message{Type: replica.MsgChanges, Session: l.Rand.Uint64(), Items: [][]byte{l.garbage()}})
	}
}
