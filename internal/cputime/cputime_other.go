//go:build !unix

// Package cputime reads the CPU time the process has used, for benchmarks
// that report it next to wall time: on a shared machine the wall time
// includes waiting for a core.
package cputime

import "time"

// Process is not measured on this platform: it returns 0.
func Process() time.Duration { return 0 }
