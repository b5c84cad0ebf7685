package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// lanTCPFirst is the node's dial ranker (unless Config.PreferQUICOnLAN).
// It is go-libp2p's swarm.DefaultDialRanker except on private and loopback
// addresses, where TCP is dialled first and QUIC swarm.PrivateQUICDelay
// after the last TCP attempt (the default does the opposite). On a LAN
// QUIC's advantages (NAT traversal, no handshake round trips across an
// ocean) buy little, and quic-go costs more CPU per message than TCP with
// yamux: 10 nodes at 1,000 changes/s used ~6 % less CPU and had a far
// lower p99 over TCP (docs/benchmarks.md, "node"). Public addresses keep
// the default order (QUIC first), and relay addresses stay delayed by
// swarm.RelayDelay while there is any direct address.
func lanTCPFirst(addrs []ma.Multiaddr) []network.AddrDelay {
	var lanTCP, lanOther, rest []ma.Multiaddr
	for _, a := range addrs {
		switch {
		case isRelayAddr(a) || !(manet.IsPrivateAddr(a) || manet.IsIPLoopback(a)):
			rest = append(rest, a)
		case isTCPAddr(a):
			lanTCP = append(lanTCP, a)
		default:
			lanOther = append(lanOther, a)
		}
	}
	if len(lanTCP) == 0 {
		return swarm.DefaultDialRanker(addrs)
	}
	out := swarm.DefaultDialRanker(lanTCP)
	var last time.Duration
	for _, d := range out {
		last = max(last, d.Delay)
	}
	for _, d := range swarm.DefaultDialRanker(lanOther) {
		d.Delay += last + swarm.PrivateQUICDelay
		out = append(out, d)
	}
	for _, d := range swarm.DefaultDialRanker(rest) {
		if isRelayAddr(d.Addr) {
			d.Delay = max(d.Delay, swarm.RelayDelay)
		}
		out = append(out, d)
	}
	return out
}

func isRelayAddr(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// isTCPAddr reports a plain TCP address (not WebSocket over TCP).
func isTCPAddr(a ma.Multiaddr) bool {
	tcp, ws, wss := false, false, false
	ma.ForEach(a, func(c ma.Component) bool {
		switch c.Protocol().Code {
		case ma.P_TCP:
			tcp = true
		case ma.P_WS:
			ws = true
		case ma.P_WSS:
			wss = true
		}
		return true
	})
	return tcp && !ws && !wss
}
