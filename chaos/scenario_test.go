package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestRunSmall is the default slice of the scenario runner: a few nodes,
// every attack once, partitions and churn for a few seconds.
func TestRunSmall(t *testing.T) {
	cfg := Config{Nodes: 8, Byzantine: 3, Faults: []string{FaultPartition, FaultChurn}, Duration: 6 * time.Second, Seed: 5,
		Attacks: []Attack{AttackEquivocate, AttackForge, AttackLie}}
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + r.Text())
	if !r.OK {
		t.Fatal("invariants failed")
	}
}

func TestCLI(t *testing.T) {
	var out bytes.Buffer
	err := CLI(context.Background(), []string{"--nodes", "5", "--byzantine", "2", "--attacks", "tamper,censor",
		"--faults", "cut,latency", "--duration", "3s", "--seed", "2", "--json"}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	var r Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !r.OK || len(r.Attackers) != 2 || r.Writes == 0 {
		t.Fatalf("report: %s", out.String())
	}
	out.Reset()
	if err := CLI(context.Background(), []string{"--flood", "--nodes", "3", "--duration", "2s", "--json"}, &out); err != nil {
		t.Fatalf("flood: %v\n%s", err, out.String())
	}
	var fr FloodReport
	if err := json.Unmarshal(out.Bytes(), &fr); err != nil || fr.Invalid == 0 || fr.Delivery < 0.99 {
		t.Fatalf("flood report (%v): %s", err, out.String())
	}
	out.Reset()
	if err := CLI(context.Background(), []string{"--faults", "nope"}, &out); err == nil || !strings.Contains(err.Error(), "unknown fault") {
		t.Errorf("unknown fault: %v", err)
	}
	if err := CLI(context.Background(), []string{"--nodes", "2", "--byzantine", "2"}, &out); err == nil {
		t.Error("no honest node accepted")
	}
}
