package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, &out, &errb)
	return out.String(), err
}

func TestInitAndID(t *testing.T) {
	home := t.TempDir()
	out, err := runCLI(t, "--home", home, "init", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("init --json: %v: %q", err, out)
	}
	st, err := os.Stat(filepath.Join(home, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", st.Mode().Perm())
	}
	id, err := runCLI(t, "--home", home, "id")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(id) != got["peer_id"] || !strings.HasPrefix(got["peer_id"], "12D3Koo") {
		t.Errorf("id %q, init said %q", id, got["peer_id"])
	}
	if _, err := runCLI(t, "--home", home, "init"); err == nil {
		t.Error("second init succeeded")
	}
}

func TestConfigLayers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.toml")
	os.WriteFile(path, []byte("api = \"127.0.0.1:9999\"\nlog_level = \"debug\"\n[discovery]\nmdns = false\n"), 0o600)
	c, err := loadConfig(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.API != "127.0.0.1:9999" || c.Discovery.MDNS || !c.Discovery.NAT || c.KeyFile != "node.key" {
		t.Errorf("file layer: %+v", c)
	}
	env := map[string]string{"CONVERGENODE_API": "127.0.0.1:1", "CONVERGENODE_BOOTSTRAP": "a, b", "CONVERGENODE_DHT": "true"}
	if err := applyEnv(&c, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.API != "127.0.0.1:1" || len(c.Bootstrap) != 2 || c.Bootstrap[1] != "b" || !c.Discovery.DHT || c.LogLevel != "debug" {
		t.Errorf("env layer: %+v", c)
	}
	os.WriteFile(path, []byte("nope = 1\n"), 0o600)
	if _, err := loadConfig(path, true); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown key: %v", err)
	}
	if err := applyEnv(&c, func(k string) string { return map[string]string{"CONVERGENODE_MDNS": "maybe"}[k] }); err == nil {
		t.Error("bad bool accepted")
	}
}

func TestSimDelegates(t *testing.T) {
	out, err := runCLI(t, "sim", "--topology", "gossip", "--nodes", "5", "--seed", "1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "invariants: ok") {
		t.Fatalf("sim output:\n%s", out)
	}
}

// TestRunLayers checks flags beat the environment, which beats the file,
// and that run stops cleanly when its context is cancelled.
func TestRunLayers(t *testing.T) {
	home := t.TempDir()
	if _, err := runCLI(t, "--home", home, "init"); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(home, "config.toml")
	b, _ := os.ReadFile(cfg)
	b = []byte(strings.Replace(string(b), `log_level = "info"`, `log_level = "nonsense-from-file"`, 1))
	os.WriteFile(cfg, b, 0o600)
	base := []string{"--home", home, "--api", "127.0.0.1:0", "run", "--listen", "/ip4/127.0.0.1/tcp/0", "--mdns=false", "--nat=false"}
	if _, err := runCLI(t, base...); err == nil || !strings.Contains(err.Error(), "nonsense-from-file") {
		t.Fatalf("file layer: %v", err)
	}
	t.Setenv("CONVERGENODE_LOG_LEVEL", "nonsense-from-env")
	if _, err := runCLI(t, base...); err == nil || !strings.Contains(err.Error(), "nonsense-from-env") {
		t.Fatalf("env layer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() { done <- Run(ctx, append(base, "--log-level", "warn", "--json"), &out, &errb) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), `"ready": true`) {
		if time.Now().After(deadline) {
			t.Fatalf("flag layer: no ready: %s %s", out.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
