package crdt

import "github.com/convergenode/convergenode/internal/prefetch"

// The Prefetch methods start loading into the CPU's caches what applying
// a change will read, and change nothing (see package
// internal/prefetch). They run in stages: stage 0 reads only the
// receiver's own fields, and each later stage reads what the one before
// loaded, so a caller that hosts many documents (a simulation's replicas)
// runs them one after another, some time apart, ahead of the input.

// GraphPrefetchStages is how many stages Graph.Prefetch has.
const GraphPrefetchStages = 2

// Prefetch runs stage st of loading what adding the change id (c, if not
// nil) reads (id may be nil: then only what every change reads): the
// index slots of id and of c's parents, where the node arrays grow, the
// heads; then the parents' nodes.
func (g *Graph) Prefetch(st int, id *ID, c *Change) {
	switch st {
	case 0:
		if id != nil {
			g.index.Prefetch(id)
		}
		if c != nil {
			for k := range c.Parents {
				g.index.Prefetch(&c.Parents[k])
			}
		}
		if n := len(g.chunks); n > 0 {
			prefetch.Of(&g.chunks[n-1])
		}
		prefetch.Next(g.parents)
		prefetch.Slice(g.heads)
	case 1:
		if n := len(g.chunks); n > 0 {
			prefetch.Next(g.chunks[n-1])
		}
		if c != nil {
			for k := range c.Parents {
				if i, ok := g.index.Candidate(&c.Parents[k]); ok && int(i) < g.n {
					prefetch.Of(g.node(i))
				}
			}
		}
	}
}

// DocPrefetchStages is how many stages Doc.Prefetch has.
const DocPrefetchStages = 2

// Prefetch runs stage st of loading what applying c (nil: not known)
// reads beyond the graph: the table the last change wrote and where the
// next row's cells go; then that table's row slots for c's rows and where
// its next row goes.
func (d *Doc) Prefetch(st int, c *Change) {
	t := d.lastTable
	if t == nil {
		return
	}
	switch st {
	case 0:
		prefetch.All(t)
		prefetch.Next(d.cellSlab)
	case 1:
		t.rows.rows.PrefetchNext()
		if c != nil {
			for k := range c.Ops {
				if o := &c.Ops[k]; o.Table == t.name {
					t.rows.slots.Prefetch(rowHash(o.Row))
				}
			}
		}
	}
}
