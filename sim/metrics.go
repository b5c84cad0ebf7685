package sim

import (
	"slices"
	"time"

	"github.com/convergenode/convergenode/crdt"
)

// changeInfo follows one change through the network.
type changeInfo struct {
	idx       int32
	origin    int32 // authoring node, -1 if unknown
	at        int64 // when its author applied it
	delivered int32 // nodes other than the origin that applied it
	honest    bool  // authored by an honest node through the workload
}

type metrics struct {
	s *Sim

	msgs, bytes, dups, dropped, lost, duplicated, retransmits int64
	rejected, ignored, stepErrors, verifications              int64
	crashes, restarts, honestPenalties                        int64
	writes, ephemeralWrites                                   int

	changes      map[crdt.ID]*changeInfo
	applied      [][]uint64      // per node bitset over change indexes
	lat          []time.Duration // delivery latencies
	viaSync      int64
	lastHop      int32
	samples      []Sample
	lastPair     int
	lastDistinct int
	convergedAt  int64
}

// Sample is one point of the inconsistency series.
type Sample struct {
	T        time.Duration `json:"t_ns"`
	Pairs    int64         `json:"inconsistent_pairs"`
	Distinct int           `json:"distinct_states"`
	Up       int           `json:"honest_up"`
}

func newMetrics(s *Sim) *metrics {
	return &metrics{s: s, changes: make(map[crdt.ID]*changeInfo), convergedAt: -1}
}

// reserve makes room for n deliveries (the workload's changes times the
// nodes: ten million at 100,000 nodes, where growing the list by doubling
// copied it several times and left up to half unused), at most
// maxReserveDeliveries.
func (m *metrics) reserve(n int) {
	n = min(max(n, 0), maxReserveDeliveries)
	m.lat = slices.Grow(m.lat, n)
}

const maxReserveDeliveries = 1 << 25

func (m *metrics) change(id crdt.ID) *changeInfo {
	ci := m.changes[id]
	if ci == nil {
		ci = &changeInfo{idx: int32(len(m.changes)), origin: -1, at: m.s.now}
		m.changes[id] = ci
	}
	return ci
}

// onApplied records a change applied at node p.
func (s *Sim) onApplied(p *peer, a Applied) {
	m := s.met
	s.inv.onApplied(p, a)
	ci := m.change(a.ID)
	for len(m.applied) <= p.i {
		m.applied = append(m.applied, nil)
	}
	bs := m.applied[p.i]
	w := int(ci.idx >> 6)
	for len(bs) <= w {
		bs = append(bs, 0)
	}
	m.applied[p.i] = bs
	bit := uint64(1) << (uint(ci.idx) & 63)
	if bs[w]&bit != 0 {
		return // re-applied after a restart
	}
	bs[w] |= bit
	if a.Local {
		ci.origin = int32(p.i)
		ci.at = s.now
		ci.honest = p.byz == nil
		return
	}
	if a.Author == p.author {
		return // its own change, restored from the log
	}
	ci.delivered++
	if p.byz != nil {
		return
	}
	if ci.honest {
		p.delivered++ // deliveries of honest writes, for Report.Delivery
	}
	m.lat = append(m.lat, time.Duration(s.now-ci.at))
	if s.curHop < 0 {
		m.viaSync++
	} else if s.curHop > m.lastHop {
		m.lastHop = s.curHop
	}
}

// stateOf returns the cached change-set key of an up node: a digest of its
// heads and its number of changes. Two nodes with the same key hold the
// same changes (a hash DAG is closed under parents), and so — the
// same-set-same-state invariant, checked separately — the same state; the
// key is much cheaper than hashing the materialised state.
func (s *Sim) stateOf(p *peer) ([32]byte, int) {
	if p.dirty {
		h := s.hasher()
		s.headsBuf = p.node.AppendHeads(s.headsBuf[:0])
		for i := range s.headsBuf {
			h.Write(s.headsBuf[i][:]) // not a copy: the copy would escape, an allocation per ID
		}
		h.Sum(p.headsKey[:0])
		p.dirty = false
		p.hashDirty = true
	}
	return p.headsKey, p.node.Len()
}

// fullState returns the node's materialised state hash and change count.
func (s *Sim) fullState(p *peer) stateKey {
	s.stateOf(p)
	if p.hashDirty {
		p.stateHash = p.node.StateHash()
		p.hashDirty = false
	}
	return stateKey{p.stateHash, p.node.Len()}
}

type stateKey struct {
	h [32]byte
	n int
}

// inconsistency counts pairs of honest up nodes whose states differ.
func (s *Sim) inconsistency() (pairs int64, distinct, up int) {
	counts := make(map[stateKey]int64)
	for _, p := range s.peers {
		if !p.up || p.byz != nil {
			continue
		}
		h, n := s.stateOf(p)
		counts[stateKey{h, n}]++
		up++
	}
	total := int64(up) * int64(up-1) / 2
	for _, c := range counts {
		total -= c * (c - 1) / 2
	}
	return total, len(counts), up
}

// sample records the inconsistency metric and reschedules itself.
func (s *Sim) sample() {
	pairs, distinct, up := s.inconsistency()
	m := s.met
	if len(m.samples) == 0 || pairs != int64(m.lastPair) || distinct != m.lastDistinct || s.now-int64(m.samples[len(m.samples)-1].T) >= int64(time.Second) {
		m.samples = append(m.samples, Sample{T: time.Duration(s.now), Pairs: pairs, Distinct: distinct, Up: up})
	}
	m.lastPair, m.lastDistinct = int(pairs), distinct
	if s.cfg.CheckEvery {
		s.inv.checkStates()
		s.inv.checkMemory()
	}
	if s.cfg.Progress != nil {
		s.cfg.Progress(time.Duration(s.now), 0)
	}
	if !s.stopped {
		s.after(s.cfg.SampleEvery, s.sample)
	}
}

// percentile returns the p-th percentile (0..100) of sorted xs.
func percentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	k := int(float64(len(xs)-1) * p / 100)
	return xs[k]
}
