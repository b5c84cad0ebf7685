package replica_test

import (
	"testing"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/replica/replicatest"
)

func TestTwoReplicasConverge(t *testing.T) {
	n, err := replicatest.New(replicatest.Options{Seed: 1, Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := n.Write(0, crdt.Update("t", "r", "a", crdt.Int(int64(i)))); err != nil {
			t.Fatal(err)
		}
		if err := n.Write(1, crdt.Update("t", "r", "b", crdt.Int(int64(i)))); err != nil {
			t.Fatal(err)
		}
		n.RunFor(100 * time.Millisecond)
	}
	d, ok := n.RunUntilConverged(5 * time.Second)
	if !ok {
		t.Fatalf("not converged after %v", d)
	}
	t.Logf("converged in %v, stats %+v", d, n.Stats)
	for _, nd := range n.Nodes {
		t.Logf("%s: %+v alerts=%v", nd.ID, nd.R.Stats(), nd.Alerts)
	}
}
