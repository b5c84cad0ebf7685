package prefetch

import "unsafe"

// Of starts loading the cache line that holds the start of *p (p may be
// nil).
func Of[T any](p *T) { Line(unsafe.Pointer(p)) }

// All starts loading the cache lines that hold all of *p (p may be nil).
func All[T any](p *T) { Lines(unsafe.Pointer(p), unsafe.Sizeof(*p)) }
