//go:build linux && (amd64 || arm64)

package thp

import (
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// The Go runtime maps the heap in 64 MiB arenas, upward from a base it
// chooses at start (randomly, since Go 1.26): Start finds the base from
// the address of a heap object allocated at once, and advises the 1 TiB
// above it. Any other mapping in that range is anonymous memory of the
// process too, for which the advice is as harmless.
const (
	arenaSize  = 64 << 20
	heapSpan   = 1 << 40
	minBallast = 1 << 30
)

var (
	initOnce sync.Once
	heapBase uintptr   // the start of the advised range, set by the first Start
	sink     *[64]byte // the heap object whose address gives heapBase
)

// Start advises the heap's address range now and every interval (at least
// 10 ms) until stop is called; the later calls cover the arenas mapped
// since. Call it early, while the heap is one arena. reserve is how many
// bytes of heap the program expects to use at most: the first Start has
// the heap map that much at once (at least 1 GiB, at most half the
// machine's memory and the Go memory limit), advised before any of it is
// touched.
func Start(interval time.Duration, reserve uint64) (stop func()) {
	initOnce.Do(func() {
		sink = new([64]byte)
		heapBase = uintptr(unsafe.Pointer(sink)) &^ (arenaSize - 1)
		// A page faulted before the advice keeps its 2 MiB region in small
		// pages (until khugepaged, which is slow, collapses it), and the
		// heap grows faster than a ticker catches new arenas: at start (a
		// simulation builds its nodes), and whenever a burst of work
		// allocates (a 100,000-node run ended with half its heap in small
		// pages when only the first GiB was mapped ahead). So map the heap
		// the program expects now: a large allocation is mapped but not
		// touched (fresh memory is zero already), and advised before any
		// of it is used. Once freed, the heap reuses it.
		ballast := make([]byte, ballastSize(reserve))
		advise()
		runtime.KeepAlive(ballast)
		// Free it now, so that the collector's next goal is not set by it.
		runtime.GC()
	})
	advise()
	done := make(chan struct{})
	var once sync.Once
	go func() {
		t := time.NewTicker(max(interval, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				advise()
			}
		}
	}()
	return func() { once.Do(func() { close(done) }) }
}

// ballastSize bounds reserve: at least minBallast, at most half the
// machine's memory (a larger allocation could fail outright, even
// untouched) and the memory limit.
func ballastSize(reserve uint64) uint64 {
	b := max(reserve, minBallast)
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil && si.Totalram > 0 {
		b = min(b, si.Totalram*uint64(si.Unit)/2)
	}
	if lim := debug.SetMemoryLimit(-1); lim > 0 && lim < math.MaxInt64 {
		b = min(b, uint64(lim))
	}
	return b
}

// advise marks the heap's range MADV_HUGEPAGE. The range has holes (not
// yet mapped), for which the kernel reports ENOMEM after advising every
// mapping in it; other errors (a kernel without transparent huge pages)
// mean there is nothing to do either.
func advise() {
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, heapBase, heapSpan, syscall.MADV_HUGEPAGE)
}
