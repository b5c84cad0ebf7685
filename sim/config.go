package sim

import (
	"fmt"
	"time"

	"github.com/convergenode/convergenode/replica"
	"github.com/convergenode/convergenode/topology"
)

// Config describes one simulation run. Zero fields take the defaults given
// in their comments (see Config.validate).
type Config struct {
	Seed     uint64 // RNG seed; the same seed gives the same trace
	Nodes    int    // number of nodes; default 16
	Doc      string // document ID; default "sim"
	Topology string // a topology.New scenario name; default "gossip"
	Params   topology.Params

	Link    Link     // default link model for every directed pair; default DefaultLink()
	Regions *Regions // optional region latency matrix

	// TickEvery is the period of every node's Tick; default 50ms.
	TickEvery time.Duration
	// SampleEvery is the period of the inconsistency metric; default 100ms.
	// Sampling hashes every node's state, so large runs raise it.
	SampleEvery time.Duration
	// Settle bounds how long Run waits for convergence after the workload
	// and the last fault; default 60s of virtual time.
	Settle time.Duration

	Workload  Workload
	Faults    []Fault
	Byzantine []Byzantine

	// VerifyCost is the modelled CPU time of one signature check, charged
	// to the checking node's virtual clock; default 50µs. CachedCost is the
	// cost of a cache hit (a duplicate); default 1µs.
	VerifyCost, CachedCost time.Duration

	// Factory builds nodes; default NewReplicaNode (tuned by Replica).
	Factory Factory
	// Replica, if set, adjusts every replica's configuration when the
	// default factory builds it (e.g. SyncInterval).
	Replica func(*replica.Config)
	// Validator is the stateless gossip validator; default the replica's
	// (replica.ValidateGossipCached with the simulation's SigCache).
	Validator Validator
	// SigCacheSize bounds the signature cache shared by every replica and
	// the validator of one simulation (bft.SigCache: a successful check of
	// a (key, ID, signature) triple is done once per simulation, whatever
	// the number of nodes; the virtual clock is still charged VerifyCost
	// per node). Default 65536 entries; negative disables the cache.
	SigCacheSize int
	// EnvCacheSize bounds the envelope cache shared by every replica of
	// one simulation (bft.EnvCache: a change's bytes are decoded once per
	// simulation and every replica keeps the same copy of its bytes and
	// decoded form, so memory grows with nodes × changes only by the
	// per-replica indexes). It never changes a result. Default 65536
	// envelopes; negative disables the cache.
	EnvCacheSize int
	// Namespace extracts the namespace of an ephemeral gossip message, for
	// filtered topologies; default the replica adapter's.
	Namespace func(data []byte) string

	// CheckEvery runs the state invariants at every sample (slower).
	CheckEvery bool
	// Cancelled, if set, is polled between steps of Run; when it returns
	// true the run stops early (the report says it did not converge).
	Cancelled func() bool
	// Progress, if set, is called now and then with the virtual time and
	// the time the writes and faults end (after which the run only waits
	// for convergence). end is 0 when unknown. It must not block.
	Progress func(now, quiet time.Duration)
}

// Options is another name for Config.
type Options = Config

// Workload is the write load.
type Workload struct {
	// Rate is durable writes per writer per second of virtual time.
	Rate float64
	// Changes, if set, is the total number of writes, spread evenly over
	// the writers and over Duration (Rate is then ignored).
	Changes int
	// Writers is how many nodes write (the first honest ones); 0 = all.
	Writers int
	// Duration is how long writes go on; default 2s.
	Duration time.Duration
	// Ephemeral is the fraction of writes that are presence updates
	// instead of durable changes, in [0,1].
	Ephemeral float64
	// Rows is the number of distinct rows written; default 64.
	Rows int
	// Namespaces are the presence namespaces; default the topology's or {"cursor"}.
	Namespaces []string
}

func (c *Config) validate() error {
	if c.Nodes <= 0 {
		c.Nodes = 16
	}
	if c.Doc == "" {
		c.Doc = "sim"
	}
	if c.Topology == "" {
		c.Topology = "gossip"
	}
	if c.Link == (Link{}) {
		c.Link = DefaultLink()
	}
	if c.TickEvery <= 0 {
		c.TickEvery = 50 * time.Millisecond
	}
	if c.SampleEvery <= 0 {
		c.SampleEvery = 100 * time.Millisecond
	}
	if c.Settle <= 0 {
		c.Settle = 60 * time.Second
	}
	if c.VerifyCost <= 0 {
		c.VerifyCost = 50 * time.Microsecond
	}
	if c.CachedCost <= 0 {
		c.CachedCost = time.Microsecond
	}
	if c.Workload.Duration <= 0 {
		c.Workload.Duration = 2 * time.Second
	}
	if c.Workload.Rows <= 0 {
		c.Workload.Rows = 64
	}
	if c.Workload.Ephemeral < 0 || c.Workload.Ephemeral > 1 {
		return fmt.Errorf("sim: ephemeral fraction %v not in [0,1]", c.Workload.Ephemeral)
	}
	for _, b := range c.Byzantine {
		if b.Node < 0 || b.Node >= c.Nodes {
			return fmt.Errorf("sim: byzantine node %d out of range", b.Node)
		}
	}
	if c.Factory == nil {
		c.Factory = ReplicaFactory(c.Replica)
	}
	if c.SigCacheSize == 0 {
		c.SigCacheSize = 1 << 16
	}
	if c.EnvCacheSize == 0 {
		c.EnvCacheSize = 1 << 16
	}
	if c.Namespace == nil {
		c.Namespace = defaultNamespace
	}
	return nil
}
