package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func loadAll(t *testing.T, s Storage, doc string) []string {
	t.Helper()
	var out []string
	if err := s.Load(doc, func(e []byte) error { out = append(out, string(e)); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func testStorage(t *testing.T, s Storage) {
	if err := s.Append("a", [][]byte{[]byte("1"), []byte("2")}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Append("ab", [][]byte{[]byte("x")}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Append("a", [][]byte{[]byte("3")}, true); err != nil {
		t.Fatal(err)
	}
	if got := loadAll(t, s, "a"); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("load a = %q", got)
	}
	if got := loadAll(t, s, "ab"); !slices.Equal(got, []string{"x"}) {
		t.Errorf("load ab = %q", got)
	}
	if n, err := s.Count("a"); err != nil || n != 3 {
		t.Errorf("count a = %d, %v", n, err)
	}
	if d, err := s.Docs(); err != nil || !slices.Equal(d, []string{"a", "ab"}) {
		t.Errorf("docs = %q, %v", d, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append("a", [][]byte{[]byte("4")}, true); err != ErrClosed {
		t.Errorf("append after close: %v", err)
	}
}

func TestMemStorage(t *testing.T) { testStorage(t, NewMemStorage()) }

func TestPebbleStorage(t *testing.T) {
	s, err := OpenPebble(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	testStorage(t, s)
}

// TestPebbleCrash appends on a crashable in-memory FS, takes crash clones
// (unsynced data dropped at random) and checks every acknowledged append
// survives and the store opens.
func TestPebbleCrash(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s, err := OpenPebble("db", fs)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	acked := 0
	for round := 0; round < 20; round++ {
		for i := 0; i < 10; i++ {
			if err := s.Append("d", [][]byte{fmt.Appendf(nil, "e%d", acked)}, true); err != nil {
				t.Fatal(err)
			}
			acked++
		}
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rng})
		c, err := OpenPebble("db", crashed)
		if err != nil {
			t.Fatalf("round %d: reopen after crash: %v", round, err)
		}
		got := loadAll(t, c, "d")
		if len(got) != acked {
			t.Fatalf("round %d: %d entries after crash, acknowledged %d", round, len(got), acked)
		}
		for i, g := range got {
			if g != fmt.Sprintf("e%d", i) {
				t.Fatalf("round %d: entry %d = %q", round, i, g)
			}
		}
		c.Close()
	}
	s.Close()
}

// failingStorage fails every Append after the first `ok` ones.
type failingStorage struct {
	*MemStorage
	ok int
}

func (f *failingStorage) Append(doc string, envs [][]byte, sync bool) error {
	if f.ok <= 0 {
		return errors.New("disk on fire")
	}
	f.ok--
	return f.MemStorage.Append(doc, envs, sync)
}

// TestStorageErrorStopsWrites checks a storage failure is reported: the
// write fails with ErrStorage, later writes too, the node is unhealthy
// and an alert is raised.
func TestStorageErrorStopsWrites(t *testing.T) {
	c := DefaultTestConfig()
	c.Storage = &failingStorage{MemStorage: NewMemStorage(), ok: 1}
	c.APIAddr = "127.0.0.1:0"
	n, err := New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	d := mustDoc(t, n, "d")
	ctx := context.Background()
	if err := d.Insert(ctx, "t", "1", Cols{"v": 1}); err != nil {
		t.Fatal(err)
	}
	if err := d.Insert(ctx, "t", "2", Cols{"v": 2}); !errors.Is(err, ErrStorage) {
		t.Fatalf("write on a failing store: %v, want ErrStorage", err)
	}
	if err := d.Insert(ctx, "t", "3", Cols{"v": 3}); !errors.Is(err, ErrStorage) {
		t.Fatalf("write after the failure: %v, want ErrStorage", err)
	}
	if n.Err() == nil {
		t.Fatal("node reports healthy after a storage error")
	}
	resp, err := http.Get("http://" + n.APIAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("healthz %d, want 503", resp.StatusCode)
	}
	var saw bool
	for _, a := range n.Alerts() {
		saw = saw || (a.Kind == "storage" && strings.Contains(a.Detail, "disk on fire"))
	}
	if !saw {
		t.Fatalf("no storage alert: %+v", n.Alerts())
	}
}

// TestCorruptLogReported restarts from a log with a garbage entry: the
// node starts with the valid entries and raises a storage alert.
func TestCorruptLogReported(t *testing.T) {
	store := NewMemStorage()
	c := storeTestConfig()
	n := startOn(t, c, store)
	writeN(t, mustDoc(t, n, "d"), "r", 3)
	n.Close()
	re := store.Reopen()
	re.Append("d", [][]byte{[]byte("garbage")}, true)
	n = startOn(t, c, re)
	defer n.Close()
	if got := mustDoc(t, n, "d").Len(); got != 3 {
		t.Fatalf("%d changes restored, want 3", got)
	}
	var saw bool
	for _, a := range n.Alerts() {
		saw = saw || (a.Kind == "storage" && a.Reason == "restore")
	}
	if !saw {
		t.Fatalf("no restore alert: %+v", n.Alerts())
	}
}
