package benchkit

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/isab-vk/isab-vk/isab"
)

// StageTime is the GPU time of one group of dispatches, the median over
// the timed forward passes of the per-pass sum.
type StageTime struct {
	Name       string  `json:"name"`
	Dispatches int     `json:"dispatches"` // per forward pass
	MsMedian   float64 `json:"ms_median"`
}

// StageReport is the --stages breakdown of one shape.
type StageReport struct {
	// GPUMs is the median over passes of the summed GPU time of every dispatch.
	GPUMs float64 `json:"gpu_ms"`
	// Kernels groups dispatches by kernel name, in order of first use.
	Kernels []StageTime `json:"kernels"`
	// Forward groups dispatches by step of the forward pass (see ForwardStages).
	Forward []StageTime `json:"forward"`
}

// attentionKernel tells the attention-side kernels from the matrix products.
func attentionKernel(name string) bool {
	return strings.Contains(name, "attn") || strings.Contains(name, "attention") || strings.Contains(name, "softmax")
}

// forwardSteps names the runs of a forward pass as isab records it: the
// input projections (to_q(latents), to_kv(x) [and to_kv(latents)],
// to_q(x)), attention 1, its output projection with attn2's to_kv, attention
// 2, and attn2's output projection.
var forwardSteps = []string{"q1+kv1+q2", "attn1", "out1+kv2", "attn2", "out2"}

// ForwardStages labels every dispatch of a forward pass with its step,
// from the kernel names alone: dispatches split into runs of matrix-product
// and of attention kernels, and a pass of the usual five runs (products,
// attention, products, attention, products) gets the names of
// forwardSteps. Any other pattern is labelled by run number and kind.
func ForwardStages(names []string) []string {
	runs := make([]int, len(names))
	var kinds []bool
	for i, n := range names {
		a := attentionKernel(n)
		if i == 0 || a != kinds[len(kinds)-1] {
			kinds = append(kinds, a)
		}
		runs[i] = len(kinds) - 1
	}
	usual := len(kinds) == len(forwardSteps)
	for i, a := range kinds {
		usual = usual && a == (i%2 == 1)
	}
	labels := make([]string, len(names))
	for i, r := range runs {
		switch {
		case usual:
			labels[i] = forwardSteps[r]
		case kinds[r]:
			labels[i] = fmt.Sprintf("run%d:attention", r+1)
		default:
			labels[i] = fmt.Sprintf("run%d:matmul", r+1)
		}
	}
	return labels
}

// AggregateStages sums the dispatch times of each pass by kernel name and
// by forward step and takes the median over passes; dispatch counts come
// from the first timed pass. Passes without timestamps are skipped; it
// returns nil when no pass has any.
func AggregateStages(passes [][]isab.StageTime) *StageReport {
	kernels, steps := newGrouping(), newGrouping()
	var totals []float64
	for _, pass := range passes {
		if len(pass) == 0 {
			continue
		}
		first := len(totals) == 0
		names := make([]string, len(pass))
		for i, st := range pass {
			names[i] = st.Kernel
		}
		labels := ForwardStages(names)
		byKernel, byStep := map[string]time.Duration{}, map[string]time.Duration{}
		var total time.Duration
		for i, st := range pass {
			kernels.see(st.Kernel, first)
			steps.see(labels[i], first)
			byKernel[st.Kernel] += st.Time
			byStep[labels[i]] += st.Time
			total += st.Time
		}
		kernels.add(byKernel)
		steps.add(byStep)
		totals = append(totals, float64(total)/1e6)
	}
	if len(totals) == 0 {
		return nil
	}
	return &StageReport{GPUMs: SummarizeMs(totals).Median, Kernels: kernels.list(), Forward: steps.list()}
}

// grouping collects per-pass sums under names kept in order of first use.
type grouping struct {
	order []string
	count map[string]int
	ms    map[string][]float64
}

func newGrouping() *grouping { return &grouping{count: map[string]int{}, ms: map[string][]float64{}} }

// see notes one dispatch of key; count says whether it counts.
func (g *grouping) see(key string, count bool) {
	if _, ok := g.count[key]; !ok {
		g.order = append(g.order, key)
		g.count[key] = 0
	}
	if count {
		g.count[key]++
	}
}

// add records one pass's sums.
func (g *grouping) add(sums map[string]time.Duration) {
	for key, d := range sums {
		g.ms[key] = append(g.ms[key], float64(d)/1e6)
	}
}

func (g *grouping) list() []StageTime {
	out := make([]StageTime, len(g.order))
	for i, key := range g.order {
		out[i] = StageTime{Name: key, Dispatches: g.count[key], MsMedian: SummarizeMs(g.ms[key]).Median}
	}
	return out
}

// WriteStages prints a report as two small tables.
func WriteStages(w io.Writer, r *StageReport) {
	if r == nil {
		fmt.Fprintln(w, "  stages: the device records no timestamps")
		return
	}
	for _, part := range []struct {
		title string
		rows  []StageTime
	}{{"kernel", r.Kernels}, {"forward step", r.Forward}} {
		fmt.Fprintf(w, "  %-22s %10s %10s %7s\n", part.title, "dispatches", "GPU ms", "share")
		for _, s := range part.rows {
			share := 0.0
			if r.GPUMs > 0 {
				share = 100 * s.MsMedian / r.GPUMs
			}
			fmt.Fprintf(w, "  %-22s %10d %10.3f %6.1f%%\n", s.Name, s.Dispatches, s.MsMedian, share)
		}
	}
	fmt.Fprintf(w, "  %-22s %10s %10.3f\n", "GPU total", "", r.GPUMs)
}
