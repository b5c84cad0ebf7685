package replica_test

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/replica"
	"github.com/convergenode/convergenode/replica/replicatest"
)

// Example drives two replicas by hand with the Ready/Advance loop: a local
// write, its broadcast, and a reconciliation over a sync stream.
func Example() {
	now := replicatest.Epoch
	mk := func(i int) *replica.Replica {
		cfg := replica.DefaultConfig()
		cfg.Doc = "notes"
		cfg.Key = replicatest.KeyFor(i)                // an ed25519.PrivateKey
		cfg.Rand = rand.New(rand.NewPCG(1, uint64(i))) // the only randomness
		r, err := replica.New(cfg)
		if err != nil {
			panic(err)
		}
		r.Tick(now)
		return r
	}
	alice, bob := mk(0), mk(1)
	var disk [][]byte // alice's durable log

	// inbox holds messages in flight: (to, from, data).
	type msg struct {
		to   *replica.Replica
		from replica.PeerID
		data []byte
	}
	var inbox []msg
	drive := func(r *replica.Replica, self replica.PeerID, other *replica.Replica) {
		for r.HasReady() {
			rd := r.Ready()
			if r == alice {
				disk = append(disk, rd.Persist...) // 1. durable first
			}
			for _, o := range rd.Broadcast { // 2. then the network
				inbox = append(inbox, msg{other, self, o.Data})
			}
			for _, d := range rd.Send {
				inbox = append(inbox, msg{other, self, d.Data})
			}
			for _, ev := range rd.Applied { // 3. the application
				fmt.Printf("%s applied a change with %d ops\n", self, len(ev.Change.Ops))
			}
			r.Advance() // 4. done
		}
	}

	// Alice writes two rows; one Tick makes them one signed change.
	_ = alice.Propose(crdt.Insert("todo", "1", map[string]crdt.Value{"title": crdt.String("buy milk")}))
	_ = alice.Propose(crdt.Insert("todo", "2", map[string]crdt.Value{"title": crdt.String("call bob")}))
	now = now.Add(100 * time.Millisecond)
	alice.Tick(now)
	drive(alice, "alice", bob)
	inbox = nil // the broadcast is lost

	// The peers connect: reconciliation repairs the loss.
	alice.PeerUp("bob")
	bob.PeerUp("alice")
	drive(alice, "alice", bob)
	drive(bob, "bob", alice)
	for len(inbox) > 0 {
		m := inbox[0]
		inbox = inbox[1:]
		_ = m.to.Step(m.from, m.data)
		if m.to == alice {
			drive(alice, "alice", bob)
		} else {
			drive(bob, "bob", alice)
		}
	}
	row, _ := bob.Doc().Get("todo", "2")
	title, _ := row.Col("title")
	fmt.Println("bob sees:", title)
	fmt.Println("same state:", alice.Doc().StateHash() == bob.Doc().StateHash(), "durable entries:", len(disk))
	// Output:
	// alice applied a change with 2 ops
	// bob applied a change with 2 ops
	// bob sees: "call bob"
	// same state: true durable entries: 1
}
