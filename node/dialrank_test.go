package node

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

func delays(t *testing.T, got []network.AddrDelay) map[string]time.Duration {
	t.Helper()
	m := map[string]time.Duration{}
	for _, d := range got {
		if _, dup := m[d.Addr.String()]; dup {
			t.Fatalf("%s ranked twice", d.Addr)
		}
		m[d.Addr.String()] = d.Delay
	}
	return m
}

func TestLANTCPFirst(t *testing.T) {
	const (
		lanTCP   = "/ip4/192.168.1.7/tcp/4101"
		lanQUIC  = "/ip4/192.168.1.7/udp/4101/quic-v1"
		loTCP    = "/ip4/127.0.0.1/tcp/4101"
		loQUIC   = "/ip4/127.0.0.1/udp/4101/quic-v1"
		pubTCP   = "/ip4/8.8.8.8/tcp/4101"
		pubQUIC  = "/ip4/8.8.8.8/udp/4101/quic-v1"
		relay    = "/ip4/8.8.4.4/tcp/4101/p2p/12D3KooWGRUVh4cGTLqNpv3ZkPfnvNBYAzwKCjBL4VezHk6K9jpW/p2p-circuit"
		lanWS    = "/ip4/192.168.1.7/tcp/4102/ws"
		lanQUIC2 = "/ip4/10.0.0.3/udp/4101/quic-v1"
	)
	parse := func(ss ...string) []ma.Multiaddr {
		var out []ma.Multiaddr
		for _, s := range ss {
			out = append(out, ma.StringCast(s))
		}
		return out
	}
	all := parse(lanTCP, lanQUIC, loTCP, loQUIC, pubTCP, pubQUIC, relay, lanWS, lanQUIC2)
	got := lanTCPFirst(all)
	if len(got) != len(all) {
		t.Fatalf("ranked %d of %d addresses", len(got), len(all))
	}
	d := delays(t, got)

	// TCP on the LAN and loopback before any QUIC there.
	firstQUIC := min(d[lanQUIC], d[loQUIC], d[lanQUIC2])
	for _, a := range []string{lanTCP, loTCP} {
		if d[a] >= firstQUIC {
			t.Errorf("%s at %v, not before LAN QUIC at %v", a, d[a], firstQUIC)
		}
	}
	if d[lanWS] < firstQUIC {
		t.Errorf("WebSocket %s counted as TCP (%v)", lanWS, d[lanWS])
	}
	if min(d[lanTCP], d[loTCP]) != 0 {
		t.Errorf("no LAN TCP address dialled at once: %v", d)
	}
	// Public addresses keep go-libp2p's order: QUIC first.
	if d[pubQUIC] >= d[pubTCP] {
		t.Errorf("public QUIC at %v, TCP at %v: want QUIC first", d[pubQUIC], d[pubTCP])
	}
	// Relays wait while there are direct addresses.
	if d[relay] < swarm.RelayDelay {
		t.Errorf("relay at %v, want at least %v", d[relay], swarm.RelayDelay)
	}

	// Without LAN TCP addresses it is exactly the default ranker.
	pub := parse(pubTCP, pubQUIC, lanQUIC)
	want := swarm.DefaultDialRanker(pub)
	if g := lanTCPFirst(pub); !slices.EqualFunc(g, want, func(a, b network.AddrDelay) bool {
		return a.Addr.Equal(b.Addr) && a.Delay == b.Delay
	}) {
		t.Errorf("got %v, want the default %v", g, want)
	}
}

// Two nodes listening on both transports on loopback connect over TCP by
// default, and over QUIC with PreferQUICOnLAN.
func TestLANTransportChoice(t *testing.T) {
	for _, quicFirst := range []bool{false, true} {
		nodes := testNodes(t, 2, "d", func(_ int, c *Config) {
			c.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
			c.PreferQUICOnLAN = quicFirst
		})
		conns := nodes[0].Host().Network().ConnsToPeer(nodes[1].ID())
		if len(conns) == 0 {
			t.Fatal("not connected")
		}
		addr := conns[0].RemoteMultiaddr()
		_, err := addr.ValueForProtocol(ma.P_QUIC_V1)
		if isQUIC := err == nil; isQUIC != quicFirst {
			t.Errorf("PreferQUICOnLAN=%v: connected over %s", quicFirst, addr)
		}
	}
}
