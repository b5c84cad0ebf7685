package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/time/rate"
)

// A peer whose gossipsub score is below the graylist threshold gets at
// most graylistFrameRate sync frames a second (burst graylistFrameBurst)
// through to its documents; the rest are read and dropped before any
// decoding or signature check. Gossipsub already ignores such a peer; this
// keeps its sync streams from costing a verify per forged change, while
// reconciliation with it (it may be honest but unlucky) still makes slow
// progress: every message of the sync protocol is retried.
const (
	graylistFrameRate  = 20
	graylistFrameBurst = 20
	maxLimiters        = 4096
)

// SyncProtocol is the libp2p stream protocol that carries the replicas'
// direct messages (reconciliation: heads, needs, changes in batches).
//
// A stream is a sequence of frames, each
//
//	uint32be(len(body)) body
//	body = uvarint(len(doc)) doc message
//
// with len(body) at most Config.MaxFrame. Each node opens its own stream
// to a peer and only writes on it; a frame over the limit, or a malformed
// one, resets the stream.
const SyncProtocol protocol.ID = "/convergenode/sync/1"

// maxQueuedBytes bounds the bytes queued for one peer; past it the queue
// is dropped (reconciliation retries) rather than growing without bound.
const maxQueuedBytes = 256 << 20

// appendFrame appends one frame to dst.
func appendFrame(dst []byte, doc string, msg []byte) []byte {
	n := binary.PutUvarint(make([]byte, binary.MaxVarintLen64), uint64(len(doc))) + len(doc) + len(msg)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = binary.AppendUvarint(dst, uint64(len(doc)))
	dst = append(dst, doc...)
	return append(dst, msg...)
}

// errFrameTooLarge is returned by readFrame for a frame over the limit.
var errFrameTooLarge = errors.New("node: sync frame too large")

// readFrame reads one frame; buf is reused when large enough. It returns
// io.EOF at a clean end of stream.
func readFrame(r io.Reader, limit int, buf []byte) (doc string, msg []byte, _ []byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", nil, buf, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if int64(n) > int64(limit) {
		return "", nil, buf, fmt.Errorf("%w: %d bytes, limit %d", errFrameTooLarge, n, limit)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return "", nil, buf, err
	}
	l, k := binary.Uvarint(buf)
	if k <= 0 || l > uint64(len(buf)-k) {
		return "", nil, buf, errors.New("node: malformed sync frame")
	}
	return string(buf[k : k+int(l)]), buf[k+int(l):], buf, nil
}

// streams keeps one outbound sync stream per peer, each with a writer
// goroutine and a queue, so a slow peer never blocks a document loop.
type streams struct {
	n     *Node
	mu    sync.Mutex
	peers map[peer.ID]*outQueue
	// limits holds the frame limiters of peers seen graylisted (guarded
	// by mu).
	limits map[peer.ID]*rate.Limiter
}

type outQueue struct {
	mu     sync.Mutex
	frames [][]byte
	bytes  int
	wake   chan struct{}
}

func newStreams(n *Node) *streams { return &streams{n: n, peers: map[peer.ID]*outQueue{}} }

// send queues msg for doc to peer to (a peer ID string). It never blocks.
func (s *streams) send(to, doc string, msg []byte) {
	p, err := peer.Decode(to)
	if err != nil {
		s.n.log.Debug("sync send: bad peer ID", "peer", to, "err", err)
		return
	}
	s.mu.Lock()
	q, ok := s.peers[p]
	if !ok {
		q = &outQueue{wake: make(chan struct{}, 1)}
		s.peers[p] = q
		s.n.wg.Add(1)
		go func() { defer s.n.wg.Done(); s.writeLoop(p, q) }()
	}
	s.mu.Unlock()
	f := appendFrame(nil, doc, msg)
	q.mu.Lock()
	if q.bytes+len(f) > maxQueuedBytes {
		s.n.log.Warn("sync queue full: dropping queued frames", "peer", p, "bytes", q.bytes)
		q.frames, q.bytes = nil, 0
	}
	q.frames = append(q.frames, f)
	q.bytes += len(f)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (s *streams) writeLoop(p peer.ID, q *outQueue) {
	ctx := s.n.ctx
	var st network.Stream
	var w *bufio.Writer
	defer func() {
		if st != nil {
			st.Close()
		}
	}()
	// write sends frames on the current stream, opening one if needed.
	write := func(frames [][]byte) error {
		if st != nil && st.Conn().IsClosed() {
			st.Reset()
			st = nil
		}
		if st == nil {
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			var err error
			st, err = s.n.host.NewStream(dctx, p, SyncProtocol)
			cancel()
			if err != nil {
				st = nil
				return err
			}
			w = bufio.NewWriterSize(st, 64<<10)
		}
		n := 0
		for _, f := range frames {
			if _, err := w.Write(f); err != nil {
				st.Reset()
				st = nil
				return err
			}
			n += len(f)
		}
		if err := w.Flush(); err != nil {
			st.Reset()
			st = nil
			return err
		}
		s.n.met.syncOutBytes.Add(float64(n))
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		for {
			q.mu.Lock()
			frames := q.frames
			q.frames, q.bytes = nil, 0
			q.mu.Unlock()
			if len(frames) == 0 {
				break
			}
			if err := write(frames); err != nil {
				// The stream may have died with its connection: retry once
				// on a fresh one, then drop (reconciliation retries).
				if err := write(frames); err != nil {
					s.n.log.Debug("sync: write failed, frames dropped", "peer", p, "frames", len(frames), "err", err)
				}
			}
		}
	}
}

// handle reads an inbound sync stream and routes each frame to its
// document's loop. Frames for documents this node has not joined are
// dropped.
func (s *streams) handle(st network.Stream) {
	from := st.Conn().RemotePeer()
	r := bufio.NewReaderSize(st, 64<<10)
	var buf []byte
	var lim *rate.Limiter
	for {
		doc, msg, b, err := readFrame(r, s.n.cfg.MaxFrame, buf)
		buf = b
		if err != nil {
			if err != io.EOF {
				s.n.log.Debug("sync: read", "peer", from, "err", err)
				st.Reset()
			} else {
				st.Close()
			}
			return
		}
		s.n.met.syncInBytes.Add(float64(len(msg) + len(doc) + 4))
		if s.n.graylisted(from) {
			if lim == nil {
				lim = s.limiter(from)
			}
			if !lim.Allow() {
				s.n.met.syncDropped.Inc()
				continue
			}
		}
		d := s.n.lookupDoc(doc)
		if d == nil {
			continue
		}
		if !d.deliver(s.n.ctx, inMsg{from: from.String(), data: append([]byte(nil), msg...)}) {
			st.Reset()
			return
		}
	}
}

// limiter returns p's frame limiter for while it is graylisted: one per
// peer, shared by all its streams, so opening more streams gains nothing.
func (s *streams) limiter(p peer.ID) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limits == nil {
		s.limits = map[peer.ID]*rate.Limiter{}
	}
	l, ok := s.limits[p]
	if !ok {
		if len(s.limits) >= maxLimiters {
			clear(s.limits) // many graylisted peer IDs: start over, each gets a fresh bucket
		}
		l = rate.NewLimiter(graylistFrameRate, graylistFrameBurst)
		s.limits[p] = l
	}
	return l
}
