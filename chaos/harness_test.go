package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func newCluster(t *testing.T, cfg ClusterConfig, honest int) *Cluster {
	t.Helper()
	c := NewCluster(cfg)
	t.Cleanup(func() { c.Close() })
	if _, err := c.AddNodes(context.Background(), honest); err != nil {
		t.Fatal(err)
	}
	if err := c.WireFull(); err != nil {
		t.Fatal(err)
	}
	return c
}

func writeRows(t *testing.T, l *Ledger, m *Member, prefix string, n int) {
	t.Helper()
	for k := range n {
		if err := l.Write(context.Background(), m, fmt.Sprintf("%s-%d", prefix, k)); err != nil {
			t.Fatal(err)
		}
	}
}

func mustConverge(t *testing.T, c *Cluster, timeout time.Duration, want int) time.Duration {
	t.Helper()
	took, err := c.WaitConverged(context.Background(), timeout, want)
	if err != nil {
		t.Fatal(err)
	}
	return took
}

// TestHarnessPartitionRestart runs real nodes on the mocknet through a
// partition, a heal and a stop/restart on the store.
func TestHarnessPartitionRestart(t *testing.T) {
	c := newCluster(t, ClusterConfig{Seed: 1}, 4)
	hs := c.Honest()
	l := NewLedger()
	writeRows(t, l, hs[0], "pre", 3)
	mustConverge(t, c, 20*time.Second, 3)

	if err := c.Partition([]int{0, 1}, []int{2, 3}); err != nil {
		t.Fatal(err)
	}
	writeRows(t, l, hs[0], "a", 5)
	writeRows(t, l, hs[3], "b", 5)
	time.Sleep(500 * time.Millisecond)
	snaps, err := c.Snapshots()
	if err != nil {
		t.Fatal(err)
	}
	if Converged(snaps) {
		t.Fatal("converged across a partition: " + summary(snaps))
	}
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	took := mustConverge(t, c, 30*time.Second, 13)
	t.Logf("healed in %v", took)

	if err := c.Stop(2); err != nil {
		t.Fatal(err)
	}
	writeRows(t, l, hs[1], "c", 5)
	if err := c.Restart(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	mustConverge(t, c, 30*time.Second, 18)
	if err := c.CheckAcked(l); err != nil {
		t.Fatal(err)
	}
	snaps, _ = c.Snapshots()
	if err := CheckSameState(snaps); err != nil {
		t.Fatal(err)
	}
}
