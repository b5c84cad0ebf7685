package sim

import (
	"crypto/ed25519"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"lukechampine.com/blake3"
)

// fakeNode is a tiny stand-in for the replica used to test the engine:
// changes are opaque blobs in a grow-only set, reconciliation is a full
// digest exchange with a random peer every second.
type fakeNode struct {
	author   crdt.Author
	rng      *rand.Rand
	changes  map[crdt.ID][]byte
	ids      []crdt.ID
	peers    []string
	seq      uint64
	pending  int
	rd       Ready
	lastSync time.Time
	pres     map[string]map[string]string
}

func newFake(cfg NodeConfig) (Node, error) {
	n := &fakeNode{rng: cfg.Rand, changes: map[crdt.ID][]byte{}, pres: map[string]map[string]string{}, lastSync: cfg.Now}
	copy(n.author[:], cfg.Key.Public().(ed25519.PublicKey))
	for _, b := range cfg.Log {
		n.add(b, false)
	}
	n.rd.Persist = nil
	return n, nil
}

func (n *fakeNode) add(b []byte, persist bool) bool {
	id := crdt.HashChange(b)
	if _, ok := n.changes[id]; ok {
		return false
	}
	n.changes[id] = b
	i, _ := slices.BinarySearchFunc(n.ids, id, func(a, b crdt.ID) int { return a.Compare(b) })
	n.ids = slices.Insert(n.ids, i, id)
	var a crdt.Author
	copy(a[:], b[1:33])
	if persist {
		n.rd.Persist = append(n.rd.Persist, b)
	}
	n.rd.Applied = append(n.rd.Applied, Applied{ID: id, Author: a, Local: a == n.author && persist && n.pending < 0})
	if a == n.author {
		seq := binary.BigEndian.Uint64(b[33:41])
		if seq > n.seq {
			n.seq = seq
		}
	}
	return true
}

func (n *fakeNode) Step(from string, msg []byte) error {
	if len(msg) < 1 {
		return nil
	}
	switch msg[0] {
	case 'C':
		if len(msg) < 41 {
			return nil
		}
		if n.add(slices.Clone(msg), true) {
			_ = from
		}
	case 'D', 'd':
		theirs := map[crdt.ID]bool{}
		for k := 1; k+32 <= len(msg); k += 32 {
			var id crdt.ID
			copy(id[:], msg[k:k+32])
			theirs[id] = true
		}
		for _, id := range n.ids {
			if !theirs[id] {
				n.rd.Send = append(n.rd.Send, Direct{To: from, Data: n.changes[id]})
			}
		}
		if msg[0] == 'D' {
			for id := range theirs {
				if _, ok := n.changes[id]; !ok {
					n.rd.Send = append(n.rd.Send, Direct{To: from, Data: n.digest('d')})
					break
				}
			}
		}
	case 'P':
		parts := splitN(msg[1:])
		if len(parts) == 3 {
			n.setPres(parts[0], parts[1], parts[2])
		}
	}
	return nil
}

func splitN(b []byte) []string {
	var out []string
	for len(b) > 0 {
		l := int(b[0])
		if 1+l > len(b) {
			return nil
		}
		out = append(out, string(b[1:1+l]))
		b = b[1+l:]
	}
	return out
}

func (n *fakeNode) setPres(ns, k, v string) {
	m := n.pres[ns]
	if m == nil {
		m = map[string]string{}
		n.pres[ns] = m
	}
	if v > m[k] {
		m[k] = v
	}
}

func (n *fakeNode) digest(kind byte) []byte {
	b := []byte{kind}
	for _, id := range n.ids {
		b = append(b, id[:]...)
	}
	return b
}

func (n *fakeNode) Tick(now time.Time) {
	for ; n.pending > 0; n.pending-- {
		n.seq++
		b := []byte{'C'}
		b = append(b, n.author[:]...)
		b = binary.BigEndian.AppendUint64(b, n.seq)
		save := n.pending
		n.pending = -1
		n.add(b, true)
		n.pending = save
		n.rd.Broadcast = append(n.rd.Broadcast, Outgoing{Topic: TopicChanges, Data: b})
	}
	if now.Sub(n.lastSync) >= time.Second && len(n.peers) > 0 {
		n.lastSync = now
		p := n.peers[n.rng.IntN(len(n.peers))]
		n.rd.Send = append(n.rd.Send, Direct{To: p, Data: n.digest('D')})
	}
}

func (n *fakeNode) Propose(...crdt.Op) error { n.pending = 1; return nil }

func (n *fakeNode) SetPresence(ns, key string, v crdt.Value) error {
	val := v.String()
	n.setPres(ns, key, val)
	b := []byte{'P'}
	for _, s := range []string{ns, key, val} {
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	n.rd.Broadcast = append(n.rd.Broadcast, Outgoing{Topic: TopicEphemeral, Data: b})
	return nil
}

func (n *fakeNode) PeerUp(p string) {
	if !slices.Contains(n.peers, p) {
		n.peers = append(n.peers, p)
		sort.Strings(n.peers)
	}
}

func (n *fakeNode) PeerDown(p string) {
	n.peers = slices.DeleteFunc(n.peers, func(x string) bool { return x == p })
}

func (n *fakeNode) HasReady() bool {
	return len(n.rd.Persist)+len(n.rd.Broadcast)+len(n.rd.Send)+len(n.rd.Applied)+len(n.rd.Alerts) > 0
}
func (n *fakeNode) Ready() Ready { return n.rd }
func (n *fakeNode) Advance()     { n.rd = Ready{} }

func (n *fakeNode) StateHash() [32]byte {
	h := blake3.New(32, nil)
	for _, id := range n.ids {
		h.Write(id[:])
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
func (n *fakeNode) Heads() []crdt.ID { return n.ids }
func (n *fakeNode) Has(id crdt.ID) bool {
	_, ok := n.changes[id]
	return ok
}
func (n *fakeNode) Len() int { return len(n.ids) }
func (n *fakeNode) PresenceHash(ns string) [32]byte {
	h := blake3.New(32, nil)
	m := n.pres[ns]
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h.Write([]byte(k + "=" + m[k] + ";"))
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
func (n *fakeNode) Footprint() int { return 0 }

func fakeValidator(_ string, topic Topic, data []byte) Verdict {
	if topic == TopicChanges && (len(data) != 41 || data[0] != 'C') {
		return Reject
	}
	return Accept
}

func fakeNamespace(data []byte) string {
	if p := splitN(data[1:]); len(p) == 3 {
		return p[0]
	}
	return ""
}

func fakeConfig(cfg Config) Config {
	cfg.Factory = newFake
	cfg.Validator = fakeValidator
	cfg.Namespace = fakeNamespace
	return cfg
}
