package sim

import (
	"strconv"
	"testing"
	"time"

	"github.com/convergenode/convergenode/replica"
)

// TestNoHonestPenalties: honest nodes never penalise each other, over
// lossy, bursty, reordering links with crashes and a partition, on sparse
// and dense topologies, and in the chaos seeds that used to make them
// (a relay asked for the parents of a change it forwarded before holding
// them was penalised with needs-unserved).
func TestNoHonestPenalties(t *testing.T) {
	ms := time.Millisecond
	link := Link{
		Latency: Latency{Kind: DistUniform, Base: 5 * ms, Max: 60 * ms}, Jitter: 5 * ms,
		Loss: 0.2, Burst: &Burst{PBad: 0.05, PGood: 0.3, LossBad: 0.7}, Dup: 0.03, Reorder: 0.05,
	}
	for _, topo := range []string{"ring", "tree", "star", "gossip", "gossipsub"} {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(topo+"/"+strconv.FormatUint(seed, 10), func(t *testing.T) {
				cfg := Config{
					Seed: seed, Nodes: 30, Topology: topo, Link: link,
					Workload: Workload{Rate: 1, Duration: 2 * time.Second},
					Faults: []Fault{
						{Kind: FaultCrash, At: 600 * ms, For: 700 * ms, Nodes: []int{3, 17}},
						{Kind: FaultPartition, At: 900 * ms, For: time.Second, Nodes: []int{0, 1, 2, 4, 5, 6, 7, 8}},
					},
					Replica: func(rc *replica.Config) { rc.SyncInterval = time.Second },
					Settle:  3 * time.Minute,
				}
				r := mustRun(t, cfg)
				if !r.Converged {
					t.Fatalf("did not converge")
				}
				if r.HonestPenalties != 0 {
					t.Fatalf("%d penalty alerts between honest nodes", r.HonestPenalties)
				}
			})
		}
	}
	// Chaos seeds (Byzantine nodes included) whose honest nodes penalised
	// each other before the owed rule.
	for _, seed := range []uint64{1, 5, 20, 23, 30, 33, 40} {
		cfg := ChaosConfig(seed)
		r := mustRun(t, cfg)
		if r.HonestPenalties != 0 {
			t.Errorf("chaos seed %d (%s): %d penalty alerts between honest nodes", seed, cfg.Describe(), r.HonestPenalties)
		}
	}
}

// alertTap wraps a replica node to see the penalty alerts it raises.
type alertTap struct {
	*ReplicaNode
	on func(Alert)
}

func (n alertTap) Ready() Ready {
	rd := n.ReplicaNode.Ready()
	for _, a := range rd.Alerts {
		n.on(a)
	}
	return rd
}

// TestLiarPenalised: a node that lies in reconciliation (fake heads,
// garbage batches) is still penalised by the honest nodes, who never
// penalise each other, nor the relays of another Byzantine node's changes
// with fake parents.
func TestLiarPenalised(t *testing.T) {
	const liar, faker = 4, 9
	penalties := map[string]int{}
	cfg := Config{
		Seed: 3, Nodes: 20, Topology: "gossip",
		Link:     Link{Latency: Latency{Base: 20 * time.Millisecond}, Jitter: 5 * time.Millisecond, Loss: 0.1},
		Workload: Workload{Rate: 1},
		Byzantine: []Byzantine{
			{Node: liar, Behaviours: BehaviourLie},
			{Node: faker, Behaviours: BehaviourFakeParents | BehaviourWithhold},
		},
		Replica: func(rc *replica.Config) { rc.SyncInterval = time.Second },
	}
	tune := cfg.Replica
	cfg.Factory = func(nc NodeConfig) (Node, error) {
		n, err := newReplicaNode(nc, tune)
		if err != nil || nc.Index == liar || nc.Index == faker {
			return n, err
		}
		return alertTap{n, func(a Alert) {
			if a.Kind == AlertPenalty {
				penalties[a.Peer]++
			}
		}}, nil
	}
	r := mustRun(t, cfg)
	if !r.Converged || r.HonestPenalties != 0 {
		t.Fatalf("converged %v, honest penalties %d", r.Converged, r.HonestPenalties)
	}
	if penalties["n"+strconv.Itoa(liar)] == 0 {
		t.Fatalf("the liar was never penalised: %v", penalties)
	}
	t.Logf("penalty alerts by peer: %v", penalties)
}
