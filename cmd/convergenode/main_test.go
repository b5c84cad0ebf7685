package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the convergenode binary when cliEnv is set,
// so the test runs the real program as a user would.
const cliEnv = "CONVERGENODE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func command(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), cliEnv+"=1")
	return cmd
}

func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := command(args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("convergenode %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

type runningNode struct {
	cmd    *exec.Cmd
	addrs  []string
	stderr *bytes.Buffer
}

// start runs "convergenode run" and waits for "ready".
func start(t *testing.T, home string, extra ...string) *runningNode {
	t.Helper()
	args := append([]string{"--home", home, "--api", "127.0.0.1:0", "run",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--mdns=false", "--nat=false", "--dht=false", "--log-level", "debug"}, extra...)
	cmd := command(args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	rn := &runningNode{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = rn.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if a, ok := strings.CutPrefix(line, "listening on "); ok {
			rn.addrs = append(rn.addrs, a)
		}
		if line == "ready" {
			go io.Copy(io.Discard, stdout)
			return rn
		}
	}
	t.Fatalf("node did not print ready:\n%s", rn.stderr.String())
	return nil
}

// stop sends SIGTERM and expects a clean exit.
func (rn *runningNode) stop(t *testing.T) {
	t.Helper()
	rn.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- rn.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("node exited with %v after SIGTERM:\n%s", err, rn.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Errorf("node did not exit after SIGTERM")
	}
}

// TestCLI runs init, two nodes on loopback, doc insert on one and doc get
// on the other, as a user would.
func TestCLI(t *testing.T) {
	h1, h2 := t.TempDir(), t.TempDir()
	var initOut map[string]string
	if err := json.Unmarshal([]byte(runCLI(t, "--home", h1, "init", "--json")), &initOut); err != nil {
		t.Fatal(err)
	}
	if id := strings.TrimSpace(runCLI(t, "--home", h1, "id")); id != initOut["peer_id"] {
		t.Fatalf("id %q, init printed %q", id, initOut["peer_id"])
	}
	runCLI(t, "--home", h2, "init")
	st, err := os.Stat(h1 + "/node.key")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}

	n1 := start(t, h1, "--doc", "notes")
	if len(n1.addrs) == 0 || !strings.Contains(n1.addrs[0], initOut["peer_id"]) {
		t.Fatalf("listen addresses %q", n1.addrs)
	}
	n2 := start(t, h2, "--doc", "notes", "--bootstrap", n1.addrs[0])

	if out := runCLI(t, "--home", h1, "doc", "insert", "notes", "todo", "1", "title=buy milk", "done=false", "n=3"); strings.TrimSpace(out) != "ok" {
		t.Fatalf("insert: %q", out)
	}
	var got string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		cmd := command("--home", h2, "doc", "get", "notes", "todo", "1")
		out, err := cmd.Output()
		if err == nil {
			got = string(out)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if want := `1  done=false  n=3  title="buy milk"`; strings.TrimSpace(got) != want {
		t.Fatalf("doc get on the second node = %q, want %q\nnode 2 log:\n%s", got, want, n2.stderr.String())
	}
	var peers []map[string]any
	if err := json.Unmarshal([]byte(runCLI(t, "--home", h2, "peers", "--json")), &peers); err != nil || len(peers) != 1 {
		t.Fatalf("peers: %v %v", peers, err)
	}
	if out := runCLI(t, "--home", h2, "status"); !strings.Contains(out, "notes: 1 changes") {
		t.Fatalf("status:\n%s", out)
	}
	if out := runCLI(t, "--home", h2, "doc", "proofs", "notes"); strings.TrimSpace(out) != "no proofs" {
		t.Fatalf("doc proofs: %q", out)
	}
	n2.stop(t)
	n1.stop(t)
	if _, err := os.Stat(h1 + "/api"); !os.IsNotExist(err) {
		t.Errorf("api file left after shutdown: %v", err)
	}
}
