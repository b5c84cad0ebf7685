package replica_test

import (
	"testing"
	"time"

	"github.com/convergenode/convergenode/replica"
	"github.com/convergenode/convergenode/replica/replicatest"
)

// TestFootprintSeesCausalBuffer: a change whose parent has not arrived
// waits in the gate's causal buffer, and Footprint counts it until the
// parent comes.
func TestFootprintSeesCausalBuffer(t *testing.T) {
	a, b := newTestReplica(t, 0, nil), newTestReplica(t, 1, nil)
	var msgs [][]byte
	for i := range 2 {
		if err := a.Propose(ins("r", int64(i))); err != nil {
			t.Fatal(err)
		}
		a.Tick(replicatest.Epoch.Add(time.Duration(i+1) * time.Second))
		for _, o := range a.Ready().Broadcast {
			if o.Topic == replica.TopicChanges {
				msgs = append(msgs, o.Data)
			}
		}
		a.Advance()
	}
	if len(msgs) != 2 {
		t.Fatalf("%d change messages, want 2", len(msgs))
	}
	b.Tick(replicatest.Epoch.Add(3 * time.Second))
	if err := b.Step("a", msgs[1]); err != nil {
		t.Fatal(err)
	}
	if f := b.Footprint(); f.Buffered != 1 || f.BufferedBytes <= 0 {
		t.Fatalf("child without its parent: footprint %+v, want 1 buffered", f)
	}
	if err := b.Step("a", msgs[0]); err != nil {
		t.Fatal(err)
	}
	if f := b.Footprint(); f.Buffered != 0 || f.BufferedBytes != 0 {
		t.Fatalf("after the parent: footprint %+v, want nothing buffered", f)
	}
	if b.Doc().Graph().Len() != 2 {
		t.Fatalf("b holds %d changes, want 2", b.Doc().Graph().Len())
	}
}
