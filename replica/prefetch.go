package replica

import (
	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/internal/prefetch"
)

// PrefetchStages is how many stages Prefetch has.
const PrefetchStages = 1 + bft.GatePrefetchStages

// Prefetch starts loading into the CPU's caches the state the replica's
// next input will read, and changes nothing else: a hint for a program
// that hosts so many replicas that each one's state has left the cache by
// its next input, such as the simulator, which knows which replicas its
// next events go to. Each stage reads only what the stage before loaded
// (stage 0 reads nothing), so a caller runs stage 0 for an input some
// time before it handles it, stage 1 a little later, and so on up to
// PrefetchStages-1; a stage run early only loads less, and skipping
// stages loads less. data is the input message, or nil: a gossiped change
// is followed into the gate, the graph and the document (when the
// replica's envelope cache holds it).
func (r *Replica) Prefetch(stage int, data []byte) {
	if stage == 0 {
		prefetch.Span(r, &r.rd) // the fields every input reads
		return
	}
	var env *bft.Envelope
	if stage >= 2 {
		if it, ok := changeItem(data); ok {
			env, _ = r.envCache.Lookup(r.docID, it)
		}
	}
	r.gate.Prefetch(stage-1, env)
	if stage == 1 {
		prefetch.All(r.doc)
		prefetch.Next(r.envs)
	} else if env != nil && stage-2 < crdt.DocPrefetchStages {
		r.doc.Prefetch(stage-2, env.Change)
	}
}
