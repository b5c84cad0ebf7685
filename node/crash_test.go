package node

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash test re-executes the test binary as a child node process
// (crashChildEnv set), which writes rows and prints "ack N" after each
// write returns; the parent kills it with SIGKILL at a random moment.
const crashChildEnv = "CONVERGENODE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	if js := os.Getenv(latChildEnv); js != "" {
		os.Exit(latChild(js))
	}
	os.Exit(m.Run())
}

func crashNodeConfig(dir string) (Config, error) {
	key, err := ReadKey(filepath.Join(dir, "node.key"))
	if err != nil {
		return Config{}, err
	}
	c := DefaultTestConfig()
	c.Key, c.DataDir, c.Listen, c.Docs = key, filepath.Join(dir, "data"), nil, []string{"crash"}
	// Snapshots every 100 ops, so the kills also land while snapshots
	// are taken and written; every restart loads the newest one (and an
	// unusable one would raise an alert, which fails the test).
	c.SnapshotEvery = 100
	return c, nil
}

// crashChild writes rows from index $CONVERGENODE_CRASH_START on, with
// several concurrent writers (so group commits are exercised), until it
// is killed.
func crashChild(dir string) int {
	start, _ := strconv.Atoi(os.Getenv("CONVERGENODE_CRASH_START"))
	c, err := crashNodeConfig(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	n, err := New(context.Background(), c)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	d, err := n.Doc(context.Background(), "crash")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	out := make(chan int, 64)
	const writers = 4
	for w := 0; w < writers; w++ {
		go func() {
			for i := start + w; ; i += writers {
				if err := d.Insert(context.Background(), "t", strconv.Itoa(i), Cols{"i": i}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				out <- i
			}
		}()
	}
	fmt.Println("started")
	for i := range out {
		fmt.Printf("ack %d\n", i)
	}
	return 0
}

// TestCrashKill9 kills a writing node process with SIGKILL 20 times; after
// each kill the store must open and hold every acknowledged write.
func TestCrashKill9(t *testing.T) {
	dir := t.TempDir()
	key, _ := GenerateKey()
	if err := WriteKey(filepath.Join(dir, "node.key"), key); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	next := 0
	acked := map[int]bool{}
	for round := 0; round < 20; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, "CONVERGENODE_CRASH_START="+strconv.Itoa(next))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() || sc.Text() != "started" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: child did not start: %q %s", round, sc.Text(), stderr.String())
		}
		killAt := time.Now().Add(time.Duration(20+rng.IntN(80)) * time.Millisecond)
		timer := time.AfterFunc(time.Until(killAt), func() { cmd.Process.Signal(syscall.SIGKILL) })
		n := 0
		for sc.Scan() {
			var i int
			if _, err := fmt.Sscanf(sc.Text(), "ack %d", &i); err == nil {
				acked[i] = true
				n++
				next = max(next, i+1)
			}
		}
		timer.Stop()
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended without SIGKILL: %v %s", round, err, stderr.String())
		}
		next += 8 // skip past writes in flight (maybe durable, never acknowledged)

		// Reopen the store as a restarted node would and check every
		// acknowledged write.
		c, err := crashNodeConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		nd, err := New(context.Background(), c)
		if err != nil {
			t.Fatalf("round %d: restart after SIGKILL: %v", round, err)
		}
		d := mustDoc(t, nd, "crash")
		missing := 0
		for i := range acked {
			if _, ok := d.Get("t", strconv.Itoa(i)); !ok {
				missing++
			}
		}
		alerts := nd.Alerts()
		nd.Close()
		if missing > 0 {
			t.Fatalf("round %d: %d of %d acknowledged writes missing after SIGKILL", round, missing, len(acked))
		}
		if len(alerts) > 0 {
			t.Fatalf("round %d: restore raised alerts: %+v", round, alerts)
		}
		t.Logf("round %d: %d writes acknowledged before the kill, %d in all, all present", round, n, len(acked))
	}
	if len(acked) < 20 {
		t.Fatalf("only %d writes acknowledged in 20 rounds", len(acked))
	}
}
