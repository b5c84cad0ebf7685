//go:build linux && (amd64 || arm64)

package thp

import (
	"bufio"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// vmFlags returns the VmFlags of the mapping that holds address a.
func vmFlags(t *testing.T, a uintptr) string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 {
			in = lo <= a && a < hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return line
		}
	}
	t.Fatalf("no mapping holds %#x", a)
	return ""
}

// TestStartAdvisesHeap: after Start, the heap's mappings carry the huge
// page advice ("hg" in VmFlags), those mapped at once (the first GiB) and
// those mapped later (a large allocation past it, caught by the ticker).
func TestStartAdvisesHeap(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skip("kernel without transparent huge pages")
	}
	stop := Start(10*time.Millisecond, 0)
	defer stop()
	small := make([]byte, 1<<20)
	// Larger than the first GiB, free again after Start: the heap maps
	// new arenas for it (fresh memory, which the allocation does not touch).
	big := make([]byte, 3<<29)
	for _, b := range [][]byte{small, big} {
		a := uintptr(unsafe.Pointer(&b[len(b)-1]))
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(vmFlags(t, a), " hg") {
			if time.Now().After(deadline) {
				t.Fatalf("mapping of %#x not advised: %s", a, vmFlags(t, a))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	stop()
	stop() // idempotent
}

// The ballast is what the program expects, within bounds: at least 1 GiB,
// at most the memory limit and half the machine's memory.
func TestBallastSize(t *testing.T) {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		t.Skip(err)
	}
	half := si.Totalram * uint64(si.Unit) / 2
	if got := ballastSize(0); got != min(minBallast, half) {
		t.Fatalf("ballastSize(0) = %d", got)
	}
	if got := ballastSize(1 << 50); got != half {
		t.Fatalf("ballastSize(1 PiB) = %d, want half the memory, %d", got, half)
	}
	old := debug.SetMemoryLimit(3 << 29)
	defer debug.SetMemoryLimit(old)
	if got := ballastSize(1 << 50); got != min(3<<29, half) {
		t.Fatalf("ballastSize under a 1.5 GiB limit = %d", got)
	}
	if got := ballastSize(5 << 29); got != min(3<<29, half) {
		t.Fatalf("ballastSize(2.5 GiB) under a 1.5 GiB limit = %d", got)
	}
}
