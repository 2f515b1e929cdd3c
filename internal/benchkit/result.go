package benchkit

import "fmt"

// Result is one line of `isab bench --json` (and of bench/torch_ref.py).
type Result struct {
	Device    string  `json:"device"`
	Precision string  `json:"precision"`
	B         int     `json:"b"`
	N         int     `json:"n"`
	Dim       int     `json:"dim"`
	Heads     int     `json:"heads"`
	DimHead   int     `json:"dim_head"`
	M         int     `json:"m"`
	SelfAtt   bool    `json:"latent_self_attend"`
	MsMedian  float64 `json:"ms_median"`
	MsMin     float64 `json:"ms_min"`
	MsMax     float64 `json:"ms_max"`
	GFLOPs    float64 `json:"gflops"`
	// PeakGFLOPs is the rate of a square FP32 matmul measured on the same
	// device in the same run; nil when it was not measured.
	PeakGFLOPs *float64 `json:"peak_gflops"`
	// DeviceMemBytes is the most device memory that buffers held during
	// one forward pass (weights, input, intermediates and outputs).
	DeviceMemBytes int64 `json:"device_mem_bytes"`
	// Stages holds per-kernel and per-stage GPU times with --stages.
	Stages *StageReport `json:"stages,omitempty"`
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
