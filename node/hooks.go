package node

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/host"
)

// GraylistThreshold is the gossipsub score below which a node drops every
// message of a peer (see Node.Score).
const GraylistThreshold = graylistThreshold

// GraylistFrameRate and GraylistFrameBurst bound the sync frames a second
// that a node lets through from a graylisted peer; the rest are dropped
// unread (the convergenode_sync_frames_dropped_total metric counts them).
const (
	GraylistFrameRate  = graylistFrameRate
	GraylistFrameBurst = graylistFrameBurst
)

// useHost adopts a host given in Config.Host (an in-process mocknet host in
// tests and the chaos harness) after checking it carries the node's key.
func (n *Node) useHost(h host.Host) error {
	want, err := PeerID(n.cfg.Key)
	if err != nil {
		return err
	}
	if h.ID() != want {
		return fmt.Errorf("node: Config.Host has peer ID %s, the key gives %s", h.ID(), want)
	}
	n.host = h
	return nil
}
