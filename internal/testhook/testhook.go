// Package testhook holds switches that tests flip to check that a fast
// path changes nothing observable: the same run with the fast path on and
// off must give the same result. Production code only reads them.
package testhook

import "sync/atomic"

// FullTicks, when set, makes every replica run each Tick in full instead
// of returning at once from a tick that has nothing to do (see
// replica.Replica.Tick).
var FullTicks atomic.Bool
