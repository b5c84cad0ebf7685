package sim

import (
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	"github.com/convergenode/convergenode/crdt"
)

// The invariants checked during and after every run.
const (
	InvValidOnly   = "valid-only"          // only valid changes are applied by honest nodes
	InvSameState   = "same-set-same-state" // same change set -> same state hash
	InvConvergence = "convergence"         // converge within the bound after the last fault
	InvNoLoss      = "no-lost-write"       // no write persisted by an honest author is lost
	InvEvidence    = "evidence"            // equivocation proofs reach every honest node
	InvMemory      = "memory"              // bounded memory under floods
	InvRestart     = "restart"             // a restarted replica equals a replay of its log
)

// Violation is one broken invariant.
type Violation struct {
	Invariant string        `json:"invariant"`
	T         time.Duration `json:"t_ns"`
	Detail    string        `json:"detail"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s at %v: %s", v.Invariant, v.T, v.Detail)
}

type invariants struct {
	s          *Sim
	violations []Violation
	seen       map[string]bool
	// invalid holds IDs no honest node may ever apply (Byzantine changes
	// that are invalid: forged, tampered, bad lamport, ...).
	invalid map[crdt.ID]string
	// equivocators are the authors that made conflicting changes, with
	// the honest nodes that raised a proof against them.
	equivocators map[crdt.Author]bool
	proofs       map[crdt.Author]map[int]bool
	penalties    int
	crashState   map[int]stateKey
	// FootprintLimit bounds a node's Footprint under floods.
	footprintLimit int
}

func newInvariants(s *Sim) *invariants {
	return &invariants{
		s:              s,
		seen:           make(map[string]bool),
		invalid:        make(map[crdt.ID]string),
		equivocators:   make(map[crdt.Author]bool),
		proofs:         make(map[crdt.Author]map[int]bool),
		crashState:     make(map[int]stateKey),
		footprintLimit: 1 << 16,
	}
}

// violate records a violation, once per (invariant, detail).
func (inv *invariants) violate(name, detail string) {
	k := name + "\x00" + detail
	if inv.seen[k] {
		return
	}
	inv.seen[k] = true
	if len(inv.violations) < 100 {
		inv.violations = append(inv.violations, Violation{Invariant: name, T: time.Duration(inv.s.now), Detail: detail})
	}
}

func (inv *invariants) onApplied(p *peer, a Applied) {
	if p.byz != nil {
		return
	}
	if why, bad := inv.invalid[a.ID]; bad {
		inv.violate(InvValidOnly, fmt.Sprintf("node %d applied invalid change %s (%s)", p.i, a.ID.Short(), why))
	}
}

func (inv *invariants) onAlert(p *peer, a Alert) {
	switch a.Kind {
	case AlertEquivocation:
		if p.byz != nil {
			return
		}
		m := inv.proofs[a.Author]
		if m == nil {
			m = make(map[int]bool)
			inv.proofs[a.Author] = m
		}
		m[p.i] = true
		if _, ok := inv.s.author[a.Author]; ok && !inv.equivocators[a.Author] {
			// A proof against an author that never equivocated would be
			// a forged or wrong proof.
			inv.violate(InvEvidence, fmt.Sprintf("node %d raised a proof against %s, who did not equivocate", p.i, a.Author.Short()))
		}
	case AlertPenalty:
		inv.penalties++
		if j, ok := inv.s.index[a.Peer]; ok && inv.s.peers[j].byz == nil && p.byz == nil {
			inv.s.met.honestPenalties++
		}
	}
}

// checkStates: honest up nodes with the same change set (heads) have the
// same state hash.
func (inv *invariants) checkStates() {
	s := inv.s
	byHeads := make(map[string][32]byte)
	owner := make(map[string]int)
	for _, p := range s.peers {
		if !p.up || p.byz != nil {
			continue
		}
		hk := headsKey(p.node.AppendHeads(nil))
		h := s.fullState(p).h
		if prev, ok := byHeads[hk]; ok {
			if prev != h {
				inv.violate(InvSameState, fmt.Sprintf("nodes %d and %d have the same heads but different states", owner[hk], p.i))
			}
			continue
		}
		byHeads[hk] = h
		owner[hk] = p.i
	}
}

func headsKey(hs []crdt.ID) string {
	b := make([]byte, 0, 32*len(hs))
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return string(b)
}

// checkMemory: under floods, no node holds more than the limit of
// buffered items, and no honest DAG holds more changes than exist.
func (inv *invariants) checkMemory() {
	s := inv.s
	total := len(s.met.changes)
	for _, p := range s.peers {
		if !p.up || p.byz != nil {
			continue
		}
		if f := p.node.Footprint(); f > inv.footprintLimit {
			inv.violate(InvMemory, fmt.Sprintf("node %d holds %d buffered items (limit %d)", p.i, f, inv.footprintLimit))
		}
		if n := p.node.Len(); n > total {
			inv.violate(InvMemory, fmt.Sprintf("node %d holds %d changes, only %d were made", p.i, n, total))
		}
	}
}

// noteCrash remembers a node's state when it crashes.
func (inv *invariants) noteCrash(p *peer) {
	inv.crashState[p.i] = inv.s.fullState(p)
}

// checkRestart: a restarted node has exactly the state it had when it
// crashed (everything it applied had been persisted first).
func (inv *invariants) checkRestart(p *peer) {
	want, ok := inv.crashState[p.i]
	if !ok {
		return
	}
	delete(inv.crashState, p.i)
	p.dirty = true
	got := inv.s.fullState(p)
	h, n := got.h, got.n
	if want.h != h || want.n != n {
		inv.violate(InvRestart, fmt.Sprintf("node %d restarted with %d changes (state %x), had %d (state %x)", p.i, n, h[:4], want.n, want.h[:4]))
	}
}

// checkReplay rebuilds honest up nodes from their durable logs alone and
// compares them with the live nodes: every node that restarted, and the
// first three others (a replay re-verifies every signature, so checking
// every node would dominate large runs).
func (inv *invariants) checkReplay() {
	s := inv.s
	others := 0
	for _, p := range s.peers {
		if !p.up || p.byz != nil {
			continue
		}
		if p.restart == 0 {
			if others >= 3 {
				continue
			}
			others++
		}
		n, err := s.cfg.Factory(NodeConfig{Index: p.i, Peer: p.id, Doc: s.cfg.Doc, Key: p.key, Rand: newRand(s.cfg.Seed, uint64(p.i), 0xfeed), Log: s.logOf(p), Now: s.nodeNow(p), SigCache: s.sigCache, EnvCache: s.envCache, Namespaces: s.scen.Follows(p.i)})
		if err != nil {
			inv.violate(InvRestart, fmt.Sprintf("node %d: replay of its log failed: %v", p.i, err))
			continue
		}
		st := s.fullState(p)
		if n.Len() != st.n || n.StateHash() != st.h {
			inv.violate(InvRestart, fmt.Sprintf("node %d: replay of its log has %d changes, live node %d", p.i, n.Len(), st.n))
		}
	}
}

// checkFinal runs the end-of-run invariants. converged says whether the
// network converged within the bound.
func (inv *invariants) checkFinal(converged bool, replay bool) {
	s := inv.s
	inv.checkStates()
	inv.checkMemory()
	if !converged {
		pairs, distinct, up := s.inconsistency()
		inv.violate(InvConvergence, fmt.Sprintf("%d inconsistent pairs (%d states, %d honest up nodes) %v after the last fault", pairs, distinct, up, s.cfg.Settle))
	}
	// No honest write lost: a change an honest author applied is at every
	// honest up node of every honest component that holds it anywhere
	// (a component cut off by Byzantine nodes may never see it).
	comp := s.honestComponents()
	ids := make([]crdt.ID, 0, len(s.met.changes))
	for id, ci := range s.met.changes {
		if ci.honest {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Compare(ids[j]) < 0 })
	// Nodes with the same heads hold the same changes (a DAG holds the
	// causal past of its heads and nothing else), so one node of each
	// (component, heads) group answers for all of it: a converged run
	// asks one node per component, not every node, about every change.
	type group struct {
		rep     Node
		comp    int32
		members []int // node numbers, in s.peers order
		has     bool  // whether rep holds the change being checked
	}
	var groups []*group
	byKey := make(map[string]*group)
	for _, p := range s.peers {
		c := comp[p.i]
		if c < 0 {
			continue
		}
		k := string(binary.LittleEndian.AppendUint32(nil, uint32(c))) + headsKey(p.node.AppendHeads(nil))
		g := byKey[k]
		if g == nil {
			g = &group{rep: p.node, comp: c}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.members = append(g.members, p.i)
	}
	missing := make(map[int]int)
	firstMissing := make(map[int]crdt.ID)
	for _, id := range ids {
		holds := make(map[int32]bool)
		for _, g := range groups {
			g.has = g.rep.Has(id)
			if g.has {
				holds[g.comp] = true
			}
		}
		for _, g := range groups {
			if g.has || !holds[g.comp] {
				continue
			}
			for _, i := range g.members {
				if missing[i] == 0 {
					firstMissing[i] = id
				}
				missing[i]++
			}
		}
	}
	for _, p := range s.peers {
		if n := missing[p.i]; n > 0 {
			first := firstMissing[p.i]
			inv.violate(InvNoLoss, fmt.Sprintf("node %d lacks %d honest changes (first %s)", p.i, n, first.Short()))
		}
	}
	// Evidence: an equivocation known to one honest node is known to all
	// honest nodes of its component.
	authors := make([]crdt.Author, 0, len(inv.proofs))
	for a := range inv.proofs {
		authors = append(authors, a)
	}
	sort.Slice(authors, func(i, j int) bool { return authors[i].Compare(authors[j]) < 0 })
	for _, a := range authors {
		// Per honest component, as for lost writes: a component cut off by
		// Byzantine nodes may never see both forks.
		holds := make(map[int32]bool)
		for _, p := range s.peers {
			if comp[p.i] >= 0 && inv.proofs[a][p.i] {
				holds[comp[p.i]] = true
			}
		}
		for _, p := range s.peers {
			if c := comp[p.i]; c >= 0 && holds[c] && !inv.proofs[a][p.i] {
				inv.violate(InvEvidence, fmt.Sprintf("node %d has no proof against equivocator %s", p.i, a.Short()))
			}
		}
	}
	if replay {
		inv.checkReplay()
	}
}
