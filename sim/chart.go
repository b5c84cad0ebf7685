package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// WriteCharts writes SVG charts of reports into dir: inconsistency.svg
// (inconsistent pairs over time), latency.svg (delivery latency CDF) and,
// for several reports, compare.svg (messages per node and p99 latency by
// topology). It returns the files written.
func WriteCharts(dir string, reports ...Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for _, c := range []struct {
		name string
		fn   func(string, []Report) error
		min  int
	}{
		{"inconsistency.svg", InconsistencyChart, 1},
		{"latency.svg", LatencyChart, 1},
		{"compare.svg", CompareChart, 2},
	} {
		if len(reports) < c.min {
			continue
		}
		path := filepath.Join(dir, c.name)
		if err := c.fn(path, reports); err != nil {
			return files, fmt.Errorf("sim: chart %s: %w", c.name, err)
		}
		files = append(files, path)
	}
	return files, nil
}

// InconsistencyChart plots inconsistent pairs per sample over time, one
// line per report.
func InconsistencyChart(path string, reports []Report) error {
	p := plot.New()
	p.Title.Text = "Inconsistent pairs of honest replicas"
	p.X.Label.Text = "simulated time (s)"
	p.Y.Label.Text = "inconsistent pairs"
	for i, r := range reports {
		xys := make(plotter.XYs, 0, len(r.Inconsistency))
		for _, s := range r.Inconsistency {
			xys = append(xys, plotter.XY{X: s.T.Seconds(), Y: float64(s.Pairs)})
		}
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(label(r), l)
	}
	p.Legend.Top = true
	return p.Save(8*vg.Inch, 4*vg.Inch, path)
}

// LatencyChart plots the CDF of delivery latency, one line per report.
func LatencyChart(path string, reports []Report) error {
	p := plot.New()
	p.Title.Text = "Delivery latency (CDF)"
	p.X.Label.Text = "latency (ms)"
	p.Y.Label.Text = "fraction of deliveries"
	for i, r := range reports {
		lat := r.Latencies
		if len(lat) == 0 {
			continue
		}
		// At most ~500 points per line.
		step := max(1, len(lat)/500)
		xys := make(plotter.XYs, 0, len(lat)/step+2)
		for k := 0; k < len(lat); k += step {
			xys = append(xys, plotter.XY{X: float64(lat[k]) / float64(time.Millisecond), Y: float64(k+1) / float64(len(lat))})
		}
		xys = append(xys, plotter.XY{X: float64(lat[len(lat)-1]) / float64(time.Millisecond), Y: 1})
		l, err := plotter.NewLine(xys)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(label(r), l)
	}
	p.Legend.Top = true
	p.Legend.Left = false
	return p.Save(8*vg.Inch, 4*vg.Inch, path)
}

// CompareChart draws grouped bars per report: messages per node and p99
// latency (ms).
func CompareChart(path string, reports []Report) error {
	p := plot.New()
	p.Title.Text = "Topology comparison"
	p.Y.Label.Text = "messages per node  |  p99 latency (ms)"
	msgs := make(plotter.Values, len(reports))
	p99 := make(plotter.Values, len(reports))
	names := make([]string, len(reports))
	for i, r := range reports {
		msgs[i] = r.MessagesPerNode
		p99[i] = float64(r.LatencyP99) / float64(time.Millisecond)
		names[i] = label(r)
	}
	w := vg.Points(18)
	b1, err := plotter.NewBarChart(msgs, w)
	if err != nil {
		return err
	}
	b1.Color = plotutil.Color(0)
	b1.Offset = -w / 2
	b2, err := plotter.NewBarChart(p99, w)
	if err != nil {
		return err
	}
	b2.Color = plotutil.Color(1)
	b2.Offset = w / 2
	p.Add(b1, b2)
	p.Legend.Add("messages/node", b1)
	p.Legend.Add("p99 latency ms", b2)
	p.Legend.Top = true
	p.NominalX(names...)
	return p.Save(vg.Length(max(6, len(reports)))*vg.Inch, 4*vg.Inch, path)
}

func label(r Report) string {
	if r.Topology != "" {
		return r.Topology
	}
	return r.Strategy
}
