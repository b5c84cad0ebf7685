package bft

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestHygiene keeps the gate deterministic: no I/O or network imports, no
// goroutines, no wall clock, no global randomness in non-test files.
func TestHygiene(t *testing.T) {
	allowed := map[string]bool{
		"crypto/ed25519": true, "encoding/binary": true, "encoding/hex": true, "errors": true,
		"fmt": true, "slices": true, "strconv": true, "sync": true, "time": true,
		"github.com/convergenode/convergenode/crdt": true,
		// Containers only; it imports encoding/binary, and unsafe for
		// internal/prefetch's cache hints.
		"github.com/convergenode/convergenode/internal/compact": true,
		// Cache hints (one CPU instruction each); they change nothing.
		"github.com/convergenode/convergenode/internal/prefetch": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[p] {
				t.Errorf("%s imports %q", name, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: go statement at %v", name, fset.Position(n.Pos()))
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok && id.Name == "time" && (n.Sel.Name == "Now" || n.Sel.Name == "Since" || n.Sel.Name == "Sleep") {
					t.Errorf("%s: time.%s at %v", name, n.Sel.Name, fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
}
