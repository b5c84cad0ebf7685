package bft

import "testing"

// TestTwoGen: entries survive one rotation and are dropped by the second;
// the map never holds more than its bound; an existing entry is not
// replaced; a lookup that valid refuses is a miss.
func TestTwoGen(t *testing.T) {
	g := newTwoGen[int, int](4, false) // two generations of 2
	for k := range 10 {
		g.add(k, k*10)
		if _, _, n := g.stats(); n > 4 {
			t.Fatalf("after %d adds: %d entries, bound 4", k+1, n)
		}
	}
	// cur = {8, 9}, old = {6, 7}.
	for k := range 10 {
		_, ok := g.get(k, nil)
		if want := k >= 6; ok != want {
			t.Fatalf("get(%d) = %v, want %v", k, ok, want)
		}
	}
	g.add(9, -1)
	if v, _ := g.get(9, nil); v != 90 {
		t.Fatalf("add replaced an entry: %d", v)
	}
	if _, ok := g.get(8, func(v int) bool { return v != 80 }); ok {
		t.Fatal("get accepted a value valid refused")
	}
	if h, m, n := g.stats(); h != 5 || m != 7 || n != 4 {
		t.Fatalf("stats %d hits, %d misses, %d entries; want 5, 7, 4", h, m, n)
	}
}
