package replica_test

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/replica"
	"github.com/convergenode/convergenode/replica/replicatest"
)

// TestByzantineReconciliation: two lying peers (fake heads, garbage
// answers, silence, floods of hellos, needs for 4096 random IDs and
// undecodable bytes) among honest replicas that write over a lossy
// network. The honest replicas converge, name the liars in penalty and
// non-service alerts, never blame each other, and their per-peer state
// stays within fixed bounds the whole time.
func TestByzantineReconciliation(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if n := propertyCases(); n != 30 { // -cases N or REPLICA_CASES=N
		seeds = seeds[:0]
		for i := range n {
			seeds = append(seeds, uint64(100+i))
		}
	}
	for _, seed := range seeds {
		t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) { runByzantine(t, seed) })
	}
}

func runByzantine(t *testing.T, seed uint64) {
	const honest = 5
	n, err := replicatest.New(replicatest.Options{
		Seed: seed, Nodes: honest, Loss: 0.3, Dup: 0.05,
		Config: func(_ int, c *replica.Config) {
			c.SyncInterval = time.Second
			c.SyncTimeout = 2 * time.Second
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	liars := []*replicatest.Liar{replicatest.NewLiar(seed, true), replicatest.NewLiar(seed+100, false)}
	for _, l := range liars {
		n.AddHandler(l)
	}
	var ms0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)

	// Per-peer state bounds: sessions at most 2 per peer, tracked IDs
	// within MaxOutstandingNeeds per peer and session, queues within the
	// document size.
	cfg := replica.DefaultConfig()
	peers := len(n.Nodes) - 1
	maxTracked := 3 * peers * cfg.MaxOutstandingNeeds
	check := func() {
		for _, nd := range n.Honest() {
			f := nd.R.Footprint()
			if f.Sessions > 2*peers || f.Tracked > maxTracked || f.QueuedIDs > 2*peers*nd.R.Doc().Graph().Len() {
				t.Fatalf("seed %d: %s footprint out of bounds: %+v", n.Opts.Seed, nd.ID, f)
			}
		}
	}
	for w := 0; w < 60; w++ {
		i := w % honest
		if err := n.Write(i, crdt.Insert("t", "r"+strconv.Itoa(w%17), map[string]crdt.Value{"v": crdt.Int(int64(w))})); err != nil {
			t.Fatal(err)
		}
		n.RunFor(200 * time.Millisecond)
		check()
	}
	n.SetLoss(0)
	n.SetDup(0)
	took, ok := n.RunUntilConverged(30 * time.Second)
	if !ok {
		t.Fatalf("seed %d: honest replicas did not converge in %v", seed, took)
	}
	check()

	var ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	if grow := int64(ms1.HeapAlloc) - int64(ms0.HeapAlloc); grow > 64<<20 {
		t.Fatalf("seed %d: heap grew by %d MiB", seed, grow>>20)
	}

	liarIDs := map[replica.PeerID]bool{n.Nodes[honest].ID: true, n.Nodes[honest+1].ID: true}
	blamed := map[replica.PeerID]int{}
	for _, nd := range n.Honest() {
		if got := nd.R.Doc().Graph().Len(); got != 60 {
			t.Fatalf("seed %d: %s has %d changes, want 60", seed, nd.ID, got)
		}
		for _, a := range nd.Alerts {
			if a.Kind != replica.AlertPenalty && a.Kind != replica.AlertNonService {
				continue
			}
			if !liarIDs[a.Peer] && a.Penalize {
				t.Fatalf("seed %d: %s penalised honest peer: %s", seed, nd.ID, a)
			}
			if liarIDs[a.Peer] {
				blamed[a.Peer]++
			}
		}
	}
	for id := range liarIDs {
		if blamed[id] == 0 {
			t.Fatalf("seed %d: liar %s never blamed", seed, id)
		}
	}
	t.Logf("seed %d: converged %v after the faults; liar messages %d+%d; alerts naming liars %v; footprint n1 %+v",
		seed, took, liars[0].Sent(), liars[1].Sent(), blamed, n.Nodes[0].R.Footprint())
}

// TestHistoryPullFlood: a peer that opens a session asking for the whole
// history again and again (empty heads, no filter) and acks everything at
// once gets it at ServeRate, not at line rate.
func TestHistoryPullFlood(t *testing.T) {
	const (
		rate  = 64 << 10
		burst = 256 << 10
		batch = 64 << 10
	)
	r := newTestReplica(t, 0, func(c *replica.Config) {
		c.ServeRate, c.ServeBurst, c.MaxBatchBytes = rate, burst, batch
	})
	now := replicatest.Epoch
	for i := range 2000 {
		_ = r.Propose(crdt.Insert("t", "r"+strconv.Itoa(i), map[string]crdt.Value{"v": crdt.Int(int64(i))}))
		now = now.Add(time.Millisecond)
		r.Tick(now)
	}
	r.Ready()
	history := 0
	for _, id := range r.Doc().Graph().Topo() {
		env, _ := r.Envelope(id)
		history += len(env)
	}
	r.PeerUp("p")
	r.Ready()
	start := now
	sent := 0
	for step := range 100 { // 5 s in 50 ms steps
		now = now.Add(50 * time.Millisecond)
		r.Tick(now)
		if step%5 == 0 {
			_ = r.Step("p", replica.MustEncode(&replica.Message{Type: replica.MsgHello, Session: uint64(step + 1)}))
		}
		for r.HasReady() {
			rd := r.Ready()
			var acks [][]byte
			for _, d := range rd.Send {
				sent += len(d.Data)
				if m, err := replica.DecodeMessage(d.Data); err == nil && m.Type == replica.MsgChanges && !m.Reply {
					acks = append(acks, replica.MustEncode(&replica.Message{Type: replica.MsgAck, Session: m.Session, Seq: m.Seq}))
				}
			}
			r.Advance()
			for _, a := range acks {
				_ = r.Step("p", a)
			}
		}
	}
	elapsed := now.Sub(start).Seconds()
	limit := burst + int(rate*elapsed) + 2*batch
	t.Logf("history %d bytes; sent %d bytes in %.1fs to a peer pulling it 20 times (limit %d)", history, sent, elapsed, limit)
	if sent > limit {
		t.Fatalf("sent %d bytes, budget allows %d", sent, limit)
	}
	if sent < rate*int(elapsed)/2 {
		t.Fatalf("sent only %d bytes: the budget should be used", sent)
	}
}
