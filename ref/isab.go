package ref

import (
	"fmt"
	"math"
)

// ISABConfig is the shape of an ISAB block.
type ISABConfig struct {
	// Dim is the model width (the feature size of x and the latents).
	Dim int
	// Heads is the number of attention heads.
	Heads int
	// DimHead is the width of each head; the attention's inner width is
	// Heads*DimHead and its scale DimHead^-0.5.
	DimHead int
	// M is the number of latents (inducing points).
	M int
	// LatentSelfAttend makes the first attention's context concat(latents, x)
	// instead of x.
	LatentSelfAttend bool
}

// ISABWeights holds an ISAB block's parameters in PyTorch layout, flat and
// row-major. With inner = Heads*DimHead: Q1 and Q2 (to_q) are [inner, Dim],
// KV1 and KV2 (to_kv) are [2*inner, Dim] with the key rows first, Out1 and
// Out2 (to_out) are [Dim, inner]. The "1" weights belong to attn1 (latents
// attend to the set), the "2" weights to attn2 (the set attends to the
// latents).
type ISABWeights struct {
	// Latents are the learned latents [M, Dim], or nil when latents are
	// always passed in.
	Latents       []float64
	Q1, KV1, Out1 []float64
	Q2, KV2, Out2 []float64
}

// ISAB runs the isab-pytorch ISAB block on x [b, n, Dim]:
//
//	latents' = attn1(query = latents, context = x, or concat(latents, x) along
//	           the set axis when LatentSelfAttend, key mask)
//	out      = attn2(query = x, context = latents')
//
// mask is nil or [b, n] (true = keep) and masks attn1's keys only; with
// LatentSelfAttend the latent keys are always kept. attn2 is unmasked.
// latents is nil (use w.Latents), [M, Dim] shared across the batch (batched
// false) or [b, M, Dim] (batched true). It returns out [b, n, Dim] and
// latents' [b, M, Dim]. Any inconsistent size is an error.
func ISAB(cfg ISABConfig, w ISABWeights, x []float64, b, n int, mask []bool, latents []float64, batched bool) (out, lat []float64, err error) {
	latents, batched, err = checkISAB(cfg, w, x, b, n, mask, latents, batched)
	if err != nil {
		return nil, nil, err
	}
	dim, m := cfg.Dim, cfg.M
	inner := cfg.Heads * cfg.DimHead
	scale := 1 / math.Sqrt(float64(cfg.DimHead))
	nc := n
	if cfg.LatentSelfAttend {
		nc = m + n
	}
	out = make([]float64, b*n*dim)
	lat = make([]float64, b*m*dim)
	for bi := 0; bi < b; bi++ {
		latIn := latents
		if batched {
			latIn = latents[bi*m*dim : (bi+1)*m*dim]
		}
		xb := x[bi*n*dim : (bi+1)*n*dim]
		ctx := xb
		var keep []bool
		if cfg.LatentSelfAttend {
			ctx = make([]float64, 0, nc*dim)
			ctx = append(append(ctx, latIn...), xb...)
		}
		if mask != nil {
			mb := mask[bi*n : (bi+1)*n]
			if cfg.LatentSelfAttend {
				keep = make([]bool, m, nc)
				for i := range keep {
					keep[i] = true
				}
				keep = append(keep, mb...)
			} else {
				keep = mb
			}
		}
		l := attend(cfg, w.Q1, w.KV1, w.Out1, latIn, m, ctx, nc, inner, scale, keep)
		copy(lat[bi*m*dim:], l)
		o := attend(cfg, w.Q2, w.KV2, w.Out2, xb, n, l, m, inner, scale, nil)
		copy(out[bi*n*dim:], o)
	}
	return out, lat, nil
}

// checkISAB checks ISAB's arguments against cfg and each other, and
// returns the latents to use (the learned ones when latents is nil) and
// whether they are per batch element.
func checkISAB(cfg ISABConfig, w ISABWeights, x []float64, b, n int, mask []bool, latents []float64, batched bool) ([]float64, bool, error) {
	if cfg.Dim < 1 || cfg.Heads < 1 || cfg.DimHead < 1 || cfg.M < 1 {
		return nil, false, fmt.Errorf("ref: ISAB: config %+v: Dim, Heads, DimHead and M must be positive", cfg)
	}
	if b < 1 || n < 1 {
		return nil, false, fmt.Errorf("ref: ISAB: batch %d and set size %d must be positive", b, n)
	}
	dim, m := cfg.Dim, cfg.M
	inner, ok := mul(cfg.Heads, cfg.DimHead)
	if !ok {
		return nil, false, fmt.Errorf("ref: ISAB: heads*dim_head overflows")
	}
	checks := []sizeCheck{
		{"to_q weight of attn1", len(w.Q1), []int{inner, dim}},
		{"to_kv weight of attn1", len(w.KV1), []int{2, inner, dim}},
		{"to_out weight of attn1", len(w.Out1), []int{dim, inner}},
		{"to_q weight of attn2", len(w.Q2), []int{inner, dim}},
		{"to_kv weight of attn2", len(w.KV2), []int{2, inner, dim}},
		{"to_out weight of attn2", len(w.Out2), []int{dim, inner}},
		{"x", len(x), []int{b, n, dim}},
	}
	if mask != nil {
		checks = append(checks, sizeCheck{"mask", len(mask), []int{b, n}})
	}
	switch {
	case latents == nil:
		if w.Latents == nil {
			return nil, false, fmt.Errorf("ref: ISAB: no latents given and the weights hold none")
		}
		latents, batched = w.Latents, false
		checks = append(checks, sizeCheck{"learned latents", len(latents), []int{m, dim}})
	case batched:
		checks = append(checks, sizeCheck{"latents", len(latents), []int{b, m, dim}})
	default:
		checks = append(checks, sizeCheck{"latents", len(latents), []int{m, dim}})
	}
	if _, ok := mul(b, m, dim); !ok {
		return nil, false, fmt.Errorf("ref: ISAB: size of the latents output [%d %d %d] overflows", b, m, dim)
	}
	for _, c := range checks {
		want, ok := mul(c.dims...)
		if !ok {
			return nil, false, fmt.Errorf("ref: ISAB: size of %s %v overflows", c.name, c.dims)
		}
		if c.got != want {
			return nil, false, fmt.Errorf("ref: ISAB: %s has %d elements, want %v = %d", c.name, c.got, c.dims, want)
		}
	}
	return latents, batched, nil
}

// sizeCheck is one slice whose length must be the product of dims.
type sizeCheck struct {
	name string
	got  int
	dims []int
}

// attend is isab-pytorch's Attention module: to_out(attention(to_q(query),
// split(to_kv(context)))), with no biases.
func attend(cfg ISABConfig, wq, wkv, wout, query []float64, nq int, ctx []float64, nc, inner int, scale float64, keep []bool) []float64 {
	dim := cfg.Dim
	q := Linear(query, nq, dim, wq, inner, nil)
	// The first inner rows of to_kv produce k, the rest v.
	k := Linear(ctx, nc, dim, wkv[:inner*dim], inner, nil)
	v := Linear(ctx, nc, dim, wkv[inner*dim:], inner, nil)
	o := Attention(q, nq, k, v, nc, cfg.Heads, cfg.DimHead, scale, keep)
	return Linear(o, nq, inner, wout, dim, nil)
}

// mul multiplies non-negative sizes, reporting false on overflow.
func mul(dims ...int) (int, bool) {
	p := 1
	for _, d := range dims {
		if d < 0 || (d != 0 && p > math.MaxInt/d) {
			return 0, false
		}
		p *= d
	}
	return p, true
}
