// Package thp asks the operating system to back the Go heap with
// transparent huge pages, for programs whose heap is large and read at
// random: the simulator at tens of thousands of nodes keeps gigabytes of
// replica state and touches a little of it on every event, so with 4 KiB
// pages much of its time goes to TLB misses and to page faults.
//
// Linux backs anonymous memory with 2 MiB pages where the process asks for
// them (madvise MADV_HUGEPAGE) when transparent huge pages are in
// "madvise" mode, the default of many distributions; in "always" mode it
// does so anyway, and in "never" mode not at all. The Go runtime does not
// ask (since Go 1.21.1), so Start does, for the heap's address range, and
// again at an interval for the arenas the heap maps as it grows. It changes
// no result of the program, only where its memory lives. On other systems
// Start does nothing.
package thp
