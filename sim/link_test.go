package sim

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/convergenode/convergenode/topology"
)

func TestLatencySample(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ms := time.Millisecond
	u := Latency{Kind: DistUniform, Base: 10 * ms, Max: 30 * ms}
	ln := Latency{Kind: DistLogNormal, Base: 20 * ms, Sigma: 0.5, Max: 200 * ms}
	var below int
	for i := 0; i < 10000; i++ {
		if d := u.Sample(rng); d < 10*ms || d > 30*ms {
			t.Fatalf("uniform sample %v out of range", d)
		}
		d := ln.Sample(rng)
		if d <= 0 || d > 200*ms {
			t.Fatalf("lognormal sample %v out of range", d)
		}
		if d < 20*ms {
			below++
		}
	}
	if below < 4700 || below > 5300 {
		t.Errorf("lognormal median off: %d of 10000 below the median", below)
	}
	for _, s := range []string{"20ms", "uniform(10ms,30ms)", "lognormal(20ms,0.5)"} {
		l, err := ParseLatency(s)
		if err != nil {
			t.Fatal(err)
		}
		if l.String() != s && l.Kind == DistConstant {
			t.Errorf("%q round trip: %q", s, l.String())
		}
	}
	if _, err := ParseLatency("fast"); err == nil {
		t.Error("bad latency accepted")
	}
}

// bareSim is a Sim with peers but no nodes, to test the network layer.
func bareSim(n int, l Link) *Sim {
	s := &Sim{
		cfg:   Config{Link: l},
		rng:   rand.New(rand.NewPCG(3, 4)),
		ge:    map[uint64]bool{},
		fifo:  map[uint64]int64{},
		links: map[uint64]*Link{},
		scen:  &topology.Scenario{Graph: topology.Mesh(n)},
	}
	s.met = newMetrics(s)
	for i := 0; i < n; i++ {
		s.peers = append(s.peers, &peer{i: i, up: true})
	}
	return s
}

func TestLossModels(t *testing.T) {
	const n = 20000
	s := bareSim(2, Link{Loss: 0.2})
	lost := 0
	for i := 0; i < n; i++ {
		if s.lost(0, 1, &s.cfg.Link) {
			lost++
		}
	}
	if r := float64(lost) / n; math.Abs(r-0.2) > 0.02 {
		t.Errorf("independent loss rate %.3f, want 0.2", r)
	}
	// Gilbert–Elliott: stationary bad share PBad/(PBad+PGood) = 0.25, so the
	// loss rate is 0.25*0.8 = 0.2, in bursts (runs longer than independent).
	b := Link{Burst: &Burst{PBad: 0.05, PGood: 0.15, LossBad: 0.8}}
	s = bareSim(2, b)
	lost, runs, prev := 0, 0, false
	for i := 0; i < n; i++ {
		l := s.lost(0, 1, &b)
		if l {
			lost++
			if !prev {
				runs++
			}
		}
		prev = l
	}
	if r := float64(lost) / n; math.Abs(r-0.2) > 0.04 {
		t.Errorf("bursty loss rate %.3f, want about 0.2", r)
	}
	if mean := float64(lost) / float64(runs); mean < 1.8 {
		t.Errorf("bursty loss runs average %.2f, want bursts", mean)
	}
}

func TestTransmitBandwidthAndStreams(t *testing.T) {
	// 10 messages of 992+8 bytes at 10 kB/s queue behind each other.
	s := bareSim(2, Link{Latency: Latency{Base: 10 * time.Millisecond}, Bandwidth: 10000})
	for i := 0; i < 10; i++ {
		s.transmit(0, 1, packet{kind: pkGossip, data: make([]byte, 992)}, 1, false)
	}
	var last int64
	for s.q.Len() > 0 {
		e := s.q.pop()
		if e.at < last {
			t.Fatal("queued messages overtook each other")
		}
		last = e.at
	}
	if want := int64(time.Second + 10*time.Millisecond); last != want {
		t.Errorf("last arrival %v, want %v", time.Duration(last), time.Duration(want))
	}
	// Streams are ordered even with jitter and loss (retransmissions).
	s = bareSim(2, Link{Latency: Latency{Kind: DistUniform, Base: time.Millisecond, Max: 50 * time.Millisecond}, Loss: 0.5})
	for i := 0; i < 200; i++ {
		s.sendDirect(0, 1, []byte{byte(i)})
	}
	next := 0
	for s.q.Len() > 0 {
		e := s.q.pop()
		if d := s.release(e.aux).data; int(d[0]) != next%256 {
			t.Fatalf("stream message %d arrived out of order (want %d)", d[0], next)
		}
		next++
	}
	if next != 200 {
		t.Fatalf("stream delivered %d of 200", next)
	}
	// Partitions and one-way cuts block at the sender.
	s = bareSim(3, Link{})
	s.OneWay([]int{0}, []int{1})
	if !s.blocked(0, 1) || s.blocked(1, 0) || s.blocked(0, 2) {
		t.Error("one-way cut blocks the wrong directions")
	}
}
