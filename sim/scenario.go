package sim

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/datadriven"
)

// Cmd is one scenario command: a name, its arguments and any input lines.
type Cmd struct {
	Name  string
	Args  []datadriven.CmdArg
	Input string
}

// Env runs scenario commands against one simulation. The first command
// must be add-nodes, which builds the simulation from Base plus its
// arguments.
type Env struct {
	// Base is the configuration add-nodes starts from (seed, factory, ...).
	Base Config
	Sim  *Sim
}

type handler func(e *Env, c Cmd) (string, error)

var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		"add-nodes":  handleAddNodes,
		"partition":  handlePartition,
		"oneway":     handleOneWay,
		"isolate":    handleIsolate,
		"heal":       handleHeal,
		"crash":      handleCrash,
		"restart":    handleRestart,
		"write":      handleWrite,
		"presence":   handlePresence,
		"stabilize":  handleStabilize,
		"run":        handleRun,
		"converged?": handleConverged,
		"state":      handleState,
		"link":       handleLink,
		"skew":       handleSkew,
		"invariants": handleInvariants,
		"metrics":    handleMetrics,
		"equivocate": handleByzantine,
		"byzantine":  handleByzantine,
		"chaos":      handleChaos,
	}
}

// Commands lists the scenario commands, sorted.
func Commands() []string {
	var c []string
	for k := range handlers {
		c = append(c, k)
	}
	sort.Strings(c)
	return c
}

// Handle runs one command and returns its output.
func (e *Env) Handle(c Cmd) (string, error) {
	h, ok := handlers[c.Name]
	if !ok {
		return "", fmt.Errorf("unknown command %q (want one of %s)", c.Name, strings.Join(Commands(), ", "))
	}
	if e.Sim == nil && c.Name != "add-nodes" && c.Name != "chaos" {
		return "", fmt.Errorf("%s: run add-nodes first", c.Name)
	}
	return h(e, c)
}

// HandleTestData adapts Handle to datadriven: errors become output.
func (e *Env) HandleTestData(d *datadriven.TestData) string {
	out, err := e.Handle(Cmd{Name: d.Cmd, Args: d.CmdArgs, Input: d.Input})
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	return out
}

// RunScenarioFile runs every command of a scenario file (the format of
// sim/testdata: a command line, optional input lines, "----" and the
// expected output, which is skipped) and writes a transcript of commands
// and their output to w. It uses the default replica nodes.
func RunScenarioFile(path string, w io.Writer) error {
	return RunScenarioFileWith(path, Config{}, w)
}

// RunScenarioFileWith is RunScenarioFile starting from base.
func RunScenarioFileWith(path string, base Config, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	env := &Env{Base: base}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var cur *Cmd
	skipping := false
	lineNo := 0
	run := func() error {
		if cur == nil {
			return nil
		}
		out, err := env.Handle(*cur)
		if err != nil {
			return fmt.Errorf("%s:%d: %s: %w", path, lineNo, cur.Name, err)
		}
		fmt.Fprintf(w, "> %s\n%s", cur.Name+argsString(cur.Args), out)
		cur = nil
		return nil
	}
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		switch {
		case skipping:
			if strings.TrimSpace(line) == "" {
				skipping = false
			}
		case line == "----":
			if err := run(); err != nil {
				return err
			}
			skipping = true
		case strings.HasPrefix(strings.TrimSpace(line), "#") || strings.TrimSpace(line) == "":
			if err := run(); err != nil {
				return err
			}
		case cur == nil:
			name, args, err := datadriven.ParseLine(line)
			if err != nil {
				return fmt.Errorf("%s:%d: %w", path, lineNo, err)
			}
			cur = &Cmd{Name: name, Args: args}
		default:
			cur.Input += line + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return run()
}

func argsString(args []datadriven.CmdArg) string {
	var b strings.Builder
	for _, a := range args {
		b.WriteString(" ")
		b.WriteString(a.String())
	}
	return b.String()
}

// Argument helpers. Positional arguments are CmdArgs without values.

func positional(c Cmd) []string {
	var p []string
	for _, a := range c.Args {
		if len(a.Vals) == 0 {
			p = append(p, a.Key)
		}
	}
	return p
}

func argVal(c Cmd, key string) (string, bool) {
	for _, a := range c.Args {
		if a.Key == key && len(a.Vals) > 0 {
			return strings.Join(a.Vals, ","), true
		}
	}
	return "", false
}

func argInt(c Cmd, key string, def int) (int, error) {
	v, ok := argVal(c, key)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %w", key, v, err)
	}
	return n, nil
}

func argFloat(c Cmd, key string, def float64) (float64, error) {
	v, ok := argVal(c, key)
	if !ok {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %w", key, v, err)
	}
	return f, nil
}

func argDur(c Cmd, key string, def time.Duration) (time.Duration, error) {
	v, ok := argVal(c, key)
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %w", key, v, err)
	}
	return d, nil
}

// nodeList parses "1,2,3" (1-based, as in scenario files) to 0-based indexes.
func (e *Env) nodeList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > e.Sim.Len() {
			return nil, fmt.Errorf("bad node %q (want 1..%d)", f, e.Sim.Len())
		}
		out = append(out, n-1)
	}
	return out, nil
}

func (e *Env) node(s string) (int, error) {
	ns, err := e.nodeList(s)
	if err != nil {
		return 0, err
	}
	if len(ns) != 1 {
		return 0, fmt.Errorf("want one node, got %q", s)
	}
	return ns[0], nil
}

// fmtNodes formats 0-based indexes 1-based.
func fmtNodes(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n + 1)
	}
	return strings.Join(parts, ",")
}

// groups returns the honest up nodes grouped by state, each group sorted,
// groups ordered by their first node.
func (s *Sim) stateGroups() [][]int {
	idx := map[stateKey]int{}
	var groups [][]int
	for _, p := range s.peers {
		if !p.up || p.byz != nil {
			continue
		}
		h, n := s.stateOf(p)
		k := stateKey{h, n}
		g, ok := idx[k]
		if !ok {
			g = len(groups)
			idx[k] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], p.i)
	}
	return groups
}
