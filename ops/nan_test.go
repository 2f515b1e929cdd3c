package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/vk"
)

// The NaN and infinity semantics of isab-pytorch, held by the kernels on
// every implementation: GLSL's max, min and exp leave results undefined for
// a NaN operand, and Vulkan lets a driver assume that no operand is NaN or
// infinite. softmax.comp tests the bits of its logits; the attention kernels
// are checked here on lavapipe and SwiftShader.

// checkSpecials fails t unless got is NaN exactly where want is and
// matches want (NMSE) everywhere else.
func checkSpecials(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var g []float32
	var w []float64
	nans, bad := 0, 0
	for i := range got {
		gn, wn := got[i] != got[i], math.IsNaN(want[i])
		if wn {
			nans++
		}
		if gn != wn {
			if bad++; bad <= 5 {
				t.Errorf("%s: element %d = %v, want %v", what, i, got[i], want[i])
			}
			continue
		}
		if !wn {
			g, w = append(g, got[i]), append(w, want[i])
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d elements in all differ in NaN-ness", what, bad)
	}
	if nans == 0 {
		t.Fatalf("%s: the reference has no NaN: the case proves nothing", what)
	}
	checkNMSE(t, what+" (the values that are not NaN)", g, w)
}

// TestSoftmaxSpecials runs rows holding a NaN, +inf, -inf only, a masked
// NaN (masked_fill replaces it) and a fully masked row, in both
// configurations, against the float64 reference.
func TestSoftmaxSpecials(t *testing.T) { bothConfigs(t, testSoftmaxSpecials) }

func testSoftmaxSpecials(t *testing.T, o *Ops) {
	d := o.Device()
	nan, inf := math.NaN(), math.Inf(1)
	const cols = 7
	rows := [][]float64{
		{1, nan, 2, 3, 4, 5, 6},                    // NaN: the whole row is NaN
		{1, 2, 3, 4, 5, 6, 7},                      // finite
		{1, inf, 2, 3, 4, 5, 6},                    // +inf: exp(inf - inf) is NaN
		{-inf, -inf, -inf, -inf, -inf, -inf, -inf}, // every logit -inf: NaN
		{-inf, 0, 1, -inf, 2, 3, 4},                // some -inf: weight 0 there
		{nan, 0, 1, 2, 3, 4, 5},                    // NaN under the mask: replaced
		{nan, nan, 1, 2, 3, 4, 5},                  // every column masked: uniform
	}
	keep := make([]bool, len(rows)*cols)
	mask := make([]uint32, len(rows)*cols)
	for r := range rows {
		for c := range cols {
			k := !(r == 5 && c == 0) && r != 6
			keep[r*cols+c] = k
			if k {
				mask[r*cols+c] = 1
			}
		}
	}
	x := make([]float32, 0, len(rows)*cols)
	xd := make([]float64, 0, len(rows)*cols)
	for _, row := range rows {
		for _, v := range row {
			x, xd = append(x, float32(v)), append(xd, v)
		}
	}
	var want []float64
	for r := range rows {
		want = append(want, ref.MaskedSoftmax(xd[r*cols:(r+1)*cols], 1, cols, 1, keep[r*cols:(r+1)*cols])...)
	}
	xm := Dense(upload(t, d, x), 0, len(rows), cols)
	ym := Dense(newBuf(t, d, len(x)), 0, len(rows), cols)
	mb := upload(t, d, mask)
	run(t, d, func(seq *vk.Sequence) error { return o.Softmax(seq, xm, ym, 1, mb, 0, 1, cols) })
	checkSpecials(t, "Softmax", readMat(t, ym), want)
}

// TestAttentionNaN puts a NaN into a query, a key and a value of an
// attention, with and without a mask, in every configuration and with key
// splits (attn_combine), and checks that the NaNs reach exactly the outputs
// they reach in the float64 reference: a query's NaN its own head's row, an
// unmasked key's NaN every query's head, a masked one nothing (masked_fill
// replaces the score), a value's NaN its dimension in every query (also
// under a mask: 0 * NaN is NaN in attn @ v).
func TestAttentionNaN(t *testing.T) {
	for _, opts := range [][]Option{nil, {KeysPerSplit(16)}} {
		t.Run(fmt.Sprintf("split%v", len(opts) > 0), func(t *testing.T) {
			bothConfigs(t, func(t *testing.T, o *Ops) {
				rng := rand.New(rand.NewPCG(91, 92))
				f, tr := false, true
				for _, c := range []attnCase{
					{batch: 2, nq: 5, heads: 2, dh: 8, nk: []int{33}, sharedKV: []bool{f}, masked: []bool{f}},
					{batch: 2, nq: 7, heads: 2, dh: 33, nk: []int{40}, sharedKV: []bool{f}, masked: []bool{tr}},
				} {
					t.Run(c.String(), func(t *testing.T) { runAttentionNaN(t, o, rng, c) })
				}
			}, opts...)
		})
	}
}

// runAttentionNaN runs case c (one source) with NaNs placed in Q, K and V.
func runAttentionNaN(t *testing.T, o *Ops, rng *rand.Rand, c attnCase) {
	d := o.Device()
	l := attnLayout{pad: 3, maskOff: 2}
	fx := newAttnFixture(t, d, rng, c, l)
	hd, nk := c.heads*c.dh, c.nk[0]
	src := &fx.srcs[0]
	setNaN := func(m *strided, ld, cols, row, col int) {
		m.host[l.pad+row*ld+col] = float32(math.NaN())
		m.dense[row*cols+col] = math.NaN()
	}
	// Query 1 of batch 0, head 0.
	setNaN(&fx.q, hd+l.pad, hd, 1, 2)
	// Batch 1: a key of head 1 and a value of head 0, unmasked; with a
	// mask, also a key and a value that are masked out.
	unmasked, masked := -1, -1
	for j := range nk {
		if src.keep == nil || src.keep[1][j] {
			unmasked = j
		} else {
			masked = j
		}
	}
	ld := src.width + l.pad
	setNaN(&src.kv, ld, src.width, nk+unmasked, src.kOff+c.dh)
	setNaN(&src.kv, ld, src.width, nk+(unmasked+1)%nk, src.vOff+1)
	if masked >= 0 {
		setNaN(&src.kv, ld, src.width, nk+masked, src.kOff+c.dh+1)
		setNaN(&src.kv, ld, src.width, nk+masked, src.vOff+c.dh+3)
	}
	fx.a.Q.Buf = upload(t, d, fx.q.host)
	fx.a.Sources[0].KV.Buf = upload(t, d, src.kv.host)
	run(t, d, func(seq *vk.Sequence) error { return o.Attention(seq, fx.a, scratchFor(t, d)) })
	checkSpecials(t, "Attention", readMat(t, fx.a.Out), attnReference(c, fx.q, fx.srcs, fx.scale))
}
