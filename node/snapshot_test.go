package node

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/replica"
)

// syncBuf is a goroutine-safe log sink.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeMixed makes n changes of random inserts, updates and deletes.
func writeMixed(t *testing.T, d *Doc, rng *rand.Rand, n int) {
	t.Helper()
	for range n {
		err := d.Change(context.Background(), func(tx *Tx) error {
			for range 1 + rng.IntN(20) {
				row := fmt.Sprint("r", rng.IntN(50))
				switch rng.IntN(5) {
				case 0:
					tx.Delete("t", row)
				case 1:
					tx.Update("t", row, "v", rng.IntN(1000))
				default:
					tx.Insert("t", row, Cols{"v": rng.IntN(1000), "s": "text"})
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// fullReplay restores doc from the whole log of a Pebble store in dir, as
// a node without a snapshot would, and returns its state hash and heads.
func fullReplay(t *testing.T, c Config, doc string) ([32]byte, crdt.Version) {
	t.Helper()
	st, err := OpenPebble(c.DataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var envs [][]byte
	if err := st.Load(doc, func(env []byte) error { envs = append(envs, slices.Clone(env)); return nil }); err != nil {
		t.Fatal(err)
	}
	rc := replica.DefaultConfig()
	rc.Doc, rc.Key = doc, c.Key
	r, err := replica.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Restore(envs); err != nil {
		t.Fatal(err)
	}
	return r.Doc().StateHash(), r.Doc().Heads()
}

// TestSnapshotRestartPebble: a node writes a snapshot on Close; after more
// writes (with snapshots off, so the log has a tail the snapshot does not
// cover), a restart loads the snapshot plus the tail and holds exactly the
// state of a full replay. A corrupt snapshot is reported and the node
// falls back to the full replay. The periodic snapshot fires by op count.
func TestSnapshotRestartPebble(t *testing.T) {
	dir := t.TempDir()
	key, _ := GenerateKey()
	logs := &syncBuf{}
	c := DefaultTestConfig()
	c.Key, c.Docs, c.DataDir = key, []string{"d"}, filepath.Join(dir, "data")
	c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rng := rand.New(rand.NewPCG(1, 2))
	start := func(every int) (*Node, *Doc) {
		t.Helper()
		c.SnapshotEvery = every
		n, err := New(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		return n, mustDoc(t, n, "d")
	}
	stored := func() []byte {
		t.Helper()
		st, err := OpenPebble(c.DataDir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		b, err := st.LoadSnapshot("d")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// 1. Writes, then a clean Close writes a snapshot covering them.
	n, d := start(1 << 30)
	writeMixed(t, d, rng, 40)
	heads1 := d.Heads()
	n.Close()
	snap1 := stored()
	if h, _, err := crdt.SnapshotHeads(snap1); err != nil || !h.Equal(heads1) {
		t.Fatalf("snapshot on close: heads %v (%v), want %v", h, err, heads1)
	}

	// 2. Snapshots off: the restart loads it, more writes go to the log only.
	n, d = start(-1)
	if !strings.Contains(logs.String(), "document snapshot loaded") {
		t.Fatal("the snapshot was not used")
	}
	writeMixed(t, d, rng, 30)
	n.Close()
	if !bytes.Equal(stored(), snap1) {
		t.Fatal("a snapshot was written with snapshots off")
	}

	// 3. Snapshot + tail gives the full replay's state.
	wantHash, wantHeads := fullReplay(t, c, "d")
	n, d = start(-1)
	if d.StateHash() != wantHash || !d.Heads().Equal(wantHeads) || d.Len() != 70 {
		t.Fatalf("snapshot + tail differs from full replay (%d changes)", d.Len())
	}
	writeMixed(t, d, rng, 2) // and it keeps writing on its chain
	n.Close()

	// 4. A corrupt snapshot: reported, full replay, nothing lost.
	bad := slices.Clone(snap1)
	bad[len(bad)/2] ^= 0x10
	st, err := OpenPebble(c.DataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SaveSnapshot("d", bad); err != nil {
		t.Fatal(err)
	}
	st.Close()
	wantHash, wantHeads = fullReplay(t, c, "d")
	n, d = start(-1)
	if d.StateHash() != wantHash || !d.Heads().Equal(wantHeads) {
		t.Fatal("fallback after a corrupt snapshot differs from full replay")
	}
	var saw bool
	for _, a := range n.Alerts() {
		saw = saw || (a.Kind == "storage" && a.Reason == "snapshot-unusable")
	}
	if !saw {
		t.Fatalf("no snapshot alert: %+v", n.Alerts())
	}
	n.Close()

	// 5. Periodic snapshots: every 100 ops.
	// The start replays the whole log (the snapshot is bad), so a new
	// snapshot follows at once; then one per 100 ops written.
	n, d = start(100)
	changed := func(before []byte) func() bool {
		return func() bool {
			s, _ := n.store.(SnapshotStorage).LoadSnapshot("d")
			return s != nil && !bytes.Equal(s, before)
		}
	}
	waitFor(t, 10*time.Second, "a snapshot after a full replay", changed(bad))
	before := stored2(t, n)
	writeMixed(t, d, rng, 60) // about 600 ops
	waitFor(t, 10*time.Second, "a periodic snapshot", changed(before))
	n.Close()
	wantHash, _ = fullReplay(t, c, "d")
	n, d = start(-1)
	defer n.Close()
	if d.StateHash() != wantHash {
		t.Fatal("restart after periodic snapshots differs from full replay")
	}
}

func stored2(t *testing.T, n *Node) []byte {
	t.Helper()
	s, err := n.store.(SnapshotStorage).LoadSnapshot("d")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storeTestConfig is a test node's configuration with a fresh key and
// document "d", for tests that restart a node on the same store.
func storeTestConfig() Config {
	key, _ := GenerateKey()
	c := DefaultTestConfig()
	c.Key, c.Docs = key, []string{"d"}
	return c
}

// startOn starts a node with c on store.
func startOn(t *testing.T, c Config, store Storage) *Node {
	t.Helper()
	c.Storage = store
	n, err := New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSnapshotMemStorage: the in-memory store keeps snapshots across
// Reopen, and a node restarted on it loads the snapshot.
func TestSnapshotMemStorage(t *testing.T) {
	store := NewMemStorage()
	c := storeTestConfig()
	n := startOn(t, c, store)
	writeMixed(t, mustDoc(t, n, "d"), rand.New(rand.NewPCG(5, 5)), 20)
	want := mustDoc(t, n, "d").StateHash()
	n.Close()
	re := store.Reopen()
	if s, _ := re.LoadSnapshot("d"); s == nil {
		t.Fatal("no snapshot after Close")
	}
	n = startOn(t, c, re)
	defer n.Close()
	if mustDoc(t, n, "d").StateHash() != want {
		t.Fatal("restart from the snapshot differs")
	}
}

// TestSnapshotStorage: both stores save and load snapshots; Pebble splits
// large ones into chunks, and a smaller snapshot replaces every old chunk.
func TestSnapshotStorage(t *testing.T) {
	pb, err := OpenPebble(filepath.Join(t.TempDir(), "p"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	big := make([]byte, 2*snapChunk+12345)
	for i := range big {
		big[i] = byte(rng.IntN(256))
	}
	for name, st := range map[string]SnapshotStorage{"mem": NewMemStorage(), "pebble": pb} {
		if b, err := st.LoadSnapshot("d"); err != nil || b != nil {
			t.Fatalf("%s: empty store: %v %v", name, b, err)
		}
		for _, snap := range [][]byte{big, []byte("small"), big[:snapChunk]} {
			if err := st.SaveSnapshot("d", snap); err != nil {
				t.Fatal(err)
			}
			if err := st.SaveSnapshot("d2", []byte("other")); err != nil {
				t.Fatal(err)
			}
			if b, err := st.LoadSnapshot("d"); err != nil || !bytes.Equal(b, snap) {
				t.Fatalf("%s: loaded %d bytes (%v), saved %d", name, len(b), err, len(snap))
			}
		}
		if b, _ := st.LoadSnapshot("d2"); string(b) != "other" {
			t.Fatalf("%s: another document's snapshot changed", name)
		}
	}
}
