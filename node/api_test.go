package node

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func apiNode(t *testing.T) (*Node, *httptest.Server) { return apiNodeLimit(t, 1<<10) }

func apiNodeLimit(t *testing.T, limit int64) (*Node, *httptest.Server) {
	t.Helper()
	c := DefaultTestConfig()
	c.MaxBodyBytes = limit
	n, err := New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(func() { srv.Close(); n.Close() })
	return n, srv
}

func do(t *testing.T, srv *httptest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: bad JSON %q", method, path, b)
		}
	} else {
		m = map[string]any{"raw": string(b)}
	}
	return resp.StatusCode, m
}

func TestAPIDocuments(t *testing.T) {
	_, srv := apiNode(t)
	code, res := do(t, srv, "PUT", "/v1/docs/d/tables/todo/rows/1", `{"cols": {"title": "milk", "n": 1, "f": 1.0, "b": {"$bytes": "AQI="}, "x": null}}`)
	if code != 200 || res["ok"] != true {
		t.Fatalf("insert: %d %v", code, res)
	}
	v1 := strings.Join(toStrings(res["heads"]), ",")
	code, row := do(t, srv, "GET", "/v1/docs/d/tables/todo/rows/1", "")
	cols, _ := row["cols"].(map[string]any)
	if code != 200 || cols["title"] != "milk" || cols["n"] != 1.0 {
		t.Fatalf("get: %d %v", code, row)
	}
	if code, res = do(t, srv, "PATCH", "/v1/docs/d/tables/todo/rows/1", `{"cols": {"title": "oat milk"}}`); code != 200 {
		t.Fatalf("update: %d %v", code, res)
	}
	if code, res = do(t, srv, "POST", "/v1/docs/d/tx", `{"ops": [{"op": "insert", "table": "todo", "row": "2", "cols": {"title": "eggs"}}, {"op": "delete", "table": "todo", "row": "1"}]}`); code != 200 {
		t.Fatalf("tx: %d %v", code, res)
	}
	code, res = do(t, srv, "GET", "/v1/docs/d/tables/todo", "")
	if rows, _ := res["rows"].([]any); code != 200 || len(rows) != 1 {
		t.Fatalf("scan: %d %v", code, res)
	}
	code, res = do(t, srv, "GET", "/v1/docs/d/tables/todo/rows/1?at="+v1, "")
	if cols, _ := res["cols"].(map[string]any); code != 200 || cols["title"] != "milk" {
		t.Fatalf("get at %s: %d %v", v1, code, res)
	}
	code, res = do(t, srv, "GET", "/v1/docs/d?at="+v1, "")
	if code != 200 || res["tables"] == nil {
		t.Fatalf("state at: %d %v", code, res)
	}
	code, res = do(t, srv, "GET", "/v1/docs/d/diff?from="+v1, "")
	if cells, _ := res["cells"].([]any); code != 200 || len(cells) == 0 {
		t.Fatalf("diff: %d %v", code, res)
	}
	code, res = do(t, srv, "GET", "/v1/docs/d", "")
	if code != 200 || res["changes"] != 3.0 {
		t.Fatalf("doc info: %d %v", code, res)
	}
	if code, _ = do(t, srv, "DELETE", "/v1/docs/d/tables/todo/rows/2", ""); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ = do(t, srv, "GET", "/v1/docs/d/tables/todo/rows/2", ""); code != 404 {
		t.Fatalf("get deleted row: %d", code)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestAPIBadRequests(t *testing.T) {
	_, srv := apiNode(t)
	for _, tc := range []struct {
		method, path, body string
		code               int
	}{
		{"PUT", "/v1/docs/d/tables/t/rows/1", `{"cols": `, 400},
		{"PUT", "/v1/docs/d/tables/t/rows/1", `{"cols": {"a": [1]}}`, 400},
		{"PUT", "/v1/docs/d/tables/t/rows/1", `{"colz": {}}`, 400},
		{"PUT", "/v1/docs/d/tables/t/rows/1", `{"cols": {"a": "` + strings.Repeat("x", 2000) + `"}}`, 413},
		{"PATCH", "/v1/docs/d/tables/t/rows/1", `{"cols": {}}`, 400},
		{"POST", "/v1/docs/d/tx", `{"ops": [{"op": "upsert", "table": "t", "row": "1"}]}`, 400},
		{"POST", "/v1/docs/d/tx", `{"ops": []}`, 400},
		{"GET", "/v1/docs/d/tables/t?at=zz", "", 400},
		{"GET", "/v1/docs/d/diff?from=" + strings.Repeat("ab", 32), "", 400},
		{"GET", "/v1/nothing", "", 404},
		{"POST", "/v1/docs/d/sync/push", `{"changes": ["AAAA"]}`, 400},
	} {
		code, res := do(t, srv, tc.method, tc.path, tc.body)
		if code != tc.code || res["error"] == nil || res["error"] == "" {
			t.Errorf("%s %s: %d %v, want %d with an error message", tc.method, tc.path, code, res, tc.code)
		}
	}
}

func TestAPINodeMetricsAndFeed(t *testing.T) {
	n, srv := apiNode(t)
	if code, res := do(t, srv, "GET", "/healthz", ""); code != 200 || res["ok"] != true {
		t.Fatalf("healthz: %d %v", code, res)
	}
	if code, res := do(t, srv, "GET", "/v1/node", ""); code != 200 || res["id"] != n.ID().String() {
		t.Fatalf("node: %d %v", code, res)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/docs/d/feed", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	do(t, srv, "PUT", "/v1/docs/d/tables/t/rows/r", `{"cols": {"a": 1}}`)
	do(t, srv, "PUT", "/v1/docs/d/presence/cursor/me", `{"value": 42}`)
	var sawChange, sawPresence bool
	for !sawChange || !sawPresence {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("feed: %v (change %v, presence %v)", err, sawChange, sawPresence)
		}
		var ev FeedEvent
		json.Unmarshal(b, &ev)
		switch ev.Type {
		case "change":
			sawChange = len(ev.Rows) == 1 && ev.Rows[0].Key == "r" && ev.Rows[0].Kind == "inserted"
		case "presence":
			sawPresence = ev.Presence.Namespace == "cursor" && ev.Presence.Value.String() == "42"
		}
	}
	code, res := do(t, srv, "GET", "/metrics", "")
	if raw, _ := res["raw"].(string); code != 200 || !strings.Contains(raw, "convergenode_changes_persisted_total 1") {
		t.Fatalf("metrics: %d %.500s", code, res["raw"])
	}
	if code, _ := do(t, srv, "GET", "/debug/pprof/", ""); code != 200 {
		t.Fatalf("pprof: %d", code)
	}
}

func TestAPINonLoopbackRefused(t *testing.T) {
	c := DefaultTestConfig()
	c.APIAddr = "0.0.0.0:0"
	if _, err := New(context.Background(), c); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("non-loopback API: %v", err)
	}
}

// TestHTTPSync pulls every envelope from one node over HTTP and pushes
// them to another that has no libp2p connection to it.
func TestHTTPSync(t *testing.T) {
	n1, srv1 := apiNodeLimit(t, 1<<20)
	_, srv2 := apiNodeLimit(t, 1<<20)
	d1 := mustDoc(t, n1, "d")
	writeN(t, d1, "r", 5)
	code, res := do(t, srv1, "GET", "/v1/docs/d/sync/pull?since=", "")
	if code != 200 || len(res["changes"].([]any)) != 5 {
		t.Fatalf("pull: %d %v", code, res)
	}
	body, _ := json.Marshal(map[string]any{"changes": res["changes"]})
	code, res = do(t, srv2, "POST", "/v1/docs/d/sync/push", string(body))
	if code != 200 || res["accepted"] != 5.0 {
		t.Fatalf("push: %d %v", code, res)
	}
	waitFor(t, 10*time.Second, "pushed changes applied", func() bool {
		_, res := do(t, srv2, "GET", "/v1/docs/d/tables/t", "")
		rows, _ := res["rows"].([]any)
		return len(rows) == 5
	})
	code, res = do(t, srv1, "GET", "/v1/docs/d/sync/pull?since="+strings.Join(toStrings(res0(t, srv1)), ","), "")
	if code != 200 || len(res["changes"].([]any)) != 0 {
		t.Fatalf("pull since heads: %d %v", code, res)
	}
}

func res0(t *testing.T, srv *httptest.Server) any {
	_, res := do(t, srv, "GET", "/v1/docs/d", "")
	return res["heads"]
}
