//go:build amd64 || arm64

package prefetch

import "unsafe"

// Line starts loading the cache line that holds the byte at p.
//
//go:noescape
func Line(p unsafe.Pointer)

// Lines starts loading the cache lines that hold the n bytes from p
// (the line of p when n is 0).
//
//go:noescape
func Lines(p unsafe.Pointer, n uintptr)
