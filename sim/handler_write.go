package sim

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/convergenode/convergenode/crdt"
)

func itoa(n int) string { return strconv.Itoa(n) }

// write 2 t/r/c=x [t/r2/c=y ...]
//
// Node 2 writes the cells (table/row/column=value) in one proposal: the
// cells of one row are one insert (insert-or-replace of the row). Values
// that parse as integers are ints, "null" is null, anything else a string.
// More writes may follow as input lines ("2 t/r/c=x").
func handleWrite(e *Env, c Cmd) (string, error) {
	lines := []Cmd{c}
	for _, l := range strings.Split(strings.TrimSpace(c.Input), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			args := parseSimpleArgs(l)
			lines = append(lines, Cmd{Name: "write", Args: args})
		}
	}
	var b strings.Builder
	for _, lc := range lines {
		pos := positional(lc)
		if len(pos) == 0 {
			continue
		}
		n, err := e.node(pos[0])
		if err != nil {
			return "", err
		}
		// Cells of one row become one insert.
		var ops []crdt.Op
		rows := map[[2]string]int{}
		for _, a := range lc.Args {
			if len(a.Vals) == 0 {
				continue
			}
			parts := strings.Split(a.Key, "/")
			if len(parts) != 3 {
				return "", fmt.Errorf("want table/row/col=value, got %q", a.Key)
			}
			k := [2]string{parts[0], parts[1]}
			v := parseValue(strings.Join(a.Vals, ","))
			if i, ok := rows[k]; ok {
				ops[i].Cols = append(ops[i].Cols, crdt.Col{Name: parts[2], Value: v})
				sort.Slice(ops[i].Cols, func(x, y int) bool { return ops[i].Cols[x].Name < ops[i].Cols[y].Name })
				continue
			}
			rows[k] = len(ops)
			ops = append(ops, crdt.Insert(parts[0], parts[1], map[string]crdt.Value{parts[2]: v}))
		}
		if len(ops) == 0 {
			return "", fmt.Errorf("write %s: no cells", pos[0])
		}
		if err := e.Sim.Propose(n, ops...); err != nil {
			return "", err
		}
		e.Sim.met.writes++
		fmt.Fprintf(&b, "%d wrote %d cell(s)\n", n+1, len(ops))
	}
	return b.String(), nil
}

// presence 2 ns key=value
//
// Node 2 sets an ephemeral value.
func handlePresence(e *Env, c Cmd) (string, error) {
	pos := positional(c)
	if len(pos) != 2 {
		return "", fmt.Errorf("want presence NODE NS key=value")
	}
	n, err := e.node(pos[0])
	if err != nil {
		return "", err
	}
	for _, a := range c.Args {
		if len(a.Vals) == 0 {
			continue
		}
		if err := e.Sim.SetPresence(n, pos[1], a.Key, parseValue(strings.Join(a.Vals, ","))); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d set presence in %s\n", n+1, pos[1]), nil
}

func parseValue(s string) crdt.Value {
	if s == "null" {
		return crdt.Null()
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return crdt.Int(i)
	}
	return crdt.String(s)
}

func parseSimpleArgs(line string) []datadrivenArg {
	var out []datadrivenArg
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			out = append(out, datadrivenArg{Key: k, Vals: []string{v}})
		} else {
			out = append(out, datadrivenArg{Key: f})
		}
	}
	return out
}
