package crdt

// Protocol limits. They are part of the protocol, not configuration: every
// honest node must accept and refuse exactly the same changes, so these are
// constants. Decode refuses anything over them; Encode refuses to produce it.
const (
	MaxChangeSize = 1 << 20  // bytes in one encoded change
	MaxOps        = 4096     // ops in one change
	MaxParents    = 64       // parents of one change
	MaxCols       = 256      // columns in one insert
	MaxDocIDLen   = 256      // bytes in a document ID
	MaxNameLen    = 256      // bytes in a table or column name
	MaxRowLen     = 1024     // bytes in a row key
	MaxValueLen   = 64 << 10 // bytes in a string or bytes value
	// MaxLamport bounds Lamport times (and sequence numbers) so that
	// Lamport+len(Ops) can never overflow. A change whose last op would
	// pass it is invalid.
	MaxLamport = 1 << 62
)
