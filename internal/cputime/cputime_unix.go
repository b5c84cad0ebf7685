//go:build unix

// Package cputime reads the CPU time the process has used, for benchmarks
// that report it next to wall time: on a shared machine the wall time
// includes waiting for a core.
package cputime

import (
	"syscall"
	"time"
)

// Process returns the CPU time (user and system, all threads) the process
// has used so far.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
