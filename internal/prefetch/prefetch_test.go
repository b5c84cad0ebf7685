package prefetch

import (
	"testing"
	"unsafe"
)

// A prefetch is a hint: it changes no memory, and any address is allowed,
// even nil or past the end of an object.
func TestPrefetchChangesNothing(t *testing.T) {
	b := make([]byte, 1000)
	for i := range b {
		b[i] = byte(i)
	}
	Line(unsafe.Pointer(&b[0]))
	Lines(unsafe.Pointer(&b[0]), uintptr(len(b)))
	Lines(unsafe.Pointer(&b[10]), 0)
	Line(nil)
	Lines(nil, 4096)
	var x struct {
		a [100]byte
		b int
	}
	Of(&x)
	All(&x)
	Span(&x, &x.b)
	Of[int](nil)
	Next(b[:10])
	Next(b) // full: nothing to load
	Next([]int(nil))
	Slice(b[:0]) // empty
	Slice(b)
	if x.b != 0 || x.a[99] != 0 {
		t.Fatal("a prefetch wrote")
	}
	for i := range b {
		if b[i] != byte(i) {
			t.Fatalf("b[%d] = %d", i, b[i])
		}
	}
}

func BenchmarkLines(b *testing.B) {
	buf := make([]byte, 1<<20)
	for i := 0; b.Loop(); i++ {
		Lines(unsafe.Pointer(&buf[(i*4096)%len(buf)]), 256)
	}
}
