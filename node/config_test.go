package node

import "testing"

func TestConfigGossipD(t *testing.T) {
	c := DefaultTestConfig()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.GossipD != DefaultGossipD {
		t.Fatalf("GossipD = %d, want the default %d", c.GossipD, DefaultGossipD)
	}
	p := gossipParams(c.GossipD)
	if p.D != 4 || p.Dlo != 3 || p.Dhi != 8 || p.Dout != 1 {
		t.Fatalf("mesh parameters for D=4: %+v", p)
	}
	c = DefaultTestConfig()
	c.GossipD = 1
	if err := c.validate(); err == nil {
		t.Fatal("GossipD 1 accepted")
	}
	// Every accepted D gives parameters gossipsub accepts.
	for d := 2; d <= 12; d++ {
		c := DefaultTestConfig()
		c.GossipD = d
		n, err := New(t.Context(), c)
		if err != nil {
			t.Fatalf("D=%d: %v", d, err)
		}
		n.Close()
	}
}
