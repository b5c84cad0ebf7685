package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/node"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// The faults Run can inject.
const (
	FaultPartition = "partition" // split the members in two for a few seconds, then heal
	FaultChurn     = "churn"     // stop an honest node, restart it on its store a few seconds later
	FaultCut       = "cut"       // cut a few random links for a few seconds
	FaultLatency   = "latency"   // give random links 20-200 ms latency and 256 KiB/s-4 MiB/s bandwidth
)

// Faults lists the faults Run knows.
var Faults = []string{FaultPartition, FaultChurn, FaultCut, FaultLatency}

// Config configures Run.
type Config struct {
	// Nodes is the number of members, honest and Byzantine. Default 12.
	Nodes int
	// Byzantine is how many of them are attackers. Default 0.
	Byzantine int
	// Attacks are the behaviours given to the attackers in turn. Default:
	// every attack (Attacks).
	Attacks []Attack
	// Faults to inject (see Faults).
	Faults []string
	// Duration of the faulty phase. Default 20 s.
	Duration time.Duration
	// Settle bounds the wait for convergence after healing. Default 60 s.
	Settle time.Duration
	// Seed drives identities, the wiring, the faults and the attacks.
	Seed uint64
	// Rate is each honest node's write rate, in changes per second.
	// Default 2.
	Rate float64
	// Degree, if positive, wires a random graph (a ring plus random links)
	// of about this degree instead of a full mesh.
	Degree int
	// Latency is every link's base latency. Default 2 ms.
	Latency time.Duration
	// HeapBoundMiB is the bound on the process heap checked as "bounded
	// memory". Default 512.
	HeapBoundMiB float64
	// Logger receives the nodes' logs. Nil discards them.
	Logger *slog.Logger
}

func (c *Config) fill() error {
	if c.Nodes <= 0 {
		c.Nodes = 12
	}
	if c.Byzantine < 0 || c.Byzantine >= c.Nodes {
		return fmt.Errorf("chaos: %d Byzantine of %d nodes: need at least one honest node", c.Byzantine, c.Nodes)
	}
	if len(c.Attacks) == 0 {
		c.Attacks = Attacks
	}
	for _, a := range c.Attacks {
		if !slices.Contains(Attacks, a) {
			return fmt.Errorf("chaos: unknown attack %q (known: %v)", a, Attacks)
		}
	}
	for _, f := range c.Faults {
		if !slices.Contains(Faults, f) {
			return fmt.Errorf("chaos: unknown fault %q (known: %v)", f, Faults)
		}
	}
	if c.Duration <= 0 {
		c.Duration = 20 * time.Second
	}
	if c.Settle <= 0 {
		c.Settle = 60 * time.Second
	}
	if c.Rate <= 0 {
		c.Rate = 2
	}
	if c.Latency <= 0 {
		c.Latency = 2 * time.Millisecond
	}
	if c.HeapBoundMiB <= 0 {
		c.HeapBoundMiB = 512
	}
	return nil
}

// AttackerReport is one attacker's part of a Report.
type AttackerReport struct {
	Member  int    `json:"member"`
	Peer    string `json:"peer"`
	Attack  Attack `json:"attack"`
	Rounds  int    `json:"rounds"`
	Sent    int    `json:"sent"`
	Invalid int    `json:"invalid"` // changes it made that no honest node may apply
	// MaxScore and MinScore are the highest and lowest gossipsub score
	// its honest neighbours give it at the end.
	MaxScore float64 `json:"max_score"`
	MinScore float64 `json:"min_score"`
	// Graylisted is how many honest neighbours score it below the
	// graylist threshold; MustGraylist says whether its attack is a
	// stateless failure (or an equivocation), which every honest
	// neighbour must punish.
	Graylisted   int  `json:"graylisted"`
	Neighbours   int  `json:"neighbours"` // honest nodes linked to it at the end
	MustGraylist bool `json:"must_graylist"`
}

// Check is one invariant's result.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	Seed        uint64           `json:"seed"`
	Nodes       int              `json:"nodes"`
	Honest      int              `json:"honest"`
	Byzantine   int              `json:"byzantine"`
	Faults      []string         `json:"faults"`
	DurationS   float64          `json:"duration_s"`
	Writes      int              `json:"writes"`       // acknowledged honest writes
	WriteErrors int              `json:"write_errors"` // refused (node stopping): not acknowledged
	Partitions  int              `json:"partitions"`
	Churns      int              `json:"churns"`
	Cuts        int              `json:"cuts"`
	Attackers   []AttackerReport `json:"attackers"`
	ConvergeS   float64          `json:"converge_s"` // after healing
	Changes     int              `json:"changes"`    // in every honest document at the end
	Delivery    float64          `json:"delivery"`   // share of (write, node) pairs applied within 10 s
	P50Ms       float64          `json:"p50_ms"`
	P99Ms       float64          `json:"p99_ms"`
	HeapPeakMiB float64          `json:"heap_peak_mib"` // whole process
	Checks      []Check          `json:"checks"`
	OK          bool             `json:"ok"`
}

// mustGraylist reports whether every honest node must score an attacker
// with this behaviour below the graylist threshold.
func mustGraylist(a Attack) bool {
	switch a {
	case AttackLamport, AttackFakeParents, AttackFloodValid, AttackCensor:
		return false // stateful or not a fault on the wire
	}
	return true
}

func modeOf(a Attack) Mode {
	switch a {
	case AttackCensor:
		return ModeCensor
	case AttackLie:
		return ModeLiar
	}
	return ModeRelay
}

const otherDoc = "chaos-other"

// Run runs one scenario on real nodes: honest writers, attackers, faults
// for Duration; then it heals everything, restarts stopped nodes, waits
// for convergence and checks the invariants.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xc4a05))
	var rmu sync.Mutex
	intn := func(n int) int { rmu.Lock(); defer rmu.Unlock(); return rng.IntN(n) }

	honestN := cfg.Nodes - cfg.Byzantine
	c := NewCluster(ClusterConfig{Seed: cfg.Seed, Link: mocknet.LinkOptions{Latency: cfg.Latency},
		ExtraDocs: []string{otherDoc}, Logger: cfg.Logger})
	defer c.Close()
	hs, err := c.AddNodes(ctx, honestN)
	if err != nil {
		return nil, err
	}
	rep := &Report{Seed: cfg.Seed, Nodes: cfg.Nodes, Honest: honestN, Byzantine: cfg.Byzantine, Faults: cfg.Faults}
	type byz struct {
		a   *Attacker
		atk Attack
		rep *AttackerReport
		out Outcome
	}
	var byzs []*byz
	for i := range cfg.Byzantine {
		atk := cfg.Attacks[i%len(cfg.Attacks)]
		as, err := c.AddAttackers(ctx, 1, modeOf(atk))
		if err != nil {
			return nil, err
		}
		if atk == AttackReplay {
			if err := as[0].Watch(otherDoc); err != nil {
				return nil, err
			}
		}
		byzs = append(byzs, &byz{a: as[0], atk: atk, rep: &AttackerReport{Member: as[0].m.Index, Peer: as[0].ID().String(), Attack: atk, MustGraylist: mustGraylist(atk)}})
	}
	if err := wire(c, cfg, rng); err != nil {
		return nil, err
	}
	if slices.Contains(cfg.Faults, FaultLatency) {
		for range cfg.Nodes {
			i, j := intn(cfg.Nodes), intn(cfg.Nodes)
			if i != j {
				c.SetLink(i, j, mocknet.LinkOptions{Latency: time.Duration(20+intn(180)) * time.Millisecond, Bandwidth: float64(int64(256<<10) << intn(5))})
			}
		}
	}
	l := NewLedger()
	for _, m := range hs {
		l.Watch(m)
	}
	time.Sleep(time.Second) // let the meshes form
	// Material for replays: changes an honest node signs for another document.
	if d, err := hs[0].Node().Doc(ctx, otherDoc); err == nil {
		for k := range 3 {
			d.Insert(ctx, WriteTable, fmt.Sprintf("other-%d", k), map[string]any{"v": k})
		}
	}

	t0 := time.Now()
	fctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	var peak atomic.Uint64
	var writeErrs atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for fctx.Err() == nil {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			sleepCtx(fctx, 250*time.Millisecond)
		}
	}()
	for _, m := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			every := time.Duration(float64(time.Second) / cfg.Rate)
			for k := 0; fctx.Err() == nil; k++ {
				if c.isUp(m) {
					if err := l.Write(fctx, m, fmt.Sprintf("w-%d-%d", m.Index, k)); err != nil {
						writeErrs.Add(1)
					}
				}
				sleepCtx(fctx, every)
			}
		}()
	}
	attackOnce := func(b *byz, actx context.Context) {
		o, err := attack(actx, b.a, b.atk, c, intn)
		b.out.add(o)
		b.rep.Rounds++
		b.rep.Sent += o.Sent
		if err != nil && cfg.Logger != nil {
			cfg.Logger.Debug("attack", "attack", b.atk, "err", err)
		}
	}
	for _, b := range byzs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fctx.Err() == nil {
				attackOnce(b, fctx)
				sleepCtx(fctx, 500*time.Millisecond)
			}
		}()
	}
	var down sync.Map // member index -> true while stopped by churn
	faults := slices.Clone(cfg.Faults)
	if slices.Contains(faults, FaultLatency) {
		faults = slices.DeleteFunc(faults, func(f string) bool { return f == FaultLatency })
	}
	if len(faults) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := t0.Add(cfg.Duration * 3 / 4) // leave time to catch up
			for fctx.Err() == nil && time.Now().Before(last) {
				sleepCtx(fctx, time.Duration(1000+intn(1500))*time.Millisecond)
				if fctx.Err() != nil || time.Now().After(last) {
					break
				}
				hold := time.Duration(1500+intn(2500)) * time.Millisecond
				switch faults[intn(len(faults))] {
				case FaultPartition:
					var a, b []int
					for i := range cfg.Nodes {
						if intn(2) == 0 {
							a = append(a, i)
						} else {
							b = append(b, i)
						}
					}
					c.Partition(a, b)
					rep.Partitions++
					sleepCtx(fctx, hold)
					c.Heal()
				case FaultCut:
					var cuts [][2]int
					for range max(1, cfg.Nodes/2) {
						i, j := intn(cfg.Nodes), intn(cfg.Nodes)
						if i != j {
							c.Cut(i, j)
							cuts = append(cuts, [2]int{i, j})
						}
					}
					rep.Cuts++
					sleepCtx(fctx, hold)
					for _, p := range cuts {
						c.Restore(p[0], p[1])
					}
				case FaultChurn:
					n := 0
					down.Range(func(_, _ any) bool { n++; return true })
					if n >= max(1, honestN/3) || honestN < 2 {
						continue
					}
					m := hs[intn(honestN)]
					if _, ok := down.Load(m.Index); ok {
						continue
					}
					down.Store(m.Index, true)
					c.Stop(m.Index)
					rep.Churns++
					go func() {
						sleepCtx(ctx, hold)
						if err := c.Restart(ctx, m.Index); err == nil {
							l.Watch(m)
						}
						down.Delete(m.Index)
					}()
				}
			}
		}()
	}
	wg.Wait()
	rep.DurationS = time.Since(t0).Seconds()

	// Heal: links, partitions, stopped nodes.
	c.Heal()
	for _, m := range hs {
		for !c.isUp(m) {
			if _, ok := down.Load(m.Index); !ok {
				if err := c.Restart(ctx, m.Index); err == nil {
					l.Watch(m)
				}
			}
			sleepCtx(ctx, 50*time.Millisecond)
		}
	}
	// One more round from every attacker, so restarted nodes meet them
	// too; the attackers whose behaviour must be graylisted keep going
	// (every 500 ms) until the scores are read: a gossipsub score decays
	// back above the threshold once a peer stops misbehaving.
	sctx, stopAttacks := context.WithCancel(ctx)
	defer stopAttacks()
	var swg sync.WaitGroup
	for _, b := range byzs {
		attackOnce(b, ctx)
		if b.rep.MustGraylist && b.atk != AttackEquivocate {
			swg.Add(1)
			go func() {
				defer swg.Done()
				for sleepCtx(sctx, 500*time.Millisecond); sctx.Err() == nil; sleepCtx(sctx, 500*time.Millisecond) {
					attackOnce(b, sctx)
				}
			}()
		}
	}
	rep.Writes, rep.WriteErrors = l.Len(), int(writeErrs.Load())
	var checks []Check
	add := func(name string, err error) {
		ch := Check{Name: name, OK: err == nil}
		if err != nil {
			ch.Detail = err.Error()
		}
		checks = append(checks, ch)
	}
	took, cerr := c.WaitConverged(ctx, cfg.Settle, rep.Writes)
	rep.ConvergeS = took.Seconds()
	add("convergence after healing", cerr)
	time.Sleep(1500 * time.Millisecond) // one more score inspection
	var serr []error
	for _, b := range byzs {
		sc := c.Scores(b.a.ID())
		b.rep.Neighbours = len(sc)
		first := true
		for _, s := range sc {
			if first || s > b.rep.MaxScore {
				b.rep.MaxScore = s
			}
			if first || s < b.rep.MinScore {
				b.rep.MinScore = s
			}
			first = false
			if s < node.GraylistThreshold {
				b.rep.Graylisted++
			}
		}
		if b.rep.MustGraylist && b.rep.Graylisted < len(sc) {
			serr = append(serr, fmt.Errorf("attacker %d (%s) graylisted by %d of its %d honest neighbours", b.rep.Member, b.atk, b.rep.Graylisted, len(sc)))
		}
	}
	stopAttacks()
	swg.Wait()
	var invalid []crdt.ID
	var equiv []crdt.Author
	for _, b := range byzs {
		invalid = append(invalid, b.out.Invalid...)
		equiv = append(equiv, b.out.Equivocators...)
		b.rep.Invalid = len(b.out.Invalid)
		rep.Attackers = append(rep.Attackers, *b.rep)
	}
	snaps, err := c.Snapshots()
	if err != nil {
		return nil, err
	}
	rep.Changes = len(snaps[0].IDs)
	add("valid-only", CheckValidOnly(snaps, invalid))
	add("same set, same state", CheckSameState(snaps))
	add("no lost acknowledged writes", c.CheckAcked(l))
	add("proofs everywhere", c.CheckProofs(dedupAuthors(equiv)))
	rep.HeapPeakMiB = mib(peak.Load())
	var merr error
	if rep.HeapPeakMiB > cfg.HeapBoundMiB {
		merr = fmt.Errorf("heap peaked at %.0f MiB, bound %.0f MiB", rep.HeapPeakMiB, cfg.HeapBoundMiB)
	}
	add("bounded memory", merr)
	add("attackers scored down", errors.Join(serr...))
	share, p50, p99 := l.Delivery(10 * time.Second)
	rep.Delivery, rep.P50Ms, rep.P99Ms = share, ms(p50), ms(p99)
	rep.Checks = checks
	rep.OK = true
	for _, ch := range checks {
		rep.OK = rep.OK && ch.OK
	}
	return rep, nil
}

func dedupAuthors(as []crdt.Author) []crdt.Author {
	slices.SortFunc(as, func(a, b crdt.Author) int { return a.Compare(b) })
	return slices.Compact(as)
}

// wire links the members: a full mesh, or a ring plus random links of
// about cfg.Degree per member.
func wire(c *Cluster, cfg Config, rng *rand.Rand) error {
	if cfg.Degree <= 0 || cfg.Degree >= cfg.Nodes-1 {
		return c.WireFull()
	}
	var pairs [][2]int
	for i := range cfg.Nodes {
		pairs = append(pairs, [2]int{i, (i + 1) % cfg.Nodes})
	}
	for range cfg.Nodes * (cfg.Degree - 2) / 2 {
		i, j := rng.IntN(cfg.Nodes), rng.IntN(cfg.Nodes)
		if i != j {
			pairs = append(pairs, [2]int{i, j})
		}
	}
	return c.Wire(pairs...)
}

// attack runs one round of behaviour atk from a.
func attack(ctx context.Context, a *Attacker, atk Attack, c *Cluster, intn func(int) int) (Outcome, error) {
	victim := func() *Member {
		run := c.Running()
		if len(run) == 0 {
			return nil
		}
		return run[intn(len(run))]
	}
	switch atk {
	case AttackEquivocate:
		return a.Equivocate(ctx)
	case AttackForge:
		return a.Forge(ctx)
	case AttackTamper:
		return a.Tamper(ctx)
	case AttackLamport:
		return a.InflateLamport(ctx)
	case AttackFakeParents:
		return a.FakeParents(ctx)
	case AttackFloodInvalid:
		o, err := a.FloodInvalid(ctx, 30)
		if v := victim(); v != nil && err == nil {
			p, err2 := a.FloodInvalidSync(ctx, v.ID, 30)
			o.add(p)
			err = err2
		}
		return o, err
	case AttackFloodValid:
		return a.FloodValid(ctx, 10)
	case AttackReplay:
		o, err := a.Replay(ctx, otherDoc)
		if v := victim(); v != nil && err == nil {
			p, err2 := a.ReplaySync(ctx, otherDoc, v.ID)
			o.add(p)
			err = err2
		}
		return o, err
	case AttackOversized:
		if v := victim(); v != nil {
			return a.Oversized(ctx, v.ID)
		}
	case AttackPresence:
		if v := victim(); v != nil {
			return a.SpoofPresence(ctx, v, "spoofed")
		}
	case AttackLie:
		if v := victim(); v != nil {
			return a.StartLies(ctx, v.ID)
		}
	case AttackCensor:
		// Passive: it sits in the meshes and drops everything.
	}
	return Outcome{}, nil
}

// Text writes the report for people.
func (r *Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos: %d nodes (%d honest, %d Byzantine), faults %v, seed %d, %.1fs\n",
		r.Nodes, r.Honest, r.Byzantine, r.Faults, r.Seed, r.DurationS)
	fmt.Fprintf(&b, "writes:     %d acknowledged, %d refused while stopping\n", r.Writes, r.WriteErrors)
	fmt.Fprintf(&b, "faults:     %d partitions, %d churns, %d link cuts\n", r.Partitions, r.Churns, r.Cuts)
	fmt.Fprintf(&b, "converged:  %.2fs after healing, %d changes on every honest node\n", r.ConvergeS, r.Changes)
	fmt.Fprintf(&b, "delivery:   %.2f%% within 10s, p50 %.1fms, p99 %.1fms\n", 100*r.Delivery, r.P50Ms, r.P99Ms)
	fmt.Fprintf(&b, "heap peak:  %.0f MiB (whole process)\n", r.HeapPeakMiB)
	if len(r.Attackers) > 0 {
		fmt.Fprintf(&b, "attackers:\n  %-6s %-15s %6s %6s %7s %10s %10s %10s\n", "member", "attack", "rounds", "sent", "invalid", "min score", "max score", "graylisted")
		for _, a := range r.Attackers {
			gl := fmt.Sprintf("%d/%d", a.Graylisted, a.Neighbours)
			if !a.MustGraylist {
				gl += " (n/a)"
			}
			fmt.Fprintf(&b, "  %-6d %-15s %6d %6d %7d %10.1f %10.1f %10s\n", a.Member, a.Attack, a.Rounds, a.Sent, a.Invalid, a.MinScore, a.MaxScore, gl)
		}
	}
	fmt.Fprintf(&b, "invariants:\n")
	for _, ch := range r.Checks {
		mark := "ok  "
		if !ch.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  %s %s", mark, ch.Name)
		if ch.Detail != "" {
			fmt.Fprintf(&b, ": %s", ch.Detail)
		}
		b.WriteByte('\n')
	}
	if r.OK {
		b.WriteString("result: ok\n")
	} else {
		b.WriteString("result: FAILED\n")
	}
	return b.String()
}
