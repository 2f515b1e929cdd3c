package ref

import "math"

// LayerNormEps is the eps of the Set Transformer's LayerNorms (PyTorch's
// default).
const LayerNormEps = 1e-5

// LayerNorm returns PyTorch's LayerNorm over the last axis of x [rows, cols]:
// (x - mean) / sqrt(var + eps) * w + b per row, with the biased variance.
// w and b have length cols.
func LayerNorm(x []float64, rows, cols int, w, b []float64, eps float64) []float64 {
	checkLen("LayerNorm: x", x, rows, cols)
	checkLen("LayerNorm: w", w, cols, 1)
	checkLen("LayerNorm: b", b, cols, 1)
	y := make([]float64, rows*cols)
	for r := 0; r < rows; r++ {
		row := x[r*cols : r*cols+cols]
		mean := 0.0
		for _, v := range row {
			mean += v
		}
		mean /= float64(cols)
		variance := 0.0
		for _, v := range row {
			variance += (v - mean) * (v - mean)
		}
		variance /= float64(cols)
		rstd := 1 / math.Sqrt(variance+eps)
		for c, v := range row {
			y[r*cols+c] = (v-mean)*rstd*w[c] + b[c]
		}
	}
	return y
}

// MABWeights are the parameters of the Set Transformer's multihead
// attention block, in PyTorch layout: fc_q [dim, dimQ], fc_k and fc_v
// [dim, dimK], fc_o [dim, dim], each with a bias [dim]; the LayerNorms ln0
// and ln1 ([dim] weight and bias) are nil when the block has none.
type MABWeights struct {
	QW, QB, KW, KB, VW, VB, OW, OB []float64
	LN0W, LN0B, LN1W, LN1B         []float64
}

// MAB is the Set Transformer's MAB(Q, K) for one set, as the paper
// authors' code computes it, with q [nq, dimQ] and k [nk, dimK]:
//
//	Q' = fc_q(Q), K' = fc_k(K), V' = fc_v(K)
//	O  = concat_h(Q'_h + softmax(Q'_h K'_h^T / sqrt(dim)) V'_h)
//	O  = ln0(O); O = O + relu(fc_o(O)); O = ln1(O)
//
// where the heads split the dim features into equal chunks and the scale
// uses the full width dim. The result is [nq, dim].
func MAB(w MABWeights, dimQ, dimK, dim, heads int, q []float64, nq int, k []float64, nk int) []float64 {
	qp := Linear(q, nq, dimQ, w.QW, dim, w.QB)
	kp := Linear(k, nk, dimK, w.KW, dim, w.KB)
	vp := Linear(k, nk, dimK, w.VW, dim, w.VB)
	o := Attention(qp, nq, kp, vp, nk, heads, dim/heads, 1/math.Sqrt(float64(dim)), nil)
	for i := range o {
		o[i] += qp[i]
	}
	if w.LN0W != nil {
		o = LayerNorm(o, nq, dim, w.LN0W, w.LN0B, LayerNormEps)
	}
	f := Linear(o, nq, dim, w.OW, dim, w.OB)
	for i := range o {
		o[i] += max(f[i], 0)
	}
	if w.LN1W != nil {
		o = LayerNorm(o, nq, dim, w.LN1W, w.LN1B, LayerNormEps)
	}
	return o
}
