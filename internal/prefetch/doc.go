// Package prefetch asks the CPU to start loading memory into its caches
// before a program reads it.
//
// A simulation of many thousands of replicas handles each input on a
// replica whose state has left the cache since its last input, and spends
// most of its time waiting for those reads (docs/benchmarks.md). The
// simulator knows which replicas its next events go to, so it can have
// their state on the way while it handles the current event.
//
// A prefetch is only a hint: it never faults, changes no memory and no
// result, and any address is allowed. On amd64 and arm64 it is one
// instruction (PREFETCHT0, PRFM PLDL1KEEP); elsewhere the functions do
// nothing.
package prefetch
