//go:build !amd64 && !arm64

package prefetch

import "unsafe"

// Line starts loading the cache line that holds the byte at p. On this
// architecture it does nothing.
func Line(p unsafe.Pointer) {}

// Lines starts loading the cache lines that hold the n bytes from p. On
// this architecture it does nothing.
func Lines(p unsafe.Pointer, n uintptr) {}
