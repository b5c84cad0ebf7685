package node

import (
	"context"
	"fmt"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	"github.com/multiformats/go-multiaddr"
)

// mdnsService is the mDNS service name convergenode nodes announce.
const mdnsService = "convergenode"

// rendezvous returns the DHT rendezvous string of a document.
func rendezvous(doc string) string { return "/convergenode/doc/" + doc }

func parseAddrInfos(addrs []string) ([]peer.AddrInfo, error) {
	var mas []multiaddr.Multiaddr
	for _, a := range addrs {
		ma, err := multiaddr.NewMultiaddr(a)
		if err != nil {
			return nil, fmt.Errorf("node: bootstrap address %q: %w", a, err)
		}
		mas = append(mas, ma)
	}
	ais, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("node: bootstrap addresses: %w", err)
	}
	return ais, nil
}

// startDiscovery starts the bootstrap dialer, mDNS and the DHT, as
// configured.
func (n *Node) startDiscovery(ctx context.Context) error {
	boot, err := parseAddrInfos(n.cfg.Bootstrap)
	if err != nil {
		return err
	}
	for _, ai := range boot {
		n.host.ConnManager().Protect(ai.ID, "bootstrap")
	}
	if len(boot) > 0 {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.bootstrapLoop(boot) }()
	}
	if n.cfg.MDNS {
		svc := mdns.NewMdnsService(n.host, mdnsService, mdnsNotifee{n})
		if err := svc.Start(); err != nil {
			return fmt.Errorf("node: mdns: %w", err)
		}
		n.wg.Add(1)
		go func() { defer n.wg.Done(); <-n.ctx.Done(); svc.Close() }()
	}
	if n.cfg.DHT {
		d, err := dht.New(n.host, dht.Mode(dht.ModeAuto), dht.BootstrapPeers(boot...))
		if err != nil {
			return fmt.Errorf("node: dht: %w", err)
		}
		n.dht = d
		if err := d.Bootstrap(ctx); err != nil {
			return fmt.Errorf("node: dht bootstrap: %w", err)
		}
		n.dhtDisc = drouting.NewRoutingDiscovery(d)
	}
	return nil
}

// bootstrapLoop dials the bootstrap peers now and whenever they are not
// connected.
func (n *Node) bootstrapLoop(boot []peer.AddrInfo) {
	t := time.NewTicker(n.cfg.BootstrapInterval)
	defer t.Stop()
	for {
		for _, ai := range boot {
			if ai.ID == n.host.ID() || n.host.Network().Connectedness(ai.ID) == network.Connected {
				continue
			}
			ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			if err := n.host.Connect(ctx, ai); err != nil {
				n.log.Debug("bootstrap dial failed", "peer", ai.ID, "err", err)
			} else {
				n.log.Info("connected to bootstrap peer", "peer", ai.ID)
			}
			cancel()
		}
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

type mdnsNotifee struct{ n *Node }

// HandlePeerFound dials a peer found on the LAN.
func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	n := m.n
	if ai.ID == n.host.ID() || n.ctx.Err() != nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		defer cancel()
		if err := n.host.Connect(ctx, ai); err != nil {
			n.log.Debug("mdns dial failed", "peer", ai.ID, "err", err)
			return
		}
		n.log.Info("found peer on the LAN", "peer", ai.ID)
	}()
}

// advertise announces doc's rendezvous on the DHT and dials the peers
// found there, every few minutes while the node runs.
func (n *Node) advertise(doc string) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ns := rendezvous(doc)
		for {
			if _, err := n.dhtDisc.Advertise(n.ctx, ns); err != nil {
				n.log.Debug("dht advertise", "doc", doc, "err", err)
			}
			ch, err := n.dhtDisc.FindPeers(n.ctx, ns)
			if err == nil {
				for ai := range ch {
					if ai.ID == n.host.ID() || len(ai.Addrs) == 0 {
						continue
					}
					ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
					n.host.Connect(ctx, ai)
					cancel()
				}
			}
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(3 * time.Minute):
			}
		}
	}()
}
