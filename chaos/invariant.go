package chaos

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/libp2p/go-libp2p/core/peer"
)

// WriteTable is the table the honest workload writes to.
const WriteTable = "w"

// Snapshot is one honest node's document as its public API shows it.
type Snapshot struct {
	Member int
	Heads  crdt.Version
	Hash   [32]byte // state hash at Heads
	IDs    map[crdt.ID]bool
}

// Snapshot reads member m's document at one version: heads, the state
// hash at those heads, and every change ID in their past (through
// node.Doc.At, so the three agree).
func (c *Cluster) Snapshot(m *Member) (Snapshot, error) {
	d := m.Doc()
	if d == nil {
		return Snapshot{}, fmt.Errorf("chaos: member %d is not running", m.Index)
	}
	heads := d.Heads()
	at, err := d.At(heads)
	if err != nil {
		return Snapshot{}, fmt.Errorf("chaos: member %d: %w", m.Index, err)
	}
	s := Snapshot{Member: m.Index, Heads: heads, Hash: at.StateHash(), IDs: map[crdt.ID]bool{}}
	for _, id := range at.Graph().Topo() {
		s.IDs[id] = true
	}
	return s, nil
}

// Snapshots reads every running honest node.
func (c *Cluster) Snapshots() ([]Snapshot, error) {
	var out []Snapshot
	for _, m := range c.Running() {
		s, err := c.Snapshot(m)
		if err != nil {
			continue // stopped meanwhile
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New("chaos: no running honest node")
	}
	return out, nil
}

// CheckValidOnly fails if any honest node holds one of the invalid changes.
func CheckValidOnly(snaps []Snapshot, invalid []crdt.ID) error {
	var errs []error
	for _, s := range snaps {
		for _, id := range invalid {
			if s.IDs[id] {
				errs = append(errs, fmt.Errorf("valid-only: node %d applied invalid change %s", s.Member, id.Short()))
			}
		}
	}
	return errors.Join(errs...)
}

// CheckSameState fails if two honest nodes at the same version (set of
// changes) have different states.
func CheckSameState(snaps []Snapshot) error {
	byVersion := map[string][32]byte{}
	var errs []error
	for _, s := range snaps {
		k := fmt.Sprint(s.Heads)
		if h, ok := byVersion[k]; ok && h != s.Hash {
			errs = append(errs, fmt.Errorf("same set, same state: node %d differs at version %s", s.Member, k))
		}
		byVersion[k] = s.Hash
	}
	return errors.Join(errs...)
}

// Converged reports whether every snapshot has the same heads and state.
func Converged(snaps []Snapshot) bool {
	for _, s := range snaps[1:] {
		if s.Hash != snaps[0].Hash || !slices.Equal(s.Heads, snaps[0].Heads) {
			return false
		}
	}
	return true
}

// WaitConverged polls the running honest nodes until they hold the same
// heads and state (and, when want > 0, at least want changes) or timeout
// passes. It returns how long it took.
func (c *Cluster) WaitConverged(ctx context.Context, timeout time.Duration, want int) (time.Duration, error) {
	t0 := time.Now()
	deadline := t0.Add(timeout)
	for {
		snaps, err := c.Snapshots()
		if err == nil && Converged(snaps) && len(snaps[0].IDs) >= want {
			return time.Since(t0), nil
		}
		if time.Now().After(deadline) {
			return time.Since(t0), fmt.Errorf("chaos: not converged after %v: %s", timeout, summary(snaps))
		}
		select {
		case <-ctx.Done():
			return time.Since(t0), ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func summary(snaps []Snapshot) string {
	s := ""
	for _, sn := range snaps {
		s += fmt.Sprintf("[node %d: %d changes, %d heads] ", sn.Member, len(sn.IDs), len(sn.Heads))
	}
	return s
}

// Ledger records the honest writes the nodes acknowledged (Insert returned
// nil: the change is durable on its author) and when each node saw them.
type Ledger struct {
	mu    sync.Mutex
	acked map[string]time.Time         // row -> ack time
	seen  map[int]map[string]time.Time // member -> row -> first applied
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{acked: map[string]time.Time{}, seen: map[int]map[string]time.Time{}}
}

// Watch records when member m's running node applies each WriteTable row
// (for Delivery). Call it again after a restart.
func (l *Ledger) Watch(m *Member) (cancel func()) {
	d := m.Doc()
	if d == nil {
		return func() {}
	}
	l.mu.Lock()
	if l.seen[m.Index] == nil {
		l.seen[m.Index] = map[string]time.Time{}
	}
	l.mu.Unlock()
	return d.Subscribe(func(ev crdt.ChangeEvent) {
		now := time.Now()
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, r := range ev.Rows {
			if r.Table == WriteTable {
				if _, ok := l.seen[m.Index][r.Key]; !ok {
					l.seen[m.Index][r.Key] = now
				}
			}
		}
	})
}

// Delivery returns the share of (acknowledged write, watched node) pairs
// where the node applied the write within window of its acknowledgement,
// and the 50th and 99th percentile delivery latencies. A node's own
// writes count too (they apply before the acknowledgement).
func (l *Ledger) Delivery(window time.Duration) (share float64, p50, p99 time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var lats []time.Duration
	total, ok := 0, 0
	for row, at := range l.acked {
		for _, seen := range l.seen {
			total++
			t, found := seen[row]
			if !found {
				continue
			}
			lat := max(t.Sub(at), 0)
			if lat <= window {
				ok++
			}
			lats = append(lats, lat)
		}
	}
	if total == 0 {
		return 1, 0, 0
	}
	slices.Sort(lats)
	pct := func(q float64) time.Duration {
		if len(lats) == 0 {
			return 0
		}
		return lats[min(len(lats)-1, int(q*float64(len(lats))))]
	}
	return float64(ok) / float64(total), pct(0.50), pct(0.99)
}

// Write inserts row into WriteTable on m and records it once acknowledged.
func (l *Ledger) Write(ctx context.Context, m *Member, row string) error {
	d := m.Doc()
	if d == nil {
		return fmt.Errorf("chaos: member %d is not running", m.Index)
	}
	if err := d.Insert(ctx, WriteTable, row, map[string]any{"by": m.Index}); err != nil {
		return err
	}
	l.mu.Lock()
	l.acked[row] = time.Now()
	l.mu.Unlock()
	return nil
}

// Rows returns the acknowledged rows, sorted.
func (l *Ledger) Rows() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.acked))
	for r := range l.acked {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// Len returns the number of acknowledged writes.
func (l *Ledger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// CheckAcked fails if a running honest node lacks an acknowledged write.
func (c *Cluster) CheckAcked(l *Ledger) error {
	rows := l.Rows()
	var errs []error
	for _, m := range c.Running() {
		d := m.Doc()
		if d == nil {
			continue
		}
		lost := 0
		for _, r := range rows {
			if _, ok := d.Get(WriteTable, r); !ok {
				lost++
			}
		}
		if lost > 0 {
			errs = append(errs, fmt.Errorf("no lost writes: node %d lacks %d of %d acknowledged writes", m.Index, lost, len(rows)))
		}
	}
	return errors.Join(errs...)
}

// CheckProofs fails if a running honest node holds no equivocation proof
// against one of the equivocators, or holds a proof that does not verify.
// It reads the proofs through the node's public API (node.Doc.Proofs),
// which keeps them all, and checks each one as an outsider would.
func (c *Cluster) CheckProofs(equivocators []crdt.Author) error {
	var errs []error
	for _, m := range c.Running() {
		d := m.Doc()
		if d == nil {
			continue
		}
		seen := map[string]bool{}
		for _, p := range d.Proofs() {
			raw, err := base64.StdEncoding.DecodeString(p.Proof)
			if err == nil {
				var pr *bft.EquivocationProof
				if pr, err = bft.DecodeProof(raw); err == nil {
					if err = pr.Verify(); err == nil && pr.Author().String() != p.Author {
						err = fmt.Errorf("proof is against %s, listed as %s", pr.Author().Short(), p.Author)
					}
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("proofs everywhere: node %d holds a bad proof: %w", m.Index, err))
				continue
			}
			seen[p.Author] = true
		}
		for _, e := range equivocators {
			if !seen[e.String()] {
				errs = append(errs, fmt.Errorf("proofs everywhere: node %d has no proof against %s", m.Index, e.Short()))
			}
		}
	}
	return errors.Join(errs...)
}

// Scores returns, for each running honest node linked to p (gossipsub
// scores only its direct peers), its last gossipsub score of p
// (node.Node.Score: refreshed every second by pubsub's inspector).
func (c *Cluster) Scores(p peer.ID) map[int]float64 {
	out := map[int]float64{}
	for _, m := range c.Running() {
		if len(c.mn.LinksBetweenPeers(m.ID, p)) == 0 {
			continue
		}
		if n := m.Node(); n != nil {
			out[m.Index], _ = n.Score(p)
		}
	}
	return out
}

// HeapInUse returns the process's heap in use, in bytes, after a GC: an
// upper bound of any one node's memory, since every node of the cluster
// lives in this process.
func HeapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
