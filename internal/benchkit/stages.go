package benchkit

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/isab-vk/isab-vk/isab"
	"github.com/isab-vk/isab-vk/ops"
)

// StageTime is the GPU time of one group of dispatches, the median over
// the timed forward passes of the per-pass sum.
type StageTime struct {
	Name       string  `json:"name"`
	Dispatches int     `json:"dispatches"` // per forward pass
	MsMedian   float64 `json:"ms_median"`
	// Kernels are the kernels (shader variants) a forward step dispatched,
	// in order of first use; empty for the per-kernel rows.
	Kernels []string `json:"kernels,omitempty"`
}

// StageReport is the --stages breakdown of one shape.
type StageReport struct {
	// GPUMs is the median over passes of the summed GPU time of every dispatch.
	GPUMs float64 `json:"gpu_ms"`
	// Kernels groups dispatches by kernel name, in order of first use.
	Kernels []StageTime `json:"kernels"`
	// Forward groups dispatches by step of the forward pass
	// (isab.StageTime.Stage), in order of first use.
	Forward []StageTime `json:"forward"`
	// Choices says, per Linear and Attention step of the forward pass,
	// which implementation ops chose and why the others declined (see
	// ops.Choice); the caller fills it in.
	Choices []StepChoice `json:"choices,omitempty"`
}

// StepChoice is the implementation choice of one step of the forward pass.
type StepChoice struct {
	Step string `json:"step"` // the forward step (isab.StageTime.Stage)
	Call string `json:"call"` // the op and its shape, e.g. "Linear 128x512 -> 512"
	ops.Choice
}

// AggregateStages sums the dispatch times of each pass by kernel name and
// by forward step and takes the median over passes; dispatch counts come
// from the first timed pass. Passes without timestamps are skipped; it
// returns nil when no pass has any.
func AggregateStages(passes [][]isab.StageTime) *StageReport {
	kernels, steps := newGrouping(), newGrouping()
	stepKernels := map[string][]string{}
	var totals []float64
	for _, pass := range passes {
		if len(pass) == 0 {
			continue
		}
		first := len(totals) == 0
		byKernel, byStep := map[string]time.Duration{}, map[string]time.Duration{}
		var total time.Duration
		for _, st := range pass {
			stage := st.Stage
			if stage == "" {
				stage = "unlabelled"
			}
			kernels.see(st.Kernel, first)
			steps.see(stage, first)
			if !slices.Contains(stepKernels[stage], st.Kernel) {
				stepKernels[stage] = append(stepKernels[stage], st.Kernel)
			}
			byKernel[st.Kernel] += st.Time
			byStep[stage] += st.Time
			total += st.Time
		}
		kernels.add(byKernel)
		steps.add(byStep)
		totals = append(totals, float64(total)/1e6)
	}
	if len(totals) == 0 {
		return nil
	}
	forward := steps.list()
	for i := range forward {
		forward[i].Kernels = stepKernels[forward[i].Name]
	}
	return &StageReport{GPUMs: SummarizeMs(totals).Median, Kernels: kernels.list(), Forward: forward}
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

// WriteStages prints a report as two small tables, the forward steps with
// the kernels each dispatched, then the implementation choices, if any.
func WriteStages(w io.Writer, r *StageReport) {
	if r == nil {
		fmt.Fprintln(w, "  stages: the device records no timestamps")
		return
	}
	for _, part := range []struct {
		title   string
		rows    []StageTime
		kernels bool
	}{{"kernel", r.Kernels, false}, {"forward step", r.Forward, true}} {
		fmt.Fprintf(w, "  %-22s %10s %10s %7s", part.title, "dispatches", "GPU ms", "share")
		if part.kernels {
			fmt.Fprintf(w, "  %s", "kernels")
		}
		fmt.Fprintln(w)
		for _, s := range part.rows {
			share := 0.0
			if r.GPUMs > 0 {
				share = 100 * s.MsMedian / r.GPUMs
			}
			fmt.Fprintf(w, "  %-22s %10d %10.3f %6.1f%%", s.Name, s.Dispatches, s.MsMedian, share)
			if part.kernels {
				fmt.Fprintf(w, "  %s", strings.Join(s.Kernels, "+"))
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "  %-22s %10s %10.3f\n", "GPU total", "", r.GPUMs)
	if len(r.Choices) > 0 {
		fmt.Fprintln(w, "  implementation choices (why the others decline):")
		WriteChoices(w, "    ", r.Choices)
	}
}

// WriteChoices prints one line per step: the step, the call, the chosen
// kernel, and each other candidate's reason.
func WriteChoices(w io.Writer, indent string, choices []StepChoice) {
	for _, c := range choices {
		kernel := c.Kernel
		if c.Chosen == "" {
			kernel = "(none)"
		}
		var why []string
		for _, cand := range c.Candidates {
			if !cand.Chosen {
				why = append(why, cand.Name+": "+cand.Why)
			}
		}
		fmt.Fprintf(w, "%s%-6s %-52s %-16s %s\n", indent, c.Step, c.Call, kernel, strings.Join(why, "; "))
	}
}
