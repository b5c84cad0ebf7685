package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// Usage is the help text of the chaos subcommand.
const Usage = `usage: convergenode chaos [flags]

Runs real convergenode nodes (libp2p, gossipsub, sync streams, stores) in
one process on an in-memory network (a go-libp2p mocknet: no sockets),
with faults and Byzantine peers, then heals everything and checks the
invariants: convergence, valid-only, same set -> same state, no lost
acknowledged writes, equivocation proofs on every node, bounded memory and
attackers scored below gossipsub's graylist threshold.

examples:
  convergenode chaos --nodes 12 --byzantine 3 --faults partition,churn --duration 60s --seed 5
  convergenode chaos --nodes 8 --byzantine 4 --attacks forge,equivocate,lie,censor --json
  convergenode chaos --flood --factor 10 --duration 30s

faults:  ` + "partition, churn, cut, latency" + `
attacks: equivocate, forge, tamper, lamport, fake-parents, flood-invalid,
         flood-valid, replay, oversized, presence-spoof, lie, censor

flags:
`

// CLI runs the chaos subcommand with args (without the program and
// subcommand names) and prints the report to stdout. It returns an error
// if an invariant failed.
func CLI(ctx context.Context, args []string, stdout io.Writer) error {
	var (
		cfg            Config
		faults, attack string
		jsonOut, flood bool
		factor         float64
	)
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprint(stdout, Usage)
		fs.PrintDefaults()
	}
	fs.IntVar(&cfg.Nodes, "nodes", 12, "members, honest and Byzantine")
	fs.IntVar(&cfg.Byzantine, "byzantine", 0, "how many members are attackers")
	fs.StringVar(&faults, "faults", "", "comma-separated faults: partition, churn, cut, latency")
	fs.StringVar(&attack, "attacks", "", "comma-separated attacks given to the attackers in turn (default all)")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "faulty phase")
	fs.DurationVar(&cfg.Settle, "settle", 60*time.Second, "longest wait for convergence after healing")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of identities, wiring, faults and attacks")
	fs.Float64Var(&cfg.Rate, "rate", 2, "writes per second per honest node")
	fs.IntVar(&cfg.Degree, "degree", 0, "wire a random graph of about this degree (0: full mesh)")
	fs.DurationVar(&cfg.Latency, "latency", 2*time.Millisecond, "base link latency")
	fs.Float64Var(&cfg.HeapBoundMiB, "heap-bound", 512, "bound on the process heap, MiB")
	fs.BoolVar(&jsonOut, "json", false, "print the report as JSON")
	fs.BoolVar(&flood, "flood", false, "measure an invalid-change flood instead (--nodes honest nodes, one attacker)")
	fs.Float64Var(&factor, "factor", 10, "with --flood: flood rate over the total honest rate")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("chaos: unexpected arguments %q", fs.Args())
	}
	cfg.Faults = splitList(faults)
	for _, a := range splitList(attack) {
		cfg.Attacks = append(cfg.Attacks, Attack(a))
	}
	if flood {
		r, err := Flood(ctx, FloodConfig{Honest: min(cfg.Nodes, 16), Rate: cfg.Rate * 5, Factor: factor, Duration: cfg.Duration, Seed: cfg.Seed})
		if err != nil {
			return err
		}
		if jsonOut {
			if err := writeJSON(stdout, r); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(stdout, "flood: %d honest nodes writing %.0f/s, attacker sending %.0f invalid/s (%.1fx measured)\n", r.Honest, r.HonestRate, r.FloodRate, r.Ratio)
			fmt.Fprintf(stdout, "sent:      %d invalid (%d gossip, %d sync stream to the victim), %d honest writes\n", r.Invalid, r.InvalidGossip, r.InvalidSync, r.HonestWrites)
			fmt.Fprintf(stdout, "delivery:  %.2f%% within 5s, p50 %.1fms, p99 %.1fms\n", 100*r.Delivery, r.P50Ms, r.P99Ms)
			fmt.Fprintf(stdout, "heap:      %.0f MiB at start, %.0f MiB peak (whole process)\n", r.HeapBaseMiB, r.HeapPeakMiB)
			fmt.Fprintf(stdout, "victim:    %d changes, scores the attacker %.0f (app penalty %.0f)\n", r.VictimChanges, r.VictimScore, r.VictimPenalty)
			for _, v := range r.Violations {
				fmt.Fprintf(stdout, "FAIL %s\n", v)
			}
		}
		if len(r.Violations) > 0 || r.Delivery < 0.99 {
			return errors.New("chaos: flood checks failed")
		}
		return nil
	}
	r, err := Run(ctx, cfg)
	if err != nil {
		return err
	}
	if jsonOut {
		if err := writeJSON(stdout, r); err != nil {
			return err
		}
	} else {
		fmt.Fprint(stdout, r.Text())
	}
	if !r.OK {
		return errors.New("chaos: invariants failed")
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
