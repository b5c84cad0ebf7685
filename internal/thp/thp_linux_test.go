//go:build linux && (amd64 || arm64)

package thp

import (
	"bufio"
	"fmt"
	"os"
	"strings"
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
	stop := Start(10 * time.Millisecond)
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
