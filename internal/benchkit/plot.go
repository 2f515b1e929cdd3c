package benchkit

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"

	"github.com/isab-vk/isab-vk/internal/atomicfile"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WritePlot draws median time and peak device memory against n, both on
// log-log axes side by side, one line per shape family (results that differ
// only in n; per device when there are several), and writes them to path as a PNG. Results without a memory
// figure are left out of the memory panel.
func WritePlot(path, title string, results []Result) error {
	if len(results) == 0 {
		return fmt.Errorf("benchkit: plot %s: no results to draw", path)
	}
	order, fams := plotFamilies(results)
	var ns []float64
	panels := []struct {
		ylabel string
		value  func(Result) float64
	}{
		{"median time (ms)", func(r Result) float64 { return r.MsMedian }},
		{"peak device memory (MiB)", func(r Result) float64 { return float64(r.DeviceMemBytes) / (1 << 20) }},
	}
	plots := make([]*plot.Plot, len(panels))
	series := make([]int, len(panels))
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "n (set size)"
		p.Y.Label.Text = pn.ylabel
		p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
		p.Legend.Top, p.Legend.Left = true, true
		for j, f := range order {
			added, err := addSeries(p, j, f, fams[f], pn.value, &ns)
			if err != nil {
				return fmt.Errorf("benchkit: plot %s: %w", path, err)
			}
			if added {
				series[i]++
			}
		}
		widenLog(&p.X.Min, &p.X.Max)
		widenLog(&p.Y.Min, &p.Y.Max)
		plots[i] = p
	}
	slices.Sort(ns)
	ticks := make([]plot.Tick, 0, len(ns))
	for _, n := range slices.Compact(ns) {
		ticks = append(ticks, plot.Tick{Value: n, Label: strconv.FormatFloat(n, 'f', -1, 64)})
	}
	for _, p := range plots {
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
	}
	if series[1] == 0 { // no memory figures: time only
		plots = plots[:1]
	}
	return writePanels(path, plots)
}

// plotFamilies groups results into shape families (results that differ
// only in n; per device when there are several), in first-seen order.
func plotFamilies(results []Result) ([]string, map[string][]Result) {
	var order []string
	fams := map[string][]Result{}
	devices := map[int]bool{}
	for _, r := range results {
		devices[r.DeviceIndex] = true
	}
	for _, r := range results {
		f := r.family()
		if len(devices) > 1 { // isab bench --device all: a line per device
			f = fmt.Sprintf("device %d: %s", r.DeviceIndex, f)
		}
		if _, ok := fams[f]; !ok {
			order = append(order, f)
		}
		fams[f] = append(fams[f], r)
	}
	return order, fams
}

// addSeries adds family f's values against n to p as the j-th line, leaving
// out values that a log axis cannot show, and appends the n it drew to ns.
// It reports whether it drew anything.
func addSeries(p *plot.Plot, j int, f string, fam []Result, value func(Result) float64, ns *[]float64) (bool, error) {
	rs := slices.Clone(fam)
	slices.SortFunc(rs, func(a, b Result) int { return a.N - b.N })
	var xys plotter.XYs
	for _, r := range rs {
		if v := value(r); v > 0 && !math.IsInf(v, 0) && !math.IsNaN(v) {
			xys = append(xys, plotter.XY{X: float64(r.N), Y: v})
			*ns = append(*ns, float64(r.N))
		}
	}
	if len(xys) == 0 {
		return false, nil
	}
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return false, err
	}
	line.Color, points.Color = plotutil.Color(j), plotutil.Color(j)
	points.Shape = plotutil.Shape(j)
	p.Add(line, points)
	p.Legend.Add(f, line, points)
	return true, nil
}

// writePanels draws plots side by side and writes them to path as a PNG,
// atomically.
func writePanels(path string, plots []*plot.Plot) error {
	const w, h = 7 * vg.Inch, 4.5 * vg.Inch
	img := vgimg.New(w*vg.Length(len(plots)), h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2,
		PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{plots}, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
	err := atomicfile.Write(path, func(w io.Writer) error {
		_, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w)
		return err
	})
	if err != nil {
		return fmt.Errorf("benchkit: writing plot %s: %w", path, err)
	}
	return nil
}

// widenLog makes a log axis range non-empty and wide enough for LogTicks to
// label it: out to the neighbouring powers of ten around a single value.
func widenLog(lo, hi *float64) {
	if !(*lo > 0) || !(*hi > 0) || math.IsInf(*lo, 0) || math.IsInf(*hi, 0) {
		*lo, *hi = 1, 10
		return
	}
	if *hi <= *lo {
		*lo, *hi = *lo/2, *hi*2
	}
}

// logTicks labels a log axis at 1, 2 and 5 times powers of ten, or at every
// integer multiple of a power of ten when the range is too narrow for two
// of those, so that a range inside one decade still gets numbers.
type logTicks struct{}

// Ticks implements plot.Ticker.
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi >= lo) || math.IsInf(hi, 0) {
		return nil
	}
	pick := func(mults []float64) []plot.Tick {
		var ticks []plot.Tick
		for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
			for _, m := range mults {
				if v := m * math.Pow(10, e); v >= lo*(1-1e-9) && v <= hi*(1+1e-9) {
					ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', 3, 64)})
				}
			}
		}
		return ticks
	}
	if t := pick([]float64{1, 2, 5}); len(t) >= 2 {
		return t
	}
	return pick([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9})
}
