package ephemeral

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convergenode/convergenode/crdt"
)

var (
	seedFlag  = flag.Uint64("seed", 0, "run the convergence property test with this seed only")
	seedsFlag = flag.Int("seeds", 200, "number of seeds for the convergence property test")
)

// TestConvergeAnyOrder is the metamorphic convergence test: authors write
// concurrently (owned and shared namespaces, sets and deletes, partial
// knowledge of each other), then every replica receives all the batches in
// its own random order, with duplicates. All replicas must end with the same
// state, equal to a naive model that keeps the LWW maximum of every slot.
// A failure prints the seed; -seed N reproduces it.
func TestConvergeAnyOrder(t *testing.T) {
	if *seedFlag != 0 {
		if err := convergeSeed(*seedFlag); err != nil {
			t.Fatalf("seed %d: %v", *seedFlag, err)
		}
		return
	}
	for i := range *seedsFlag {
		seed := uint64(i + 1)
		if err := convergeSeed(seed); err != nil {
			t.Fatalf("seed %d: %v\nreproduce: go test ./ephemeral -run TestConvergeAnyOrder -seed %d", seed, err, seed)
		}
	}
	t.Logf("%d seeds converged (seeds 1..%d)", *seedsFlag, *seedsFlag)
}

func convergeSeed(seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	mod := func(c *Config) { c.Rate = 1 << 20; c.Burst = 1 << 20 }
	nAuthors := 2 + rng.IntN(3)
	authors := make([]*Store, nAuthors)
	for i := range authors {
		s, err := NewStore(Config{Doc: testDoc, Key: testKey(i + 1), Shared: []string{"board"}})
		if err != nil {
			return err
		}
		mod(&s.cfg)
		authors[i] = s
	}
	var all []*Batch
	namespaces := []string{"cursor", "board"}
	values := func() crdt.Value {
		switch rng.IntN(4) {
		case 0:
			return crdt.Int(rng.Int64N(3))
		case 1:
			return crdt.String(fmt.Sprint("v", rng.IntN(3)))
		case 2:
			return crdt.Bool(rng.IntN(2) == 0)
		}
		return crdt.Null()
	}
	rounds := 3 + rng.IntN(5)
	for r := range rounds {
		for _, a := range authors {
			// Each author has its own physical clock, skewed up to ±1 s in
			// 100 ms steps, so equal timestamps (ties) are common.
			now := t0.Add(time.Duration(r)*200*time.Millisecond + time.Duration(rng.IntN(21)-10)*100*time.Millisecond)
			// Partial knowledge: merge a few batches seen so far.
			for range rng.IntN(3) {
				if len(all) == 0 {
					break
				}
				if _, err := a.Merge(all[rng.IntN(len(all))], now); err != nil && !errors.Is(err, ErrReplay) {
					return fmt.Errorf("author merge: %w", err)
				}
			}
			for range rng.IntN(5) {
				ns := namespaces[rng.IntN(len(namespaces))]
				key := fmt.Sprint("k", rng.IntN(3))
				var err error
				if rng.IntN(4) == 0 {
					err = a.Delete(ns, key, now)
				} else {
					err = a.Set(ns, key, values(), now)
				}
				if err != nil {
					return err
				}
			}
			if rng.IntN(3) > 0 {
				all = append(all, a.Flush(now)...)
			}
		}
	}
	end := t0.Add(time.Duration(rounds) * 200 * time.Millisecond)
	for _, a := range authors {
		all = append(all, a.Flush(end)...)
	}
	want := model(all)
	replicas := slices.Clone(authors)
	for i := range 4 {
		s, err := NewStore(Config{Doc: testDoc, Key: testKey(100 + i), Shared: []string{"board"}})
		if err != nil {
			return err
		}
		mod(&s.cfg)
		replicas = append(replicas, s)
	}
	for i, s := range replicas {
		order := slices.Clone(all)
		for range rng.IntN(4) { // duplicates
			order = append(order, all[rng.IntN(len(all))])
		}
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, b := range order {
			if _, err := s.Merge(b, end.Add(2*time.Second)); err != nil && !errors.Is(err, ErrReplay) {
				return fmt.Errorf("replica %d: %w", i, err)
			}
		}
		if got := dump(s); got != want {
			return fmt.Errorf("replica %d (of %d authors, %d batches) differs from the model:\n got:\n%s want:\n%s",
				i, nAuthors, len(all), got, want)
		}
	}
	// Expiry is deterministic too: at a common later time every replica
	// drops exactly the entries whose last batch is TTL old.
	at := t0.Add(30*time.Second + time.Duration(rng.IntN(2400)-1000)*time.Millisecond)
	wantAt := modelAt(all, at)
	for i, s := range replicas {
		s.Tick(at)
		if got := dump(s); got != wantAt {
			return fmt.Errorf("replica %d after expiry at %d differs from the model:\n got:\n%s want:\n%s",
				i, at.UnixMilli(), got, wantAt)
		}
	}
	return nil
}

func model(batches []*Batch) string { return modelAt(batches, time.Time{}) }

// modelAt is the naive specification: every slot holds the LWW maximum of all
// updates ever made to it, and it is visible unless that is a tombstone or,
// when at is not zero, expired at time at. A write's renewal time is the
// newest batch that carried it.
func modelAt(batches []*Batch, at time.Time) string {
	type slotID struct {
		ns     string
		author crdt.Author
		key    string
	}
	type w struct {
		author  crdt.Author
		u       Update
		renewed Timestamp
	}
	best := map[slotID]w{}
	for _, b := range batches {
		for _, u := range b.Updates {
			id := slotID{ns: u.Namespace, key: u.Key}
			if u.Namespace != "board" {
				id.author = b.Author
			}
			cur, ok := best[id]
			switch {
			case ok && cur.author == b.Author && cur.u.Time == u.Time && cur.u.Delete == u.Delete && cur.u.Value == u.Value:
				if b.Time.Compare(cur.renewed) > 0 {
					cur.renewed = b.Time
					best[id] = cur
				}
			case !ok || lwwCompare(u.Time, b.Author, u.Delete, u.Value,
				cur.u.Time, cur.author, cur.u.Delete, cur.u.Value) > 0:
				best[id] = w{b.Author, u, b.Time}
			}
		}
	}
	var live []w
	for _, x := range best {
		if !x.u.Delete && (at.IsZero() || x.renewed.Wall+30_000 > at.UnixMilli()) {
			live = append(live, x)
		}
	}
	slices.SortFunc(live, func(a, b w) int {
		return cmp.Or(cmp.Compare(a.u.Namespace, b.u.Namespace), cmp.Compare(a.u.Key, b.u.Key), a.author.Compare(b.author))
	})
	var sb strings.Builder
	for _, x := range live {
		fmt.Fprintf(&sb, "%s/%s by %s = %v @%v\n", x.u.Namespace, x.u.Key, x.author.Short(), x.u.Value, x.u.Time)
	}
	return sb.String()
}
