package chaos

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/node"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// byzCluster starts honest nodes and one attacker in mode, fully wired,
// and waits until every honest node sees the attacker on the document's
// topic.
func byzCluster(t *testing.T, seed uint64, honest int, mode Mode, extraDocs ...string) (*Cluster, *Attacker) {
	t.Helper()
	c := NewCluster(ClusterConfig{Seed: seed, ExtraDocs: extraDocs})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if _, err := c.AddNodes(ctx, honest); err != nil {
		t.Fatal(err)
	}
	atks, err := c.AddAttackers(ctx, 1, mode)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WireFull(); err != nil {
		t.Fatal(err)
	}
	waitTopicPeer(t, c, atks[0].ID())
	return c, atks[0]
}

// waitTopicPeer waits until every running honest node lists p as a peer
// of the cluster's document.
func waitTopicPeer(t *testing.T, c *Cluster, p peer.ID) {
	t.Helper()
	waitUntil(t, 10*time.Second, "honest nodes to see the attacker on the topic", func() bool {
		for _, m := range c.Running() {
			found := false
			for _, pi := range m.Node().Peers() {
				if pi.ID == p.String() && len(pi.Docs) > 0 {
					found = true
				}
			}
			if !found {
				return false
			}
		}
		return true
	})
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitGraylisted waits until every running honest node (or only those
// listed) scores p below the gossipsub graylist threshold, and returns
// the scores.
func waitGraylisted(t *testing.T, c *Cluster, p peer.ID, only ...int) map[int]float64 {
	t.Helper()
	var sc map[int]float64
	waitUntil(t, 15*time.Second, "the attacker's score to fall below the graylist threshold", func() bool {
		sc = c.Scores(p)
		for i, s := range sc {
			if len(only) > 0 && !slices.Contains(only, i) {
				continue
			}
			if s >= node.GraylistThreshold {
				return false
			}
		}
		return len(sc) > 0
	})
	return sc
}

// honestRound writes a few rows on every honest node and waits for
// convergence; it returns the ledger.
func honestRound(t *testing.T, c *Cluster, l *Ledger, tag string, perNode int) {
	t.Helper()
	for _, m := range c.Running() {
		writeRows(t, l, m, fmt.Sprintf("%s-%d", tag, m.Index), perNode)
	}
}

// checkAll runs the invariants on the running honest nodes after
// convergence.
func checkAll(t *testing.T, c *Cluster, l *Ledger, o Outcome) {
	t.Helper()
	mustConverge(t, c, 30*time.Second, l.Len())
	snaps, err := c.Snapshots()
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckValidOnly(snaps, o.Invalid); err != nil {
		t.Error(err)
	}
	if err := CheckSameState(snaps); err != nil {
		t.Error(err)
	}
	if err := c.CheckAcked(l); err != nil {
		t.Error(err)
	}
	if err := c.CheckProofs(o.Equivocators); err != nil {
		t.Error(err)
	}
}

func TestByzantineEquivocation(t *testing.T) {
	c, atk := byzCluster(t, 11, 4, ModeRelay)
	ctx := context.Background()
	l := NewLedger()
	honestRound(t, c, l, "h", 2)
	o, err := atk.Equivocate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	honestRound(t, c, l, "g", 2)
	checkAll(t, c, l, o)
	snaps, _ := c.Snapshots()
	for _, s := range snaps {
		for _, id := range o.Valid {
			if !s.IDs[id] {
				t.Errorf("node %d lacks fork %s: both forks must stay", s.Member, id.Short())
			}
		}
	}
	sc := waitGraylisted(t, c, atk.ID())
	t.Logf("equivocator scores: %v", sc)
}

func TestByzantineForgeAndTamper(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(*Attacker, context.Context) (Outcome, error)
	}{
		{"forge", (*Attacker).Forge},
		{"tamper", (*Attacker).Tamper},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, atk := byzCluster(t, 12, 4, ModeRelay)
			l := NewLedger()
			honestRound(t, c, l, "h", 2)
			var all Outcome
			for range 3 {
				o, err := tc.do(atk, context.Background())
				if err != nil {
					t.Fatal(err)
				}
				all.add(o)
			}
			honestRound(t, c, l, "g", 2)
			checkAll(t, c, l, all)
			sc := waitGraylisted(t, c, atk.ID())
			t.Logf("%s scores: %v", tc.name, sc)
		})
	}
}

// TestByzantineStateful covers the attacks only the stateful gate can
// refuse (inflated Lamport time, fake parents): never applied, no Reject
// (so no gossipsub graylisting), honest nodes converge.
func TestByzantineStateful(t *testing.T) {
	for _, tc := range []struct {
		name  string
		do    func(*Attacker, context.Context) (Outcome, error)
		alert string // the alert reason (or kind) an honest node must raise
	}{
		{"lamport", (*Attacker).InflateLamport, "bad-lamport"},
		{"fake-parents", (*Attacker).FakeParents, "non-service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, atk := byzCluster(t, 13, 4, ModeRelay)
			l := NewLedger()
			honestRound(t, c, l, "h", 2)
			var all Outcome
			for range 3 {
				o, err := tc.do(atk, context.Background())
				if err != nil {
					t.Fatal(err)
				}
				all.add(o)
			}
			honestRound(t, c, l, "g", 2)
			checkAll(t, c, l, all)
			waitUntil(t, 20*time.Second, "a "+tc.alert+" alert on an honest node", func() bool {
				for _, m := range c.Running() {
					if hasAlert(m, "", tc.alert) {
						return true
					}
				}
				return false
			})
			for _, m := range c.Running() {
				for _, h := range c.Honest() {
					if s, _ := m.Node().Score(h.ID); s < 0 {
						t.Errorf("node %d scores honest node %d at %v: the attack turned honest nodes on each other", m.Index, h.Index, s)
					}
				}
			}
			t.Logf("%s scores (stateful: no graylist required): %v", tc.name, c.Scores(atk.ID()))
		})
	}
}

func TestByzantineReplayFromAnotherDocument(t *testing.T) {
	c, atk := byzCluster(t, 14, 4, ModeRelay, "other")
	ctx := context.Background()
	if err := atk.Watch("other"); err != nil {
		t.Fatal(err)
	}
	hs := c.Honest()
	// Two honest nodes write to another document; the attacker captures
	// their signed changes from that document's gossip.
	var others []*node.Doc
	for _, m := range hs[:2] {
		d, err := m.Node().Doc(ctx, "other")
		if err != nil {
			t.Fatal(err)
		}
		others = append(others, d)
	}
	waitTopicPeerDoc(t, hs[:2], atk.ID(), "other")
	for k := range 3 {
		if err := others[0].Insert(ctx, WriteTable, fmt.Sprintf("o-%d", k), map[string]any{"v": k}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 10*time.Second, "the attacker to capture the other document's changes", func() bool {
		return len(atk.Captured("other")) >= 3
	})
	l := NewLedger()
	honestRound(t, c, l, "h", 2)
	o, err := atk.Replay(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	// Every node joined "other" and saw the originals: gossipsub's seen
	// cache (message ID = change ID) drops the gossiped replays
	// unvalidated. On the sync stream they reach the gate: wrong
	// document, a penalty.
	for _, m := range c.Running() {
		p, err := atk.ReplaySync(ctx, "other", m.ID)
		if err != nil {
			t.Fatal(err)
		}
		o.add(p)
	}
	checkAll(t, c, l, o)
	sc := waitGraylisted(t, c, atk.ID())
	t.Logf("replayer scores: %v", sc)
}

func waitTopicPeerDoc(t *testing.T, ms []*Member, p peer.ID, doc string) {
	t.Helper()
	waitUntil(t, 10*time.Second, "nodes to see the attacker on "+doc, func() bool {
		for _, m := range ms {
			ok := false
			for _, pi := range m.Node().Peers() {
				for _, d := range pi.Docs {
					if pi.ID == p.String() && d == doc {
						ok = true
					}
				}
			}
			if !ok {
				return false
			}
		}
		return true
	})
}

func TestByzantineOversized(t *testing.T) {
	c, atk := byzCluster(t, 15, 4, ModeRelay)
	ctx := context.Background()
	l := NewLedger()
	honestRound(t, c, l, "h", 2)
	victim := c.Honest()[0]
	before := HeapInUse()
	o, err := atk.Oversized(ctx, victim.ID)
	if err != nil {
		t.Fatal(err)
	}
	honestRound(t, c, l, "g", 2)
	checkAll(t, c, l, o)
	sc := waitGraylisted(t, c, atk.ID())
	after := HeapInUse()
	t.Logf("oversized: scores %v, heap %d -> %d MiB", sc, before>>20, after>>20)
	if after > before+64<<20 {
		t.Errorf("heap grew by %d MiB after oversized messages", (after-before)>>20)
	}
}

func TestByzantinePresenceSpoof(t *testing.T) {
	c, atk := byzCluster(t, 16, 4, ModeRelay)
	ctx := context.Background()
	hs := c.Honest()
	victim := hs[1]
	p, err := victim.Node().Presence(c.Doc())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Set(ctx, "cursor", "pos", "honest"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the honest cursor everywhere", func() bool {
		for _, m := range c.Running() {
			if presenceOf(t, m, victim.Author) != `"honest"` {
				return false
			}
		}
		return true
	})
	for range 3 {
		if _, err := atk.SpoofPresence(ctx, victim, "spoofed"); err != nil {
			t.Fatal(err)
		}
	}
	sc := waitGraylisted(t, c, atk.ID())
	for _, m := range c.Running() {
		if got := presenceOf(t, m, victim.Author); got != `"honest"` {
			t.Errorf("node %d shows the victim's cursor as %s", m.Index, got)
		}
	}
	t.Logf("presence spoofer scores: %v", sc)
}

func presenceOf(t *testing.T, m *Member, a crdt.Author) string {
	p, err := m.Node().Presence(m.Node().DocIDs()[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p.List() {
		if e.Author == a.String() && e.Namespace == "cursor" && e.Key == "pos" {
			return e.Value.String()
		}
	}
	return ""
}

// TestByzantineLyingReconciliation has a liar answer every session the
// honest nodes open with it (fake heads, forged changes) and open its own
// with lies.
func TestByzantineLyingReconciliation(t *testing.T) {
	c, atk := byzCluster(t, 17, 4, ModeLiar)
	ctx := context.Background()
	l := NewLedger()
	honestRound(t, c, l, "h", 2)
	var all Outcome
	for _, m := range c.Running() {
		o, err := atk.StartLies(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		all.add(o)
	}
	honestRound(t, c, l, "g", 2)
	checkAll(t, c, l, all)
	sc := waitGraylisted(t, c, atk.ID())
	if atk.SyncIn.Load() == 0 {
		t.Error("no honest node opened a session with the liar")
	}
	t.Logf("liar scores: %v (sync messages received %d)", sc, atk.SyncIn.Load())
}

// TestByzantineCensors puts three censors into the honest meshes: each
// honest node is linked to every censor and to only two honest nodes (a
// ring). Writes still reach every honest node through the ring and
// reconciliation.
func TestByzantineCensors(t *testing.T) {
	c := NewCluster(ClusterConfig{Seed: 18})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	const H, C = 6, 3
	if _, err := c.AddNodes(ctx, H); err != nil {
		t.Fatal(err)
	}
	atks, err := c.AddAttackers(ctx, C, ModeCensor)
	if err != nil {
		t.Fatal(err)
	}
	var pairs [][2]int
	for i := range H {
		pairs = append(pairs, [2]int{i, (i + 1) % H})
		for j := range C {
			pairs = append(pairs, [2]int{i, H + j})
		}
	}
	if err := c.Wire(pairs...); err != nil {
		t.Fatal(err)
	}
	for _, a := range atks {
		waitTopicPeer(t, c, a.ID())
	}
	l := NewLedger()
	honestRound(t, c, l, "h", 3)
	took := mustConverge(t, c, 30*time.Second, l.Len())
	checkAll(t, c, l, Outcome{})
	var recv int64
	for _, a := range atks {
		recv += a.Received.Load()
	}
	if recv == 0 {
		t.Error("the censors received nothing: they were not in the meshes")
	}
	t.Logf("converged in %v past %d censors that received %d messages and forwarded none", took, C, recv)
}

func TestByzantineFloodValid(t *testing.T) {
	c, atk := byzCluster(t, 19, 4, ModeRelay)
	ctx := context.Background()
	l := NewLedger()
	done := make(chan Outcome)
	go func() {
		var all Outcome
		for range 10 {
			o, err := atk.FloodValid(ctx, 20)
			if err != nil {
				t.Error(err)
			}
			all.add(o)
			time.Sleep(50 * time.Millisecond)
		}
		done <- all
	}()
	honestRound(t, c, l, "h", 10)
	o := <-done
	mustConverge(t, c, 30*time.Second, l.Len()+len(o.Valid))
	checkAll(t, c, l, o)
	t.Logf("valid flood: %d useless changes accepted everywhere next to %d honest ones (a writer set is the remedy); scores %v",
		len(o.Valid), l.Len(), c.Scores(atk.ID()))
}

// hasAlert reports whether m raised an alert with reason (or of that
// kind) about p (any
// peer if p is "": a change relayed by an honest peer is blamed on it,
// without penalty).
func hasAlert(m *Member, p peer.ID, reason string) bool {
	for _, a := range m.Node().Alerts() {
		if (p == "" || a.Peer == p.String()) && (a.Reason == reason || a.Kind == reason) {
			return true
		}
	}
	return false
}

// TestByzantineIDPoisoning has an attacker with fast links race every
// honest change with a tampered copy under the same change ID, while the
// honest links are slow. The gossipsub message ID covers the whole
// envelope, so the copy gets its own ID: peers Reject it and still take
// the genuine change when it arrives by gossip, and the attacker is
// graylisted by its first copy.
func TestByzantineIDPoisoning(t *testing.T) {
	c, atk := byzCluster(t, 20, 4, ModePoison)
	hs := c.Honest()
	for i := range hs {
		for j := i + 1; j < len(hs); j++ {
			c.SetLink(i, j, mocknet.LinkOptions{Latency: 300 * time.Millisecond})
		}
	}
	l := NewLedger()
	t0 := time.Now()
	writeRows(t, l, hs[0], "p", 1)
	time.Sleep(time.Second) // three times the honest latency
	lacking := 0
	for _, m := range hs[1:] {
		if _, ok := m.Doc().Get(WriteTable, "p-0"); !ok {
			lacking++
		}
	}
	if lacking != 0 {
		// The message ID binds the change ID to the whole envelope
		// (replica.GossipID), so a tampered copy cannot shadow the
		// genuine change in gossipsub's seen cache.
		t.Errorf("%d of 3 nodes lacked the change 1 s after the write: the tampered copies shadowed it", lacking)
	}
	mustConverge(t, c, 30*time.Second, 1)
	checkAll(t, c, l, Outcome{})
	sc := waitGraylisted(t, c, atk.ID(), 1, 2, 3)
	t.Logf("poisoned copies %d; %d of 3 nodes lacked the change 1 s after the write (honest latency 300 ms); all had it after %v; scores %v",
		atk.Poisoned.Load(), lacking, time.Since(t0).Round(time.Millisecond), sc)
}

// TestProofsSurviveRestart restarts an honest node on its store after an
// equivocation: replaying its log must raise the proof again.
func TestProofsSurviveRestart(t *testing.T) {
	c, atk := byzCluster(t, 22, 3, ModeRelay)
	ctx := context.Background()
	l := NewLedger()
	o, err := atk.Equivocate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	honestRound(t, c, l, "h", 1)
	checkAll(t, c, l, o)
	if err := c.Stop(1); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(ctx, 1); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the restarted node to raise the proof from its log", func() bool {
		return c.CheckProofs(o.Equivocators) == nil
	})
}

// TestHostileRealNode runs a real node (honest core: it writes valid
// changes, gossips and reconciles) whose libp2p host also opens extra sync
// streams to lie and to send forged changes. Honest nodes refuse the
// forgeries, graylist it, and still receive its valid writes (by
// reconciliation once gossip drops it).
func TestHostileRealNode(t *testing.T) {
	c := NewCluster(ClusterConfig{Seed: 23})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if _, err := c.AddNodes(ctx, 4); err != nil {
		t.Fatal(err)
	}
	hn, err := c.AddHostileNodes(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WireFull(); err != nil {
		t.Fatal(err)
	}
	atk := hn[0]
	waitTopicPeer(t, c, atk.ID())
	l := NewLedger()
	writeRows(t, l, atk.Member(), "hostile-before", 3) // valid writes by the hostile node
	honestRound(t, c, l, "h", 2)
	var all Outcome
	for _, m := range c.Running() {
		o, err := atk.StartLies(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		all.add(o)
		o, err = atk.FloodInvalidSync(ctx, m.ID, 5)
		if err != nil {
			t.Fatal(err)
		}
		all.add(o)
	}
	if err := atk.Publish(ctx, TopicChanges, []byte{1}); err == nil {
		t.Error("a hostile node's attacker published on the node's gossip")
	}
	sc := waitGraylisted(t, c, atk.ID())
	writeRows(t, l, atk.Member(), "hostile-after", 3) // valid, from a graylisted peer
	checkAll(t, c, l, all)
	t.Logf("hostile node graylisted (%v); its valid writes before and after reached every honest node", sc)
}
