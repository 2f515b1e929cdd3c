package benchkit

import (
	"fmt"
	"strings"
)

// Provenance says which build made a record, where and when. Its keys are
// in every record of isab bench.
type Provenance struct {
	ISABVersion string `json:"isab_version"` // module version, "(devel)" for a checkout
	Commit      string `json:"commit"`       // VCS revision, "unknown" when not recorded
	Dirty       *bool  `json:"dirty"`        // uncommitted changes; null when unknown
	GoVersion   string `json:"go_version"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	Timestamp   string `json:"timestamp"` // when the shape was timed, RFC 3339 UTC
}

// Result is one record of isab bench (one line of -o jsonl, the format
// that bench/torch_ref.py also writes).
type Result struct {
	DeviceInfo
	Precision string `json:"precision"`
	B         int    `json:"b"`
	N         int    `json:"n"`
	Dim       int    `json:"dim"`
	Heads     int    `json:"heads"`
	DimHead   int    `json:"dim_head"`
	M         int    `json:"m"`
	SelfAtt   bool   `json:"latent_self_attend"`
	// Iters timed passes were run Reps times: Passes = Iters * Reps, and
	// the statistics below are over all of them.
	Iters    int     `json:"iters"`
	Reps     int     `json:"reps"`
	Passes   int     `json:"passes"`
	MsMean   float64 `json:"ms_mean"`
	MsStddev float64 `json:"ms_stddev"` // sample standard deviation; 0 for one pass
	MsMedian float64 `json:"ms_median"`
	MsMin    float64 `json:"ms_min"`
	MsMax    float64 `json:"ms_max"`
	GFLOPs   float64 `json:"gflops"` // at the median time
	// PeakGFLOPs is the device's float32 multiply-add peak, measured in
	// the same run by its microbenchmark (DevicePeak); nil when it was not
	// measured. Every kernel computes in float32, fp16 ones included (they
	// store halves), except those on cooperative matrices.
	PeakGFLOPs *float64 `json:"peak_gflops"`
	// PeakFP16GFLOPs is the float16 multiply-add peak, measured for fp16
	// records on devices with shaderFloat16.
	PeakFP16GFLOPs *float64 `json:"peak_fp16_gflops"`
	// PeakCoopGFLOPs is the cooperative-matrix peak (DeviceCoopPeak: fp16
	// products accumulated in float32 on the device's
	// VK_KHR_cooperative_matrix shape), measured for fp16 records on
	// devices with a usable shape (CoopPeakShape); nil elsewhere.
	PeakCoopGFLOPs *float64 `json:"peak_coop_gflops"`
	// MatmulGFLOPs is the rate of a square FP32 matmul through ops.Linear
	// measured on the same device in the same run (--peak-n); nil when it
	// was not measured.
	MatmulGFLOPs *float64 `json:"matmul_gflops"`
	// PeakPct is 100 * GFLOPs over the device's peak for the kernels the
	// pass ran (see SetPeakPct): PeakCoopGFLOPs for passes with a step on
	// cooperative matrices, else the best float32 rate measured on the
	// device in the run, PeakGFLOPs or MatmulGFLOPs where the matmul ran
	// faster (a microbenchmark can fall short of the real peak, as on
	// lavapipe); nil when that peak was not measured.
	PeakPct *float64 `json:"peak_pct"`
	// FirstPassMs is the time from recording the pass to the end of its
	// first run: on a device that compiles pipelines at their first
	// dispatch (lavapipe) that is where the compilation goes, so it is the
	// in-process part of a cold start (with Mesa's shader cache empty) or
	// of a warm one (with it filled). bench/coldstart.sh times whole
	// processes both ways.
	FirstPassMs float64 `json:"first_pass_ms"`
	// DeviceMemBytes is the most device memory that buffers held during
	// one forward pass (weights, input, intermediates and outputs).
	DeviceMemBytes int64 `json:"device_mem_bytes"`
	// Kernels names the kernels that each step of the forward pass
	// ("q1", "kv1", "attn1", ...) dispatched, joined by "+" when several.
	Kernels map[string]string `json:"kernels"`
	Provenance
	// Stages holds per-kernel and per-stage GPU times with --stages.
	Stages *StageReport `json:"stages,omitempty"`
}

// UsesCoop reports whether a step of the pass ran a kernel on cooperative
// matrices (one whose name has "coop", such as matmul_coop).
func (r Result) UsesCoop() bool {
	for _, k := range r.Kernels {
		if strings.Contains(k, "coop") {
			return true
		}
	}
	return false
}

// SetPeakPct sets PeakPct from the record's GFLOPs and peaks. A pass with
// a step on cooperative matrices (UsesCoop) is measured against
// PeakCoopGFLOPs, the fastest arithmetic it may use, and gets no share
// when that was not measured. Every other kernel computes in float32, fp16
// ones included (they store halves), so other passes are measured against
// the better of PeakGFLOPs and MatmulGFLOPs, and get no share without
// either.
func (r *Result) SetPeakPct() {
	r.PeakPct = nil
	best := 0.0
	switch {
	case r.UsesCoop():
		if r.PeakCoopGFLOPs != nil {
			best = *r.PeakCoopGFLOPs
		}
	default:
		if r.PeakGFLOPs != nil {
			best = *r.PeakGFLOPs
		}
		if r.MatmulGFLOPs != nil {
			best = max(best, *r.MatmulGFLOPs)
		}
	}
	if best > 0 {
		pct := 100 * r.GFLOPs / best
		r.PeakPct = &pct
	}
}

// Shape is the result's shape.
func (r Result) Shape() Shape { return Shape{B: r.B, N: r.N, Dim: r.Dim, Heads: r.Heads, M: r.M} }

// family groups results that differ only in n.
func (r Result) family() string {
	return fmt.Sprintf("%s dim_head=%d self_attend=%v %s", r.Shape().Family(), r.DimHead, r.SelfAtt, r.Precision)
}

// Scaling is time(NHi)/time(NLo) for one shape family.
type Scaling struct {
	Family   string
	NLo, NHi int
	Ratio    float64
}

// ScalingRatios finds, for every family of results holding both n = lo and
// n = hi, the ratio of their median times, in the order the families first
// appear.
func ScalingRatios(results []Result, lo, hi int) []Scaling {
	type pair struct{ lo, hi float64 }
	var order []string
	byFam := map[string]*pair{}
	for _, r := range results {
		f := r.family()
		p, ok := byFam[f]
		if !ok {
			p = &pair{}
			byFam[f] = p
			order = append(order, f)
		}
		switch r.N {
		case lo:
			p.lo = r.MsMedian
		case hi:
			p.hi = r.MsMedian
		}
	}
	var out []Scaling
	for _, f := range order {
		if p := byFam[f]; p.lo > 0 && p.hi > 0 {
			out = append(out, Scaling{Family: f, NLo: lo, NHi: hi, Ratio: p.hi / p.lo})
		}
	}
	return out
}
