package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/convergenode/convergenode/crdt"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The local API. Every route is under /v1 except /healthz, /metrics and
// /debug/pprof/. Errors are {"error": "..."} with a 4xx or 5xx status.
//
//	GET    /healthz
//	GET    /v1/node                                  node info
//	GET    /v1/peers                                 connected peers, scores
//	GET    /v1/alerts                                recent alerts
//	GET    /v1/docs                                  joined documents
//	GET    /v1/docs/{doc}[?at=v]                     info, or the whole state at version v
//	GET    /v1/docs/{doc}/tables/{table}[?at=v]      scan
//	GET    /v1/docs/{doc}/tables/{table}/rows/{row}[?at=v]
//	PUT    /v1/docs/{doc}/tables/{table}/rows/{row}  insert {"cols": {...}}
//	PATCH  /v1/docs/{doc}/tables/{table}/rows/{row}  update {"cols": {...}} (one change)
//	DELETE /v1/docs/{doc}/tables/{table}/rows/{row}  delete
//	POST   /v1/docs/{doc}/tx                         transaction {"ops": [...]}
//	GET    /v1/docs/{doc}/diff?from=v&to=w           cell diff
//	GET    /v1/docs/{doc}/proofs                     equivocation proofs (never dropped)
//	GET    /v1/docs/{doc}/presence                   live ephemeral entries
//	PUT    /v1/docs/{doc}/presence/{ns}/{key}        set {"value": v}
//	GET    /v1/docs/{doc}/feed                       WebSocket: changes and presence
//	GET    /v1/docs/{doc}/sync/pull[?since=v]        envelopes since v (HTTP sync)
//	POST   /v1/docs/{doc}/sync/push                  envelopes in (HTTP sync)
//
// A version v is a comma-separated list of change IDs (hex); "" is the
// empty version.

func (n *Node) startAPI() error {
	host, _, err := net.SplitHostPort(n.cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("node: API address %q: %w", n.cfg.APIAddr, err)
	}
	if ip := net.ParseIP(host); !n.cfg.APIAllowRemote && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("node: API address %q is not loopback (set APIAllowRemote to allow it)", n.cfg.APIAddr)
	}
	ln, err := net.Listen("tcp", n.cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("node: API listen: %w", err)
	}
	n.apiLn = ln
	n.api = &http.Server{Handler: n.Handler(), ReadHeaderTimeout: 10 * time.Second}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.api.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("API server", "err", err)
		}
	}()
	n.log.Info("API listening", "addr", ln.Addr().String())
	return nil
}

// Handler returns the local API as an http.Handler, for embedders that
// serve it on their own listener.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request) error) {
		route := pattern
		if i := strings.IndexByte(route, ' '); i >= 0 {
			route = route[i+1:]
		}
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if r.Body != nil {
				r.Body = http.MaxBytesReader(w, r.Body, n.cfg.MaxBodyBytes)
			}
			err := fn(w, r)
			code := 200
			if err != nil {
				code = writeError(w, err)
			}
			n.met.apiRequests.WithLabelValues(route, fmt.Sprintf("%dxx", code/100)).Inc()
		})
	}
	h("GET /healthz", n.apiHealth)
	h("GET /v1/node", n.apiNode)
	h("GET /v1/peers", func(w http.ResponseWriter, r *http.Request) error { return writeJSON(w, n.Peers()) })
	h("GET /v1/alerts", func(w http.ResponseWriter, r *http.Request) error {
		a := n.Alerts()
		if a == nil {
			a = []Alert{}
		}
		return writeJSON(w, a)
	})
	h("GET /v1/docs", n.apiDocs)
	h("GET /v1/docs/{doc}", n.apiDoc)
	h("GET /v1/docs/{doc}/tables/{table}", n.apiScan)
	h("GET /v1/docs/{doc}/tables/{table}/rows/{row}", n.apiGet)
	h("PUT /v1/docs/{doc}/tables/{table}/rows/{row}", n.apiInsert)
	h("PATCH /v1/docs/{doc}/tables/{table}/rows/{row}", n.apiUpdate)
	h("DELETE /v1/docs/{doc}/tables/{table}/rows/{row}", n.apiDelete)
	h("POST /v1/docs/{doc}/tx", n.apiTx)
	h("GET /v1/docs/{doc}/diff", n.apiDiff)
	h("GET /v1/docs/{doc}/proofs", n.apiProofs)
	h("GET /v1/docs/{doc}/presence", n.apiPresence)
	h("PUT /v1/docs/{doc}/presence/{ns}/{key}", n.apiSetPresence)
	h("GET /v1/docs/{doc}/feed", n.apiFeed)
	h("GET /v1/docs/{doc}/sync/pull", n.apiPull)
	h("POST /v1/docs/{doc}/sync/push", n.apiPush)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{http.StatusNotFound, "no route " + r.Method + " " + r.URL.Path})
	})
	return mux
}

// apiError is an error with an HTTP status.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, err error) int {
	code := http.StatusInternalServerError
	var ae *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		code = ae.code
	case errors.As(err, &mbe):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrStorage):
		code = http.StatusServiceUnavailable
	case errors.Is(err, ErrNodeClosed):
		code = http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		code = http.StatusServiceUnavailable
	default:
		// Validation errors from the crdt/replica layers are the
		// caller's fault (bad names, sizes, values).
		if strings.HasPrefix(err.Error(), "crdt:") || strings.HasPrefix(err.Error(), "replica:") || strings.HasPrefix(err.Error(), "node: bad") || strings.HasPrefix(err.Error(), "node: column") {
			code = http.StatusBadRequest
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
	return code
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("bad JSON body: %v", err)
	}
	if dec.More() {
		return badRequest("bad JSON body: trailing data")
	}
	return nil
}

// ParseVersion parses a comma-separated list of hex change IDs.
func ParseVersion(s string) (crdt.Version, error) {
	var ids []crdt.ID
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		id, err := crdt.ParseID(f)
		if err != nil {
			return nil, badRequest("%v", err)
		}
		ids = append(ids, id)
	}
	return crdt.NewVersion(ids...), nil
}

func (n *Node) apiHealth(w http.ResponseWriter, r *http.Request) error {
	if err := n.Err(); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		return json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": err.Error()})
	}
	return writeJSON(w, map[string]any{"ok": true})
}

// Info describes a node, as GET /v1/node returns it.
type Info struct {
	ID       string   `json:"id"`
	Addrs    []string `json:"addrs"`
	API      string   `json:"api,omitempty"`
	Docs     []string `json:"docs"`
	Peers    int      `json:"peers"`
	Uptime   string   `json:"uptime"`
	Healthy  bool     `json:"healthy"`
	Error    string   `json:"error,omitempty"`
	Version  string   `json:"version"`
	Protocol string   `json:"protocol"`
}

// Info returns the node's description.
func (n *Node) Info() Info {
	in := Info{
		ID: n.host.ID().String(), Addrs: n.Addrs(), API: n.APIAddr(), Docs: n.DocIDs(),
		Peers: len(n.host.Network().Peers()), Uptime: time.Since(n.start).Round(time.Second).String(),
		Healthy: true, Version: Version, Protocol: string(SyncProtocol),
	}
	if in.Docs == nil {
		in.Docs = []string{}
	}
	if err := n.Err(); err != nil {
		in.Healthy, in.Error = false, err.Error()
	}
	return in
}

// Version is the node's software version.
const Version = "0.1.0"

func (n *Node) apiNode(w http.ResponseWriter, r *http.Request) error { return writeJSON(w, n.Info()) }

// DocInfo describes a document, as GET /v1/docs/{doc} returns it.
type DocInfo struct {
	ID        string   `json:"id"`
	Heads     []string `json:"heads"`
	Changes   int      `json:"changes"`
	Tables    []string `json:"tables"`
	StateHash string   `json:"state_hash"`
	CatchUp   CatchUp  `json:"catch_up"`
}

func (d *Doc) info() DocInfo {
	d.mu.Lock()
	cd := d.e.Doc()
	t := cd.Tables()
	if t == nil {
		t = []string{}
	}
	info := DocInfo{ID: d.id, Heads: versionJSON(cd.Heads()), Changes: cd.Graph().Len(), Tables: t, StateHash: fmt.Sprintf("%x", cd.StateHash())}
	d.mu.Unlock()
	info.CatchUp = d.CatchUp()
	return info
}

func (n *Node) apiDocs(w http.ResponseWriter, r *http.Request) error {
	out := []DocInfo{}
	for _, id := range n.DocIDs() {
		if d := n.lookupDoc(id); d != nil {
			out = append(out, d.info())
		}
	}
	return writeJSON(w, out)
}

func (n *Node) reqDoc(r *http.Request) (*Doc, error) {
	id := r.PathValue("doc")
	if id == "" || len(id) > crdt.MaxDocIDLen {
		return nil, badRequest("bad document ID %q", id)
	}
	return n.Doc(r.Context(), id)
}

// view returns the document, or its state at ?at=, for reads.
func (n *Node) view(r *http.Request) (*Doc, *crdt.Doc, error) {
	d, err := n.reqDoc(r)
	if err != nil {
		return nil, nil, err
	}
	if !r.URL.Query().Has("at") {
		return d, nil, nil
	}
	v, err := ParseVersion(r.URL.Query().Get("at"))
	if err != nil {
		return nil, nil, err
	}
	at, err := d.At(v)
	if err != nil {
		return nil, nil, badRequest("state at %v: %v", v, err)
	}
	return d, at, nil
}

func (n *Node) apiDoc(w http.ResponseWriter, r *http.Request) error {
	d, at, err := n.view(r)
	if err != nil {
		return err
	}
	if at == nil {
		return writeJSON(w, d.info())
	}
	tables := map[string][]JSONRow{}
	for _, t := range at.Tables() {
		tables[t] = rowsJSON(at.Scan(t))
	}
	return writeJSON(w, map[string]any{"id": d.id, "heads": versionJSON(at.Heads()), "tables": tables})
}

func (n *Node) apiScan(w http.ResponseWriter, r *http.Request) error {
	d, at, err := n.view(r)
	if err != nil {
		return err
	}
	var rows []crdt.Row
	if at != nil {
		rows = at.Scan(r.PathValue("table"))
	} else {
		rows = d.Scan(r.PathValue("table"))
	}
	return writeJSON(w, map[string]any{"rows": rowsJSON(rows)})
}

func (n *Node) apiGet(w http.ResponseWriter, r *http.Request) error {
	d, at, err := n.view(r)
	if err != nil {
		return err
	}
	t, k := r.PathValue("table"), r.PathValue("row")
	var row crdt.Row
	var ok bool
	if at != nil {
		row, ok = at.Get(t, k)
	} else {
		row, ok = d.Get(t, k)
	}
	if !ok {
		return &apiError{http.StatusNotFound, fmt.Sprintf("no row %s/%s in document %s", t, k, d.id)}
	}
	return writeJSON(w, rowJSON(row))
}

type colsBody struct {
	Cols map[string]JSONValue `json:"cols"`
}

func plainCols(in map[string]JSONValue) Cols {
	out := make(Cols, len(in))
	for k, v := range in {
		out[k] = v.Value
	}
	return out
}

func (n *Node) written(w http.ResponseWriter, d *Doc) error {
	return writeJSON(w, map[string]any{"ok": true, "heads": versionJSON(d.Heads())})
}

func (n *Node) apiInsert(w http.ResponseWriter, r *http.Request) error {
	d, err := n.reqDoc(r)
	if err != nil {
		return err
	}
	var b colsBody
	if err := readJSON(r, &b); err != nil {
		return err
	}
	if err := d.Insert(r.Context(), r.PathValue("table"), r.PathValue("row"), plainCols(b.Cols)); err != nil {
		return err
	}
	return n.written(w, d)
}

func (n *Node) apiUpdate(w http.ResponseWriter, r *http.Request) error {
	d, err := n.reqDoc(r)
	if err != nil {
		return err
	}
	var b colsBody
	if err := readJSON(r, &b); err != nil {
		return err
	}
	if len(b.Cols) == 0 {
		return badRequest("update needs at least one column in \"cols\"")
	}
	t, k := r.PathValue("table"), r.PathValue("row")
	err = d.Change(r.Context(), func(tx *Tx) error {
		for c, v := range b.Cols {
			tx.Update(t, k, c, v.Value)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return n.written(w, d)
}

func (n *Node) apiDelete(w http.ResponseWriter, r *http.Request) error {
	d, err := n.reqDoc(r)
	if err != nil {
		return err
	}
	if err := d.Delete(r.Context(), r.PathValue("table"), r.PathValue("row")); err != nil {
		return err
	}
	return n.written(w, d)
}

// TxOp is one op of a POST /v1/docs/{doc}/tx body.
type TxOp struct {
	Op    string               `json:"op"` // insert, update or delete
	Table string               `json:"table"`
	Row   string               `json:"row"`
	Cols  map[string]JSONValue `json:"cols,omitempty"`
}

func (n *Node) apiTx(w http.ResponseWriter, r *http.Request) error {
	d, err := n.reqDoc(r)
	if err != nil {
		return err
	}
	var b struct {
		Ops []TxOp `json:"ops"`
	}
	if err := readJSON(r, &b); err != nil {
		return err
	}
	if len(b.Ops) == 0 {
		return badRequest("transaction has no ops")
	}
	err = d.Change(r.Context(), func(tx *Tx) error {
		for i, op := range b.Ops {
			switch op.Op {
			case "insert":
				tx.Insert(op.Table, op.Row, plainCols(op.Cols))
			case "update":
				if len(op.Cols) == 0 {
					return badRequest("op %d: update needs cols", i)
				}
				for c, v := range op.Cols {
					tx.Update(op.Table, op.Row, c, v.Value)
				}
			case "delete":
				tx.Delete(op.Table, op.Row)
			default:
				return badRequest("op %d: unknown op %q (want insert, update or delete)", i, op.Op)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return n.written(w, d)
}

func (n *Node) apiDiff(w http.ResponseWriter, r *http.Request) error {
	d, err := n.reqDoc(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	from, err := ParseVersion(q.Get("from"))
	if err != nil {
		return err
	}
	to := d.Heads()
	if q.Has("to") {
		if to, err = ParseVersion(q.Get("to")); err != nil {
			return err
		}
	}
	diffs, err := d.Diff(from, to)
	if err != nil {
		return badRequest("diff: %v", err)
	}
	type cell struct {
		Table string     `json:"table"`
		Row   string     `json:"row"`
		Col   string     `json:"col"`
		Old   *JSONValue `json:"old,omitempty"`
		New   *JSONValue `json:"new,omitempty"`
	}
	out := make([]cell, 0, len(diffs))
	for _, c := range diffs {
		x := cell{Table: c.Table, Row: c.Row, Col: c.Col}
		if c.OldSet {
			x.Old = &JSONValue{c.Old}
		}
		if c.NewSet {
			x.New = &JSONValue{c.New}
		}
		out = append(out, x)
	}
	return writeJSON(w, map[string]any{"from": versionJSON(from), "to": versionJSON(to), "cells": out})
}

// PresenceJSON is a presence entry or event in JSON.
type PresenceJSON struct {
	Namespace string    `json:"namespace"`
	Key       string    `json:"key"`
	Value     JSONValue `json:"value"`
	Author    string    `json:"author"`
	Updated   time.Time `json:"updated"`
	Removed   bool      `json:"removed,omitempty"`
}

func toPresenceJSON(e PresenceEntry, removed bool) PresenceJSON {
	return PresenceJSON{Namespace: e.Namespace, Key: e.Key, Value: JSONValue{e.Value}, Author: e.Author, Updated: e.Updated, Removed: removed}
}

func (n *Node) apiPresence(w http.ResponseWriter, r *http.Request) error {
	d, err := n.reqDoc(r)
	if err != nil {
		return err
	}
	out := []PresenceJSON{}
	for _, e := range (&Presence{d: d}).List() {
		out = append(out, toPresenceJSON(e, false))
	}
	return writeJSON(w, out)
}

func (n *Node) apiSetPresence(w http.ResponseWriter, r *http.Request) error {
	d, err := n.reqDoc(r)
	if err != nil {
		return err
	}
	var b struct {
		Value JSONValue `json:"value"`
	}
	if err := readJSON(r, &b); err != nil {
		return err
	}
	if err := (&Presence{d: d}).Set(r.Context(), r.PathValue("ns"), r.PathValue("key"), b.Value.Value); err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"ok": true})
}

// FeedEvent is one WebSocket feed message.
type FeedEvent struct {
	Type     string        `json:"type"` // "change" or "presence"
	Doc      string        `json:"doc"`
	Change   string        `json:"change,omitempty"` // change ID
	Author   string        `json:"author,omitempty"`
	Rows     []FeedRow     `json:"rows,omitempty"`
	Presence *PresenceJSON `json:"presence,omitempty"`
}

// FeedRow is a row a change touched.
type FeedRow struct {
	Table string               `json:"table"`
	Key   string               `json:"key"`
	Kind  string               `json:"kind"` // inserted, updated, deleted
	Cols  map[string]JSONValue `json:"cols,omitempty"`
}

func changeFeedEvent(doc string, ev crdt.ChangeEvent) FeedEvent {
	fe := FeedEvent{Type: "change", Doc: doc, Change: ev.ID.String()}
	if ev.Change != nil {
		fe.Author = ev.Change.Author.String()
	}
	for _, rc := range ev.Rows {
		fr := FeedRow{Table: rc.Table, Key: rc.Key, Kind: rc.Kind.String()}
		if rc.Cols != nil {
			fr.Cols = map[string]JSONValue{}
			for _, c := range rc.Cols {
				fr.Cols[c.Name] = JSONValue{c.Value}
			}
		}
		fe.Rows = append(fe.Rows, fr)
	}
	return fe
}

func (n *Node) apiFeed(w http.ResponseWriter, r *http.Request) error {
	d, err := n.reqDoc(r)
	if err != nil {
		return err
	}
	// Subscribe before the handshake so that a client sees every change
	// made after its Dial returns.
	events := make(chan FeedEvent, 4096)
	overflow := make(chan struct{})
	var closed bool
	push := func(fe FeedEvent) {
		if closed {
			return
		}
		select {
		case events <- fe:
		default:
			closed = true
			close(overflow)
		}
	}
	cancel1 := d.Subscribe(func(ev crdt.ChangeEvent) { push(changeFeedEvent(d.id, ev)) })
	cancel2 := (&Presence{d: d}).Watch(func(ev PresenceEvent) {
		pj := toPresenceJSON(ev.PresenceEntry, ev.Removed)
		push(FeedEvent{Type: "presence", Doc: d.id, Presence: &pj})
	})
	defer cancel1()
	defer cancel2()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return nil // Accept wrote the response
	}
	defer c.CloseNow()
	ctx := c.CloseRead(r.Context())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-n.ctx.Done():
			c.Close(websocket.StatusGoingAway, "node shutting down")
			return nil
		case <-overflow:
			c.Close(websocket.StatusPolicyViolation, "feed consumer too slow")
			return nil
		case fe := <-events:
			b, err := json.Marshal(fe)
			if err != nil {
				return nil
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = c.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				return nil
			}
		}
	}
}
