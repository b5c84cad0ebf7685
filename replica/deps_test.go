package replica_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// corePackages must stay deterministic and free of I/O: no networking, no
// OS access, no wall clock.
var corePackages = []string{"crdt", "bft", "ephemeral", "replica"}

// forbiddenImports are refused in the core packages and in any package of
// this module they depend on; forbiddenPrefixes anywhere in the core's
// (non-test) dependency graph.
var (
	forbiddenImports  = []string{"net", "os", "os/exec", "os/signal", "net/http", "syscall"}
	forbiddenPrefixes = []string{"github.com/libp2p/", "github.com/multiformats/go-multiaddr"}
)

// TestCoreDependencies fails if replica/, crdt/, bft/ or ephemeral/ import
// libp2p, net or os (directly or through a dependency), or if their
// non-test sources call time.Now.
func TestCoreDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	var args []string
	for _, p := range corePackages {
		args = append(args, "github.com/convergenode/convergenode/"+p)
	}
	cmd := exec.Command("go", append([]string{"list", "-deps", "-json"}, args...)...)
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	seen := 0
	for {
		var p struct {
			ImportPath string
			Imports    []string
			Standard   bool
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		seen++
		if p.Standard {
			// The standard library itself may use os (crypto/rand does);
			// what matters is that no core or third-party package does.
			continue
		}
		core := strings.HasPrefix(p.ImportPath, "github.com/convergenode/convergenode/")
		for _, imp := range p.Imports {
			for _, f := range forbiddenImports {
				// Third-party leaves (blake3's CPU feature probe reads
				// /proc through os) are allowed the OS; the core is not.
				if core && imp == f {
					t.Errorf("%s imports %s", p.ImportPath, imp)
				}
			}
			for _, f := range forbiddenPrefixes {
				if strings.HasPrefix(imp, f) {
					t.Errorf("%s imports %s", p.ImportPath, imp)
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("go list returned no packages")
	}
	for _, dir := range corePackages {
		files, _ := filepath.Glob(filepath.Join("..", dir, "*.go"))
		sub, _ := filepath.Glob(filepath.Join("..", dir, "*", "*.go"))
		if dir == "replica" {
			// replicatest is a test harness, but it is also held to the rule.
			files = append(files, sub...)
		}
		if len(files) == 0 {
			t.Errorf("no sources in %s", dir)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(src, []byte("time.Now")) {
				t.Errorf("%s mentions time.Now", f)
			}
		}
	}
}
