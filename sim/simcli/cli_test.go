package simcli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLICompare(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	csv := filepath.Join(dir, "out.csv")
	err := CLI(context.Background(), []string{"--nodes", "20", "--seed", "7", "--rate", "1", "--compare", "star,gossip,mesh", "--csv", csv, "--svg", dir, "--quiet"}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"star", "gossip", "mesh", "msgs/node"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	for _, f := range []string{"out.csv", "out.series.csv", "inconsistency.svg", "latency.svg", "compare.svg"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
}

func TestCLIJSONDeterministic(t *testing.T) {
	args := []string{"--topology", "gossip", "--nodes", "30", "--fanout", "4", "--seed", "3", "--loss", "0.2", "--json", "--quiet"}
	var a, b bytes.Buffer
	if err := CLI(context.Background(), args, &a); err != nil {
		t.Fatal(err)
	}
	if err := CLI(context.Background(), args, &b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() || !strings.Contains(a.String(), `"trace_hash"`) {
		t.Fatalf("JSON differs between runs or lacks the trace hash:\n%s", a.String())
	}
	// Huge pages change where memory lives, not what a run does.
	var c bytes.Buffer
	if err := CLI(context.Background(), append(args, "--huge-pages"), &c); err != nil {
		t.Fatal(err)
	}
	if c.String() != a.String() {
		t.Fatalf("--huge-pages changed the report:\n%s\n---\n%s", c.String(), a.String())
	}
}

func TestCLIScenarioAndErrors(t *testing.T) {
	var out bytes.Buffer
	if err := CLI(context.Background(), []string{"--scenario", "../testdata/partition.txt"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "> converged?") {
		t.Errorf("transcript:\n%s", out.String())
	}
	if err := CLI(context.Background(), []string{"--topology", "nope", "--quiet"}, &out); err == nil {
		t.Error("unknown topology accepted")
	}
	if err := CLI(context.Background(), []string{"--byzantine", "x"}, &out); err == nil {
		t.Error("bad --byzantine accepted")
	}
}

func TestCLISeeds(t *testing.T) {
	var out bytes.Buffer
	err := CLI(context.Background(), []string{"--nodes", "16", "--rate", "1", "--compare", "star,gossip", "--seeds", "3", "--quiet"}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "gossip") {
		t.Errorf("table:\n%s", out.String())
	}
}
