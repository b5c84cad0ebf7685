package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/convergenode/convergenode/node"
	"github.com/spf13/cobra"
)

// apiBase returns the base URL of the running node's API: --api, then
// CONVERGENODE_API, then <home>/api (written by run), then the config.
func (e *env) apiBase() (string, error) {
	addr := e.apiAddr
	if addr == "" {
		addr = e.getenv("CONVERGENODE_API")
	}
	if addr == "" {
		home, err := e.homeDir()
		if err != nil {
			return "", err
		}
		if b, err := os.ReadFile(filepath.Join(home, "api")); err == nil {
			addr = strings.TrimSpace(string(b))
		}
	}
	if addr == "" {
		c, _, err := e.config(false)
		if err != nil {
			return "", err
		}
		addr = c.API
	}
	if addr == "" {
		return "", errors.New("no API address: use --api or start the node with an API")
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return strings.TrimRight(addr, "/"), nil
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// call does one API request and decodes the JSON answer into out.
func (e *env) call(ctx context.Context, method, path string, body, out any) error {
	base, err := e.apiBase()
	if err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("is the node running? %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var m struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &m) == nil && m.Error != "" {
			return fmt.Errorf("%s (HTTP %d)", m.Error, resp.StatusCode)
		}
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func esc(s string) string { return url.PathEscape(s) }

func (e *env) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the running node's status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var in node.Info
			if err := e.call(cmd.Context(), "GET", "/v1/node", nil, &in); err != nil {
				return err
			}
			var docs []node.DocInfo
			if err := e.call(cmd.Context(), "GET", "/v1/docs", nil, &docs); err != nil {
				return err
			}
			return e.print(map[string]any{"node": in, "docs": docs}, func(w io.Writer) {
				health := "healthy"
				if !in.Healthy {
					health = "UNHEALTHY: " + in.Error
				}
				fmt.Fprintf(w, "peer ID  %s\nversion  %s\nuptime   %s\nhealth   %s\npeers    %d\napi      %s\n", in.ID, in.Version, in.Uptime, health, in.Peers, in.API)
				for _, a := range in.Addrs {
					fmt.Fprintf(w, "address  %s\n", a)
				}
				for _, d := range docs {
					fmt.Fprintf(w, "doc      %s: %d changes, %d heads, state %s\n", d.ID, d.Changes, len(d.Heads), d.StateHash[:16])
					if d.CatchUp.Active && d.CatchUp.Applied >= 1000 {
						fmt.Fprintf(w, "         catching up: %d changes applied, %.0f/s\n", d.CatchUp.Applied, d.CatchUp.PerSecond)
					}
				}
			})
		},
	}
}

func (e *env) peersCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "peers",
		Short: "List connected peers with their gossip scores",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ps []node.PeerInfo
			if err := e.call(cmd.Context(), "GET", "/v1/peers", nil, &ps); err != nil {
				return err
			}
			return e.print(ps, func(w io.Writer) {
				for _, p := range ps {
					fmt.Fprintf(w, "%s  score %.1f  penalty %.0f  docs %s  %s\n", p.ID, p.Score, p.Penalty, joinComma(p.Docs), joinComma(p.Addrs))
				}
			})
		},
	}
}

func (e *env) alertsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "alerts",
		Short: "List recent alerts (equivocations, penalties, storage errors)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var as []node.Alert
			if err := e.call(cmd.Context(), "GET", "/v1/alerts", nil, &as); err != nil {
				return err
			}
			return e.print(as, func(w io.Writer) {
				if len(as) == 0 {
					fmt.Fprintln(w, "no alerts")
				}
				for _, a := range as {
					fmt.Fprintf(w, "%s  doc %s  %s  peer %s  author %s  penalize %v\n", a.Time.Format(time.RFC3339), a.Doc, a.Reason, a.Peer, a.Author, a.Penalize)
				}
			})
		},
	}
}

// parseValue reads a command-line value: JSON (numbers, true, false,
// null, "quoted", {"$bytes": ...}) when it parses, else a plain string.
func parseValue(s string) node.JSONValue {
	var v node.JSONValue
	if err := json.Unmarshal([]byte(s), &v); err == nil {
		return v
	}
	return node.JSONValue{Value: node.StringValue(s)}
}

func parseCols(args []string) (map[string]node.JSONValue, error) {
	cols := map[string]node.JSONValue{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("bad column %q: want name=value", a)
		}
		cols[k] = parseValue(v)
	}
	return cols, nil
}

func rowText(w io.Writer, r node.JSONRow) {
	names := make([]string, 0, len(r.Cols))
	for k := range r.Cols {
		names = append(names, k)
	}
	sort.Strings(names)
	var sb strings.Builder
	sb.WriteString(r.Key)
	for _, k := range names {
		b, _ := json.Marshal(r.Cols[k])
		fmt.Fprintf(&sb, "  %s=%s", k, b)
	}
	fmt.Fprintln(w, sb.String())
}

func rowPath(doc, table, row string) string {
	return "/v1/docs/" + esc(doc) + "/tables/" + esc(table) + "/rows/" + esc(row)
}

func atQuery(at string, set bool) string {
	if !set {
		return ""
	}
	return "?at=" + url.QueryEscape(at)
}

func (e *env) docCmd() *cobra.Command {
	doc := &cobra.Command{Use: "doc", Short: "Read and write documents on the running node"}
	written := func(cmd *cobra.Command, res map[string]any) error {
		return e.print(res, func(w io.Writer) { fmt.Fprintln(w, "ok") })
	}
	doc.AddCommand(&cobra.Command{
		Use:   "insert DOC TABLE ROW [COL=VALUE ...]",
		Short: "Insert (or replace) a row",
		Args:  cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			cols, err := parseCols(args[3:])
			if err != nil {
				return err
			}
			var res map[string]any
			if err := e.call(cmd.Context(), "PUT", rowPath(args[0], args[1], args[2]), map[string]any{"cols": cols}, &res); err != nil {
				return err
			}
			return written(cmd, res)
		},
	}, &cobra.Command{
		Use:   "update DOC TABLE ROW COL=VALUE [COL=VALUE ...]",
		Short: "Set columns of a row (one change)",
		Args:  cobra.MinimumNArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			cols, err := parseCols(args[3:])
			if err != nil {
				return err
			}
			var res map[string]any
			if err := e.call(cmd.Context(), "PATCH", rowPath(args[0], args[1], args[2]), map[string]any{"cols": cols}, &res); err != nil {
				return err
			}
			return written(cmd, res)
		},
	}, &cobra.Command{
		Use:   "delete DOC TABLE ROW",
		Short: "Delete a row",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res map[string]any
			if err := e.call(cmd.Context(), "DELETE", rowPath(args[0], args[1], args[2]), nil, &res); err != nil {
				return err
			}
			return written(cmd, res)
		},
	})
	var at string
	get := &cobra.Command{
		Use:   "get DOC TABLE ROW",
		Short: "Print a row",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r node.JSONRow
			if err := e.call(cmd.Context(), "GET", rowPath(args[0], args[1], args[2])+atQuery(at, cmd.Flags().Changed("at")), nil, &r); err != nil {
				return err
			}
			return e.print(r, func(w io.Writer) { rowText(w, r) })
		},
	}
	get.Flags().StringVar(&at, "at", "", "read at this version (comma-separated change IDs)")
	scan := &cobra.Command{
		Use:   "scan DOC TABLE",
		Short: "Print the rows of a table",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res struct {
				Rows []node.JSONRow `json:"rows"`
			}
			path := "/v1/docs/" + esc(args[0]) + "/tables/" + esc(args[1]) + atQuery(at, cmd.Flags().Changed("at"))
			if err := e.call(cmd.Context(), "GET", path, nil, &res); err != nil {
				return err
			}
			return e.print(res, func(w io.Writer) {
				for _, r := range res.Rows {
					rowText(w, r)
				}
			})
		},
	}
	scan.Flags().StringVar(&at, "at", "", "read at this version (comma-separated change IDs)")
	doc.AddCommand(get, scan, &cobra.Command{
		Use:   "proofs DOC",
		Short: "Print the equivocation proofs the node holds for a document",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ps []node.Proof
			if err := e.call(cmd.Context(), "GET", "/v1/docs/"+esc(args[0])+"/proofs", nil, &ps); err != nil {
				return err
			}
			return e.print(ps, func(w io.Writer) {
				if len(ps) == 0 {
					fmt.Fprintln(w, "no proofs")
				}
				for _, p := range ps {
					fmt.Fprintf(w, "author %s  changes %s %s\n", p.Author, p.Changes[0], p.Changes[1])
				}
			})
		},
	}, &cobra.Command{
		Use:   "watch DOC",
		Short: "Print changes to a document as they are applied",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.watch(cmd.Context(), args[0], "change")
		},
	})
	return doc
}

func (e *env) presenceCmd() *cobra.Command {
	p := &cobra.Command{Use: "presence", Short: "Ephemeral state (presence, cursors) of a document"}
	p.AddCommand(&cobra.Command{
		Use:   "set DOC NAMESPACE KEY VALUE",
		Short: "Set this node's presence value",
		Args:  cobra.ExactArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res map[string]any
			path := "/v1/docs/" + esc(args[0]) + "/presence/" + esc(args[1]) + "/" + esc(args[2])
			if err := e.call(cmd.Context(), "PUT", path, map[string]any{"value": parseValue(args[3])}, &res); err != nil {
				return err
			}
			return e.print(res, func(w io.Writer) { fmt.Fprintln(w, "ok") })
		},
	}, &cobra.Command{
		Use:   "list DOC",
		Short: "List live presence entries",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res []map[string]any
			if err := e.call(cmd.Context(), "GET", "/v1/docs/"+esc(args[0])+"/presence", nil, &res); err != nil {
				return err
			}
			return e.print(res, func(w io.Writer) {
				for _, r := range res {
					v, _ := json.Marshal(r["value"])
					fmt.Fprintf(w, "%v/%v=%s  author %v\n", r["namespace"], r["key"], v, r["author"])
				}
			})
		},
	}, &cobra.Command{
		Use:   "watch DOC",
		Short: "Print presence changes as they happen",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.watch(cmd.Context(), args[0], "presence")
		},
	})
	return p
}

// watch prints feed events of one type until ctx is cancelled.
func (e *env) watch(ctx context.Context, doc, typ string) error {
	base, err := e.apiBase()
	if err != nil {
		return err
	}
	u := "ws" + strings.TrimPrefix(base, "http") + "/v1/docs/" + esc(doc) + "/feed"
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 20)
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch: %w", err)
		}
		var ev node.FeedEvent
		if err := json.Unmarshal(b, &ev); err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		if ev.Type != typ {
			continue
		}
		if e.json {
			fmt.Fprintln(e.stdout, string(b))
			continue
		}
		switch typ {
		case "change":
			for _, r := range ev.Rows {
				fmt.Fprintf(e.stdout, "%s %s %s/%s", ev.Change[:8], r.Kind, r.Table, r.Key)
				names := make([]string, 0, len(r.Cols))
				for k := range r.Cols {
					names = append(names, k)
				}
				sort.Strings(names)
				for _, k := range names {
					v, _ := json.Marshal(r.Cols[k])
					fmt.Fprintf(e.stdout, " %s=%s", k, v)
				}
				fmt.Fprintln(e.stdout)
			}
		case "presence":
			v, _ := json.Marshal(ev.Presence.Value)
			state := "set"
			if ev.Presence.Removed {
				state = "removed"
			}
			fmt.Fprintf(e.stdout, "%s %s/%s=%s author %s\n", state, ev.Presence.Namespace, ev.Presence.Key, v, ev.Presence.Author)
		}
	}
}
