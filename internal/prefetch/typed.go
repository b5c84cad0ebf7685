package prefetch

import "unsafe"

// Of starts loading the cache line that holds the start of *p (p may be
// nil).
func Of[T any](p *T) { Line(unsafe.Pointer(p)) }

// All starts loading the cache lines that hold all of *p (p may be nil).
func All[T any](p *T) { Lines(unsafe.Pointer(p), unsafe.Sizeof(*p)) }

// Span starts loading the cache lines from the start of *p to the end of
// *f, a field of *p (the fields a caller reads first, put first).
func Span[T, F any](p *T, f *F) {
	Lines(unsafe.Pointer(p), uintptr(unsafe.Pointer(f))-uintptr(unsafe.Pointer(p))+unsafe.Sizeof(*f))
}
