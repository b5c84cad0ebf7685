package chaos

import "os"

// long reports whether the long suite runs (make chaos sets
// CONVERGENODE_CHAOS_LONG=1).
func long() bool { return os.Getenv("CONVERGENODE_CHAOS_LONG") != "" }
