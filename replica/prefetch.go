package replica

import (
	"unsafe"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/internal/prefetch"
)

// PrefetchStages is how many stages Prefetch has.
const PrefetchStages = 2 + bft.GatePrefetchStages

// hotBytes is the size of the fields at the start of Replica that every
// input reads (up to and including rd).
const hotBytes = unsafe.Offsetof(Replica{}.rd) + unsafe.Sizeof(Ready{})

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
	switch stage {
	case 0:
		prefetch.Lines(unsafe.Pointer(r), hotBytes)
		return
	case 1:
		prefetch.Lines(unsafe.Pointer(r.gate), 128)
		prefetch.All(r.doc)
		if n := len(r.envs); n < cap(r.envs) {
			prefetch.Line(unsafe.Pointer(unsafe.SliceData(r.envs[n:])))
		}
		return
	}
	var env *bft.Envelope
	if it, ok := changeItem(data); ok {
		env, _ = r.envCache.Lookup(r.docID, it)
	}
	r.gate.Prefetch(stage-2, env)
	if stage-2 < 2 && env != nil {
		r.doc.Prefetch(stage-2, env.Change)
	}
}
