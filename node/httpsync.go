package node

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/convergenode/convergenode/replica"
)

// The HTTP sync endpoints serve clients that do not speak libp2p (a
// browser, a script): they pull the signed envelopes they lack and push
// envelopes they made. Envelopes travel base64-encoded in JSON, exactly as
// bft.Envelope.Encode makes them; the node checks pushed ones like any
// gossip (stage 1 here, the gate in the replica).

// maxPull is the most envelopes one pull returns.
const maxPull = 4096

// PullResponse is the answer of GET /v1/docs/{doc}/sync/pull.
type PullResponse struct {
	Heads      []string `json:"heads"`   // the node's version now
	Changes    []string `json:"changes"` // base64 envelopes, causal order
	NextOffset int      `json:"next_offset,omitempty"`
	More       bool     `json:"more"` // pull again with offset=next_offset
}

// apiPull returns the envelopes not in the causal past of ?since= (a
// version), at most maxPull from ?offset=.
func (n *Node) apiPull(w http.ResponseWriter, r *http.Request) error {
	d, err := n.reqDoc(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	since, err := ParseVersion(q.Get("since"))
	if err != nil {
		return err
	}
	off := 0
	if s := q.Get("offset"); s != "" {
		if off, err = strconv.Atoi(s); err != nil || off < 0 {
			return badRequest("bad offset %q", s)
		}
	}
	d.mu.Lock()
	cd := d.e.Doc()
	ids := cd.Graph().Since(since)
	resp := PullResponse{Heads: versionJSON(cd.Heads()), Changes: []string{}}
	if off < len(ids) {
		end := min(len(ids), off+maxPull)
		for _, id := range ids[off:end] {
			if env, ok := d.e.Envelope(id); ok {
				resp.Changes = append(resp.Changes, base64.StdEncoding.EncodeToString(env))
			}
		}
		if end < len(ids) {
			resp.More, resp.NextOffset = true, end
		}
	}
	d.mu.Unlock()
	return writeJSON(w, resp)
}

// PushRequest is the body of POST /v1/docs/{doc}/sync/push.
type PushRequest struct {
	Changes []string `json:"changes"` // base64 envelopes, any order
}

// PushResponse reports what the stateless check made of each envelope.
type PushResponse struct {
	Accepted int            `json:"accepted"` // passed stage 1, handed to the replica and gossiped
	Rejected []PushRejected `json:"rejected"`
	Error    string         `json:"error,omitempty"` // set when nothing was accepted
}

// PushRejected is one refused envelope.
type PushRejected struct {
	Index  int    `json:"index"`
	Reason string `json:"reason"`
}

func (n *Node) apiPush(w http.ResponseWriter, r *http.Request) error {
	d, err := n.reqDoc(r)
	if err != nil {
		return err
	}
	var req PushRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	resp := PushResponse{Rejected: []PushRejected{}}
	from := "http:" + r.RemoteAddr
	for i, s := range req.Changes {
		env, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			resp.Rejected = append(resp.Rejected, PushRejected{i, "bad base64"})
			continue
		}
		msg, err := replica.EncodeMessage(&replica.Message{Type: replica.MsgChange, Items: [][]byte{env}})
		if err != nil {
			resp.Rejected = append(resp.Rejected, PushRejected{i, err.Error()})
			continue
		}
		if v := n.core.validate(d.id, topicChanges, msg, n.caches); v != verdictAccept {
			resp.Rejected = append(resp.Rejected, PushRejected{i, "refused by the stateless check (size, encoding, document, ID or signature)"})
			continue
		}
		if !d.deliver(r.Context(), inMsg{from: from, data: msg}) {
			return context.Canceled
		}
		// Relay it like gossip: the stateless check passed, and every
		// receiver's gate does the stateful checks.
		if err := d.g.topics[topicChanges].Publish(r.Context(), msg); err != nil {
			n.log.Debug("push: publish", "doc", d.id, "err", err)
		}
		resp.Accepted++
	}
	if len(resp.Rejected) > 0 && resp.Accepted == 0 {
		resp.Error = "no envelope accepted: " + resp.Rejected[0].Reason
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
	}
	return writeJSON(w, resp)
}
