// Package ref is a plain float64 implementation of the operations the GPU
// kernels compute: PyTorch-layout linear layers, masked softmax, multi-head
// attention, the ISAB block of isab-pytorch, and the LayerNorm and MAB of the
// Set Transformer. Tests compare the kernels'
// float32 results against it with NMSE.
//
// The building blocks (Linear, MaskedSoftmax, Attention) take flat row-major
// slices and panic with a descriptive message when a slice length does not
// match the stated shape, as index errors in a test helper would; ISAB checks
// every length first and returns an error instead.
package ref

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// MaskValue is the logit given to masked positions before the softmax: the
// negated float32 maximum, as isab-pytorch's masked_fill uses. It is finite,
// so a row whose keys are all masked becomes a uniform average.
const MaskValue float64 = -math.MaxFloat32

// Linear returns y [rows, out] = x [rows, in] * w^T (+ b), with w in PyTorch
// Linear layout [out, in]; b may be nil, else it has length out.
func Linear(x []float64, rows, in int, w []float64, out int, b []float64) []float64 {
	checkLen("Linear: x", x, rows, in)
	checkLen("Linear: w", w, out, in)
	if b != nil {
		checkLen("Linear: b", b, out, 1)
	}
	y := make([]float64, rows*out)
	// Work in tiles of rowTile x rows against outTile weight rows so each
	// weight row is loaded once per four input rows and stays in cache.
	const rowTile, outTile = 4, 32
	nTiles := (rows + rowTile - 1) / rowTile
	parallel(nTiles, rows*out*in, func(lo, hi int) {
		for o0 := 0; o0 < out; o0 += outTile {
			o1 := min(o0+outTile, out)
			for tile := lo; tile < hi; tile++ {
				r0 := tile * rowTile
				r1 := min(r0+rowTile, rows)
				if r1-r0 == rowTile {
					x0 := x[r0*in : r0*in+in]
					x1 := x[(r0+1)*in : (r0+1)*in+in]
					x2 := x[(r0+2)*in : (r0+2)*in+in]
					x3 := x[(r0+3)*in : (r0+3)*in+in]
					for o := o0; o < o1; o++ {
						wr := w[o*in : o*in+in]
						var s0, s1, s2, s3 float64
						for k, wk := range wr {
							s0 += x0[k] * wk
							s1 += x1[k] * wk
							s2 += x2[k] * wk
							s3 += x3[k] * wk
						}
						y[r0*out+o] = s0
						y[(r0+1)*out+o] = s1
						y[(r0+2)*out+o] = s2
						y[(r0+3)*out+o] = s3
					}
					continue
				}
				for r := r0; r < r1; r++ {
					xr := x[r*in : r*in+in]
					for o := o0; o < o1; o++ {
						y[r*out+o] = dot(xr, w[o*in:o*in+in])
					}
				}
			}
		}
	})
	if b != nil {
		for r := 0; r < rows; r++ {
			yr := y[r*out : r*out+out]
			for o := range yr {
				yr[o] += b[o]
			}
		}
	}
	return y
}

// MaskedSoftmax applies a softmax to each row of x [rows, cols] after
// scaling it by scale. keep is nil or has length cols and applies to every
// row: where keep[j] is false the scaled logit is replaced by MaskValue.
func MaskedSoftmax(x []float64, rows, cols int, scale float64, keep []bool) []float64 {
	checkLen("MaskedSoftmax: x", x, rows, cols)
	if keep != nil {
		checkLen("MaskedSoftmax: keep", keep, cols, 1)
	}
	y := make([]float64, len(x))
	for r := 0; r < rows; r++ {
		row := y[r*cols : r*cols+cols]
		for j := range row {
			row[j] = x[r*cols+j] * scale
		}
		softmaxInPlace(row, keep)
	}
	return y
}

// softmaxInPlace masks (keep may be nil) and normalises v in place.
func softmaxInPlace(v []float64, keep []bool) {
	if len(v) == 0 {
		return
	}
	mx := math.Inf(-1)
	for j := range v {
		if keep != nil && !keep[j] {
			v[j] = MaskValue
		}
		mx = math.Max(mx, v[j])
	}
	sum := 0.0
	for j, s := range v {
		e := math.Exp(s - mx)
		v[j] = e
		sum += e
	}
	for j := range v {
		v[j] /= sum
	}
}

// Attention computes multi-head scaled dot-product attention. q is
// [nq, heads*dh]; k and v are [nk, heads*dh]; head h owns columns
// h*dh .. h*dh+dh-1. keep is nil or has length nk (true = attend) and applies
// to every query. The result is [nq, heads*dh]:
// concat_h softmax(q_h k_h^T * scale, masked) v_h.
func Attention(q []float64, nq int, k, v []float64, nk int, heads, dh int, scale float64, keep []bool) []float64 {
	inner := heads * dh
	checkLen("Attention: q", q, nq, inner)
	checkLen("Attention: k", k, nk, inner)
	checkLen("Attention: v", v, nk, inner)
	if keep != nil {
		checkLen("Attention: keep", keep, nk, 1)
	}
	out := make([]float64, nq*inner)
	parallel(nq, nq*nk*inner*2, func(lo, hi int) {
		p := make([]float64, nk)
		for i := lo; i < hi; i++ {
			for h := 0; h < heads; h++ {
				c := h * dh
				qi := q[i*inner+c : i*inner+c+dh]
				for j := range p {
					p[j] = dot(qi, k[j*inner+c:j*inner+c+dh]) * scale
				}
				softmaxInPlace(p, keep)
				oi := out[i*inner+c : i*inner+c+dh]
				for j, pj := range p {
					vj := v[j*inner+c : j*inner+c+dh]
					for d := range oi {
						oi[d] += pj * vj[d]
					}
				}
			}
		}
	})
	return out
}

// NMSE returns the normalised mean squared error sum((got-want)^2) /
// sum(want^2) of a float32 result against a float64 reference. When want is
// all zeros it returns sum(got^2); when the lengths differ it returns +Inf.
func NMSE(got []float32, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i, w := range want {
		d := float64(got[i]) - w
		num += d * d
		den += w * w
	}
	if den == 0 {
		return num
	}
	return num / den
}

// NMSE64 is NMSE for a float64 result.
func NMSE64(got, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i, w := range want {
		d := got[i] - w
		num += d * d
		den += w * w
	}
	if den == 0 {
		return num
	}
	return num / den
}

// dot returns the dot product of two equal-length slices.
func dot(a, b []float64) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	k := 0
	for ; k+4 <= len(a); k += 4 {
		s0 += a[k] * b[k]
		s1 += a[k+1] * b[k+1]
		s2 += a[k+2] * b[k+2]
		s3 += a[k+3] * b[k+3]
	}
	for ; k < len(a); k++ {
		s0 += a[k] * b[k]
	}
	return (s0 + s1) + (s2 + s3)
}

// checkLen panics with a descriptive message unless len(s) == rows*cols.
func checkLen[T any](what string, s []T, rows, cols int) {
	if rows < 0 || cols < 0 || len(s) != rows*cols {
		panic(fmt.Sprintf("ref: %s has length %d, want %d x %d", what, len(s), rows, cols))
	}
}

// parallel runs body over [0, n) split into contiguous chunks, one per CPU,
// when the total work (a rough operation count) is large enough to pay for
// the goroutines. Each index is handled by exactly one call, so results do
// not depend on the number of CPUs.
func parallel(n, work int, body func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers > n {
		workers = n
	}
	if workers <= 1 || work < 1<<18 {
		body(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(lo, hi)
		}()
	}
	wg.Wait()
}
