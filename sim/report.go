package sim

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"
)

// WriteJSON writes reports as indented JSON: one object for one report, an
// array for several.
func WriteJSON(w io.Writer, reports ...Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if len(reports) == 1 {
		return enc.Encode(reports[0])
	}
	return enc.Encode(reports)
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
}

var csvHeader = []string{
	"topology", "graph", "strategy", "nodes", "byzantine", "seed", "converged", "convergence_ms",
	"writes", "changes", "delivery", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_max_ms",
	"messages", "bytes", "messages_per_node", "bytes_per_node", "dups_per_delivery", "last_delivery_hop",
	"via_reconciliation", "lost", "rejected", "verifications", "events", "sim_time_ms", "violations", "trace_hash",
}

// WriteCSV writes one summary row per report, with a header.
func WriteCSV(w io.Writer, reports ...Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, r := range reports {
		row := []string{
			r.Topology, r.Graph, r.Strategy, strconv.Itoa(r.Nodes), strconv.Itoa(r.Byzantine),
			strconv.FormatUint(r.Seed, 10), strconv.FormatBool(r.Converged), ms(r.ConvergenceTime),
			strconv.Itoa(r.Writes), strconv.Itoa(r.Changes), strconv.FormatFloat(r.Delivery, 'f', 4, 64),
			ms(r.LatencyP50), ms(r.LatencyP90), ms(r.LatencyP99), ms(r.LatencyMax),
			strconv.FormatInt(r.Messages, 10), strconv.FormatInt(r.Bytes, 10),
			strconv.FormatFloat(r.MessagesPerNode, 'f', 1, 64), strconv.FormatFloat(r.BytesPerNode, 'f', 0, 64),
			strconv.FormatFloat(r.DupsPerDelivery, 'f', 2, 64), strconv.Itoa(r.LastHop),
			strconv.FormatInt(r.ViaSync, 10), strconv.FormatInt(r.Lost, 10), strconv.FormatInt(r.Rejected, 10),
			strconv.FormatInt(r.Verifications, 10), strconv.FormatUint(r.Events, 10), ms(r.SimTime),
			strconv.Itoa(len(r.Violations)), r.TraceHash,
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteSeriesCSV writes the inconsistency series of every report:
// topology, t_ms, inconsistent_pairs, distinct_states, honest_up.
func WriteSeriesCSV(w io.Writer, reports ...Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"topology", "t_ms", "inconsistent_pairs", "distinct_states", "honest_up"}); err != nil {
		return err
	}
	for _, r := range reports {
		for _, s := range r.Inconsistency {
			if err := cw.Write([]string{r.Topology, ms(s.T), strconv.FormatInt(s.Pairs, 10), strconv.Itoa(s.Distinct), strconv.Itoa(s.Up)}); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// WriteTable writes a human-readable comparison table of reports.
func WriteTable(w io.Writer, reports ...Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "topology\tstrategy\tnodes\tconverged\tconv time\tdelivery\tp50\tp99\tmax\tmsgs/node\tKB/node\tdups/deliv\tlast hop\tvia sync\tviolations\t")
	for _, r := range reports {
		conv := "no"
		if r.Converged {
			conv = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%.1f%%\t%s\t%s\t%s\t%.0f\t%.1f\t%.2f\t%d\t%d\t%d\t\n",
			r.Topology, r.Strategy, r.Nodes, conv, fmtDur(r.ConvergenceTime), 100*r.Delivery,
			fmtDur(r.LatencyP50), fmtDur(r.LatencyP99), fmtDur(r.LatencyMax),
			r.MessagesPerNode, r.BytesPerNode/1024, r.DupsPerDelivery, r.LastHop, r.ViaSync, len(r.Violations))
	}
	return tw.Flush()
}

// Summary is a short multi-line description of one report.
func (r *Report) Summary() string {
	s := fmt.Sprintf("%s (%s, %s), %d nodes, seed %d: ", r.Topology, r.Graph, r.Strategy, r.Nodes, r.Seed)
	if r.Converged {
		s += fmt.Sprintf("converged %s after the last write/fault\n", fmtDur(r.ConvergenceTime))
	} else {
		s += "did NOT converge\n"
	}
	s += fmt.Sprintf("  %d writes, %d changes, delivery %.2f%%, latency p50 %s p90 %s p99 %s max %s\n",
		r.Writes, r.Changes, 100*r.Delivery, fmtDur(r.LatencyP50), fmtDur(r.LatencyP90), fmtDur(r.LatencyP99), fmtDur(r.LatencyMax))
	s += fmt.Sprintf("  %.0f msgs/node, %.1f KB/node, %.2f dups/delivery, last hop %d, %d via reconciliation\n",
		r.MessagesPerNode, r.BytesPerNode/1024, r.DupsPerDelivery, r.LastHop, r.ViaSync)
	s += fmt.Sprintf("  %d events, %s simulated, trace %s\n", r.Events, fmtDur(r.SimTime), r.TraceHash)
	if len(r.Violations) == 0 {
		s += "  invariants: ok\n"
	}
	for _, v := range r.Violations {
		s += "  VIOLATION " + v.String() + "\n"
	}
	return s
}

// Aggregate summarises reports of one configuration run with several
// seeds: medians of the convergence time and latency percentiles, means of
// delivery, costs and deliveries by reconciliation, the largest last hop,
// Converged only if every run converged, and every violation; Messages,
// Bytes, Events, Writes and Changes are totals. Seed is the first run's; TraceHash and
// the series are left empty.
func Aggregate(reports []Report) Report {
	if len(reports) == 0 {
		return Report{}
	}
	a := reports[0]
	a.TraceHash = ""
	a.Inconsistency = nil
	a.Latencies = nil
	a.Violations = nil
	med := func(f func(r *Report) time.Duration) time.Duration {
		xs := make([]time.Duration, len(reports))
		for i := range reports {
			xs[i] = f(&reports[i])
		}
		slices.Sort(xs)
		return percentile(xs, 50)
	}
	a.ConvergenceTime = med(func(r *Report) time.Duration { return r.ConvergenceTime })
	a.LatencyP50 = med(func(r *Report) time.Duration { return r.LatencyP50 })
	a.LatencyP90 = med(func(r *Report) time.Duration { return r.LatencyP90 })
	a.LatencyP99 = med(func(r *Report) time.Duration { return r.LatencyP99 })
	a.LatencyMax = med(func(r *Report) time.Duration { return r.LatencyMax })
	a.SimTime = med(func(r *Report) time.Duration { return r.SimTime })
	n := float64(len(reports))
	a.Delivery, a.MessagesPerNode, a.BytesPerNode, a.DupsPerDelivery = 0, 0, 0, 0
	a.Messages, a.Bytes, a.ViaSync, a.Events, a.Writes, a.Changes = 0, 0, 0, 0, 0, 0
	for i := range reports {
		r := &reports[i]
		a.Converged = a.Converged && r.Converged
		a.Delivery += r.Delivery / n
		a.MessagesPerNode += r.MessagesPerNode / n
		a.BytesPerNode += r.BytesPerNode / n
		a.DupsPerDelivery += r.DupsPerDelivery / n
		a.Messages += r.Messages
		a.Bytes += r.Bytes
		a.ViaSync += r.ViaSync
		a.Events += r.Events
		a.Writes += r.Writes
		a.Changes += r.Changes
		a.LastHop = max(a.LastHop, r.LastHop)
		a.Violations = append(a.Violations, r.Violations...)
	}
	a.ViaSync = int64(float64(a.ViaSync)/n + 0.5)
	a.Latencies = reports[len(reports)/2].Latencies
	a.Inconsistency = reports[len(reports)/2].Inconsistency
	return a
}
