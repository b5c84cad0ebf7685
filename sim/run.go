package sim

import (
	"math/rand/v2"
	"slices"
	"time"
)

func newRand(seed, a, b uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed^a*0x9e3779b97f4a7c15, b))
}

// Report is the outcome of one run.
type Report struct {
	Seed      uint64 `json:"seed"`
	Topology  string `json:"topology"`
	Graph     string `json:"graph"`
	Strategy  string `json:"strategy"`
	Nodes     int    `json:"nodes"`
	Byzantine int    `json:"byzantine"`
	TraceHash string `json:"trace_hash"`
	Events    uint64 `json:"events"`

	SimTime time.Duration `json:"sim_time_ns"`
	// Converged is true when every honest up node had the same state
	// within Settle of the last write and fault.
	Converged bool `json:"converged"`
	// ConvergenceTime is from the last write or fault to convergence.
	ConvergenceTime time.Duration `json:"convergence_ns"`

	Writes          int     `json:"writes"`
	EphemeralWrites int     `json:"ephemeral_writes"`
	Changes         int     `json:"changes"`
	HonestChanges   int     `json:"honest_changes"`
	Delivery        float64 `json:"delivery"` // fraction of (honest change, honest node) pairs delivered

	LatencyP50 time.Duration `json:"latency_p50_ns"`
	LatencyP90 time.Duration `json:"latency_p90_ns"`
	LatencyP99 time.Duration `json:"latency_p99_ns"`
	LatencyMax time.Duration `json:"latency_max_ns"`

	Messages        int64   `json:"messages"`
	Bytes           int64   `json:"bytes"`
	MessagesPerNode float64 `json:"messages_per_node"`
	BytesPerNode    float64 `json:"bytes_per_node"`
	DupsPerDelivery float64 `json:"dups_per_delivery"`
	LastHop         int     `json:"last_delivery_hop"`
	ViaSync         int64   `json:"deliveries_via_reconciliation"`

	Lost          int64 `json:"lost"`          // gossip messages lost on links
	Dropped       int64 `json:"dropped"`       // messages cut by partitions, down links or down nodes
	Rejected      int64 `json:"rejected"`      // gossip messages the validator rejected
	Ignored       int64 `json:"ignored"`       // gossip messages the validator ignored
	Retransmits   int64 `json:"retransmits"`   // stream retransmissions
	Verifications int64 `json:"verifications"` // validator runs (once per distinct message)
	Crashes       int64 `json:"crashes"`
	Restarts      int64 `json:"restarts"`
	// HonestPenalties counts penalty alerts an honest node raised against
	// another honest node (ideally 0).
	HonestPenalties int64       `json:"honest_penalties"`
	Inconsistency   []Sample    `json:"inconsistency"`
	Violations      []Violation `json:"violations"`

	// Latencies are the sorted delivery latencies (not in JSON).
	Latencies []time.Duration `json:"-"`
}

// OK reports whether no invariant was violated.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// Run builds a simulation from cfg, runs the workload and the fault
// schedule, waits for convergence (at most cfg.Settle after the last write
// and fault), checks every invariant and reports.
func Run(cfg Config) (Report, error) {
	s, err := New(cfg)
	if err != nil {
		return Report{}, err
	}
	s.RunToConvergence()
	return s.Finish(true), nil
}

// quietFrom is when the run's writes and faults are over.
func (s *Sim) quietFrom() int64 {
	q := int64(s.cfg.Workload.Duration)
	if s.lastFault > q {
		q = s.lastFault
	}
	return q
}

// RunToConvergence runs until the workload and faults are over and every
// honest up node has the same state, or Settle has passed since then. It
// reports whether the network converged.
func (s *Sim) RunToConvergence() bool {
	end := s.quietFrom() + int64(s.cfg.Settle)
	check := int64(s.cfg.TickEvery)
	if check < int64(10*time.Millisecond) {
		check = int64(10 * time.Millisecond)
	}
	for {
		next := s.now + check
		s.RunUntil(time.Duration(next))
		if s.cfg.Progress != nil {
			s.cfg.Progress(time.Duration(s.now), time.Duration(s.quietFrom()))
		}
		if s.now >= s.quietFrom() {
			if s.converged() {
				s.met.convergedAt = s.now
				return true
			}
		}
		if s.now >= end || (s.cfg.Cancelled != nil && s.cfg.Cancelled()) {
			return false
		}
		end = s.quietFrom() + int64(s.cfg.Settle)
	}
}

// converged reports whether, within every component of honest up nodes
// (connected through honest nodes only: a Byzantine node may cut the
// graph), all nodes have the same state.
func (s *Sim) converged() bool {
	// Cheap first: every honest up node must hold as many changes.
	n := -1
	for _, p := range s.peers {
		if !p.up || p.byz != nil {
			continue
		}
		if l := p.node.Len(); n < 0 {
			n = l
		} else if l != n && len(s.oneway) == 0 && s.groups == nil && !s.anyByzantine() {
			return false
		}
	}
	comp := s.honestComponents()
	first := make(map[int32]stateKey)
	for _, p := range s.peers {
		c := comp[p.i]
		if c < 0 {
			continue
		}
		h, n := s.stateOf(p)
		k := stateKey{h, n}
		if f, ok := first[c]; !ok {
			first[c] = k
		} else if f != k {
			return false
		}
	}
	return true
}

// honestComponents labels each honest up node with its connected component
// in the graph restricted to honest up nodes and unblocked links; other
// nodes get -1.
func (s *Sim) honestComponents() []int32 {
	comp := make([]int32, len(s.peers))
	for i, p := range s.peers {
		comp[i] = -1
		if p.up && p.byz == nil {
			comp[i] = -2
		}
	}
	g := s.conns
	var next int32
	queue := []int{}
	for i := range s.peers {
		if comp[i] != -2 {
			continue
		}
		comp[i] = next
		queue = append(queue[:0], i)
		for len(queue) > 0 {
			u := queue[0]
			queue = queue[1:]
			for k, d := 0, g.Degree(u); k < d; k++ {
				v := g.Neighbor(u, k)
				if comp[v] == -2 && !s.blocked(u, v) && !s.blocked(v, u) {
					comp[v] = next
					queue = append(queue, v)
				}
			}
		}
		next++
	}
	return comp
}

// Finish checks the final invariants and builds the report. replay also
// rebuilds every honest node from its log (the restart invariant).
func (s *Sim) Finish(replay bool) Report {
	s.stopped = true
	m := s.met
	converged := m.convergedAt >= 0 || s.converged()
	if m.convergedAt < 0 && converged {
		m.convergedAt = s.now
	}
	s.inv.checkFinal(converged, replay)
	// Close the inconsistency series at the end of the run.
	if pairs, distinct, up := s.inconsistency(); len(m.samples) == 0 || m.samples[len(m.samples)-1].T != time.Duration(s.now) {
		m.samples = append(m.samples, Sample{T: time.Duration(s.now), Pairs: pairs, Distinct: distinct, Up: up})
	}
	r := Report{
		Seed:      s.cfg.Seed,
		Topology:  s.cfg.Topology,
		Graph:     s.scen.Graph.Name,
		Strategy:  s.scen.Strategy.Name(),
		Nodes:     len(s.peers),
		Byzantine: len(s.cfg.Byzantine),
		Events:    s.events,
		SimTime:   time.Duration(s.now),
		Converged: converged,

		Writes:          m.writes,
		EphemeralWrites: m.ephemeralWrites,
		Changes:         len(m.changes),
		Messages:        m.msgs,
		Bytes:           m.bytes,
		LastHop:         int(m.lastHop),
		ViaSync:         m.viaSync,
		Lost:            m.lost,
		Dropped:         m.dropped,
		Rejected:        m.rejected,
		Ignored:         m.ignored,
		Retransmits:     m.retransmits,
		Verifications:   m.verifications,
		Crashes:         m.crashes,
		Restarts:        m.restarts,
		HonestPenalties: m.honestPenalties,
		Inconsistency:   m.samples,
		Violations:      s.inv.violations,
	}
	if converged {
		if c := m.convergedAt - s.quietFrom(); c > 0 {
			r.ConvergenceTime = time.Duration(c)
		}
	}
	honestNodes := 0
	for _, p := range s.peers {
		if p.byz == nil {
			honestNodes++
		}
	}
	var want, got int64
	for _, ci := range m.changes {
		if ci.honest {
			r.HonestChanges++
			want += int64(honestNodes - 1)
		}
	}
	for _, p := range s.peers {
		if p.byz == nil {
			got += p.delivered
		}
	}
	if want > 0 {
		r.Delivery = float64(got) / float64(want)
		if r.Delivery > 1 {
			r.Delivery = 1
		}
	} else {
		r.Delivery = 1
	}
	if len(s.peers) > 0 {
		r.MessagesPerNode = float64(m.msgs) / float64(len(s.peers))
		r.BytesPerNode = float64(m.bytes) / float64(len(s.peers))
	}
	if len(m.lat) > 0 {
		r.DupsPerDelivery = float64(m.dups) / float64(len(m.lat))
		// Sorted in place and shared with the report, not copied: ten
		// million latencies at 100,000 nodes, at the run's peak of
		// memory. Clipped, so that a delivery after Finish appends to a
		// new array and the report's stays as it is.
		slices.Sort(m.lat)
		m.lat = slices.Clip(m.lat)
		lat := m.lat
		r.LatencyP50 = percentile(lat, 50)
		r.LatencyP90 = percentile(lat, 90)
		r.LatencyP99 = percentile(lat, 99)
		r.LatencyMax = lat[len(lat)-1]
		r.Latencies = lat
	}
	// Fold the final states into the trace so a diverging end state shows.
	for _, p := range s.peers {
		if p.up {
			st := s.fullState(p)
			h, n := st.h, st.n
			s.mix(uint64(n))
			for k := 0; k < 32; k += 8 {
				s.mix(uint64(h[k]) | uint64(h[k+1])<<8 | uint64(h[k+2])<<16 | uint64(h[k+3])<<24 | uint64(h[k+4])<<32 | uint64(h[k+5])<<40 | uint64(h[k+6])<<48 | uint64(h[k+7])<<56)
			}
		}
	}
	r.TraceHash = s.TraceHash()
	return r
}

// anyByzantine reports whether any node is Byzantine (then honest
// components may legitimately differ).
func (s *Sim) anyByzantine() bool {
	for _, p := range s.peers {
		if p.byz != nil {
			return true
		}
	}
	return false
}
