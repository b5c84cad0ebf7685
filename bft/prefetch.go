package bft

import (
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/internal/prefetch"
)

// GatePrefetchStages is how many stages Gate.Prefetch has.
const GatePrefetchStages = 2 + crdt.GraphPrefetchStages

// Prefetch starts loading into the CPU's caches what receiving env reads
// (env may be nil: then only what every change reads), and changes
// nothing. It runs in stages, as crdt.Graph.Prefetch does: stage 0 loads
// the gate's first fields (those every change reads, up to the writers),
// stage 1 the graph's header and env's author's slot in the author index;
// the later stages are the graph's, and the author's index entry.
func (g *Gate) Prefetch(st int, env *Envelope) {
	var c *crdt.Change
	if env != nil {
		c = env.Change
	}
	switch st {
	case 0:
		prefetch.Span(g, &g.writers)
		return
	case 1:
		prefetch.All(g.graph)
		if c != nil {
			g.authors.keys.Prefetch(&c.Author)
		}
		return
	case 2:
		if c != nil {
			if k, ok := g.authors.keys.Candidate(&c.Author); ok && int(k) < len(g.authors.ix) {
				prefetch.Of(&g.authors.ix[k])
			}
		}
	}
	if env != nil {
		g.graph.Prefetch(st-2, &env.ID, c)
	} else {
		g.graph.Prefetch(st-2, nil, nil)
	}
}

// Lookup returns the envelope the cache holds for the bytes b, if any,
// without counting a hit or a miss: a hint for prefetching (see
// Gate.Prefetch), never a verdict. Use Check to receive b.
func (c *EnvCache) Lookup(docID string, b []byte) (*Envelope, bool) {
	if c == nil {
		return nil, false
	}
	id, ok := PeekID(b)
	if !ok {
		return nil, false
	}
	return c.m.peek(id, func(e *Envelope) bool { return string(e.wire) == string(b) && e.Change.Doc == docID })
}
