package sim_test

import (
	"fmt"

	"github.com/convergenode/convergenode/sim"
)

// Run a small gossip network with one equivocating node and a partition
// that heals, then look at the report.
func ExampleRun() {
	rep, err := sim.Run(sim.Config{
		Seed:      7,
		Nodes:     20,
		Topology:  "gossip",
		Workload:  sim.Workload{Changes: 30},
		Byzantine: []sim.Byzantine{{Node: 3, Behaviours: sim.BehaviourEquivocate}},
		Faults:    []sim.Fault{{Kind: sim.FaultPartition, At: 500e6, For: 1e9, Nodes: []int{0, 1, 2, 4, 5}}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("converged:", rep.Converged)
	fmt.Printf("delivery: %.0f%%\n", 100*rep.Delivery)
	fmt.Println("violations:", len(rep.Violations))
	// Output:
	// converged: true
	// delivery: 100%
	// violations: 0
}
