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

// Next starts loading where the next append to s goes, if s has room for
// it (an append past the capacity allocates elsewhere).
func Next[T any](s []T) {
	if n := len(s); n < cap(s) {
		Of(&s[:n+1][n])
	}
}

// Slice starts loading the cache lines that hold s's elements.
func Slice[T any](s []T) {
	if len(s) > 0 {
		Lines(unsafe.Pointer(&s[0]), uintptr(len(s))*unsafe.Sizeof(s[0]))
	}
}
