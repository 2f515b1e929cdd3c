package ref

import (
	"math"
	"math/rand"
	"strings"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }

func expectSlice(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: length %d, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !near(got[i], want[i], tol) {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func randSlice(r *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = r.NormFloat64()
	}
	return s
}

func TestLinearHand(t *testing.T) {
	x := []float64{1, 2, 3, 4}
	w := []float64{1, 0, 0, 1, 1, 1}
	expectSlice(t, "with bias", Linear(x, 2, 2, w, 3, []float64{10, 20, 30}), []float64{11, 22, 33, 13, 24, 37}, 0)
	expectSlice(t, "no bias", Linear(x, 2, 2, w, 3, nil), []float64{1, 2, 3, 3, 4, 7}, 0)
	if got := Linear(nil, 0, 3, make([]float64, 6), 2, nil); len(got) != 0 {
		t.Errorf("zero rows: %v", got)
	}
}

// naiveLinear is the textbook triple loop.
func naiveLinear(x []float64, rows, in int, w []float64, out int, b []float64) []float64 {
	y := make([]float64, rows*out)
	for r := 0; r < rows; r++ {
		for o := 0; o < out; o++ {
			s := 0.0
			if b != nil {
				s = b[o]
			}
			for k := 0; k < in; k++ {
				s += x[r*in+k] * w[o*in+k]
			}
			y[r*out+o] = s
		}
	}
	return y
}

func TestLinearShapes(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, s := range [][3]int{{1, 1, 1}, {7, 33, 5}, {4, 8, 33}, {9, 3, 64}, {257, 65, 70}, {33, 1, 1}} {
		rows, in, out := s[0], s[1], s[2]
		x, w, b := randSlice(r, rows*in), randSlice(r, out*in), randSlice(r, out)
		expectSlice(t, "linear", Linear(x, rows, in, w, out, b), naiveLinear(x, rows, in, w, out, b), 1e-12)
		expectSlice(t, "linear nil bias", Linear(x, rows, in, w, out, nil), naiveLinear(x, rows, in, w, out, nil), 1e-12)
	}
}

func TestLinearPanicsOnBadLength(t *testing.T) {
	defer func() {
		if v := recover(); v == nil || !strings.Contains(v.(string), "Linear: w") {
			t.Errorf("recovered %v", v)
		}
	}()
	Linear([]float64{1, 2}, 1, 2, []float64{1}, 1, nil)
}

func TestMaskedSoftmax(t *testing.T) {
	ln2 := math.Ln2
	// Row 0: logits 0, ln2 -> 1/3, 2/3. Row 1: equal logits -> uniform.
	got := MaskedSoftmax([]float64{0, 2 * ln2, 5, 5}, 2, 2, 0.5, nil)
	expectSlice(t, "plain", got, []float64{1.0 / 3, 2.0 / 3, 0.5, 0.5}, 1e-15)

	got = MaskedSoftmax([]float64{0, ln2, 100, 0, ln2, 100}, 2, 3, 1, []bool{true, true, false})
	expectSlice(t, "masked", got, []float64{1.0 / 3, 2.0 / 3, 0, 1.0 / 3, 2.0 / 3, 0}, 1e-15)

	// All keys masked: every logit becomes MaskValue, so the row is uniform.
	got = MaskedSoftmax([]float64{1, 2, 3, 4}, 1, 4, 1, []bool{false, false, false, false})
	expectSlice(t, "all masked", got, []float64{0.25, 0.25, 0.25, 0.25}, 1e-15)

	// A masked key gets exactly zero weight even against large negative logits.
	got = MaskedSoftmax([]float64{-1e30, 1e30}, 1, 2, 1, []bool{true, false})
	expectSlice(t, "masked beats large logit", got, []float64{1, 0}, 0)

	if MaskValue != -3.4028234663852886e38 {
		t.Errorf("MaskValue = %v", MaskValue)
	}
}

func TestAttentionHand(t *testing.T) {
	ln2 := math.Ln2
	// One head of width 1: scores 0 and ln2 -> weights 1/3, 2/3 of v = 3, 6.
	got := Attention([]float64{1}, 1, []float64{0, ln2}, []float64{3, 6}, 2, 1, 1, 1, nil)
	expectSlice(t, "one head", got, []float64{5}, 1e-15)

	// Two heads of width 1 are independent: head 1 sees scores 0, 0.
	q := []float64{1, 1}
	k := []float64{0, 0, ln2, 0}
	v := []float64{3, 10, 6, 20}
	got = Attention(q, 1, k, v, 2, 2, 1, 1, nil)
	expectSlice(t, "two heads", got, []float64{5, 15}, 1e-15)

	// Masking the second key leaves the first.
	got = Attention(q, 1, k, v, 2, 2, 1, 1, []bool{true, false})
	expectSlice(t, "masked", got, []float64{3, 10}, 1e-15)

	// All keys masked: the uniform average of the values.
	got = Attention(q, 1, k, v, 2, 2, 1, 1, []bool{false, false})
	expectSlice(t, "all masked", got, []float64{4.5, 15}, 1e-15)
}

// TestAttentionComposed checks Attention against Linear and MaskedSoftmax
// composed per head, on odd sizes.
func TestAttentionComposed(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for _, s := range [][4]int{{1, 1, 1, 1}, {7, 33, 3, 5}, {33, 7, 2, 64}, {257, 40, 4, 16}} {
		nq, nk, heads, dh := s[0], s[1], s[2], s[3]
		inner := heads * dh
		q, k, v := randSlice(r, nq*inner), randSlice(r, nk*inner), randSlice(r, nk*inner)
		keep := make([]bool, nk)
		for j := range keep {
			keep[j] = r.Intn(3) > 0
		}
		scale := 1 / math.Sqrt(float64(dh))
		got := Attention(q, nq, k, v, nk, heads, dh, scale, keep)
		want := make([]float64, nq*inner)
		for h := 0; h < heads; h++ {
			qh, kh, vhT := make([]float64, nq*dh), make([]float64, nk*dh), make([]float64, dh*nk)
			for i := 0; i < nq; i++ {
				copy(qh[i*dh:], q[i*inner+h*dh:i*inner+h*dh+dh])
			}
			for j := 0; j < nk; j++ {
				copy(kh[j*dh:], k[j*inner+h*dh:j*inner+h*dh+dh])
				for d := 0; d < dh; d++ {
					vhT[d*nk+j] = v[j*inner+h*dh+d]
				}
			}
			p := MaskedSoftmax(Linear(qh, nq, dh, kh, nk, nil), nq, nk, scale, keep)
			oh := Linear(p, nq, nk, vhT, dh, nil)
			for i := 0; i < nq; i++ {
				copy(want[i*inner+h*dh:], oh[i*dh:i*dh+dh])
			}
		}
		if e := NMSE64(got, want); e > 1e-28 {
			t.Errorf("%v: NMSE %g", s, e)
		}
	}
}

func TestNMSE(t *testing.T) {
	if e := NMSE([]float32{1, 2}, []float64{1, 2}); e != 0 {
		t.Errorf("equal: %g", e)
	}
	if e := NMSE([]float32{2, 0}, []float64{1, 1}); e != 1 {
		t.Errorf("NMSE = %g, want 1", e)
	}
	if e := NMSE64([]float64{3, 4}, []float64{0, 0}); e != 25 {
		t.Errorf("zero want: %g, want 25", e)
	}
	if e := NMSE([]float32{3, 4}, []float64{0, 0}); e != 25 {
		t.Errorf("zero want: %g, want 25", e)
	}
	if e := NMSE64([]float64{1}, []float64{1, 2}); !math.IsInf(e, 1) {
		t.Errorf("length mismatch: %g", e)
	}
	if e := NMSE([]float32{1}, nil); !math.IsInf(e, 1) {
		t.Errorf("length mismatch: %g", e)
	}
}

// onesWeights returns ISAB weights for Dim = Heads = DimHead = M = 1 with
// every projection the identity.
func onesWeights(latent float64) ISABWeights {
	return ISABWeights{
		Latents: []float64{latent},
		Q1:      []float64{1}, KV1: []float64{1, 1}, Out1: []float64{1},
		Q2: []float64{1}, KV2: []float64{1, 1}, Out2: []float64{1},
	}
}

func TestISABHand(t *testing.T) {
	ln2 := math.Ln2
	cfg := ISABConfig{Dim: 1, Heads: 1, DimHead: 1, M: 1}
	w := onesWeights(1)
	// The latent (1) attends to x = 0, ln2 with weights 1/3, 2/3, giving
	// 2ln2/3; attn2 has one key, so every output is that latent.
	x := []float64{0, ln2}
	l := 2 * ln2 / 3
	out, lat, err := ISAB(cfg, w, x, 1, 2, nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	expectSlice(t, "lat", lat, []float64{l}, 1e-15)
	expectSlice(t, "out", out, []float64{l, l}, 1e-15)

	// Batch of two with a mask: batch 0 keeps only x=0; batch 1 masks all,
	// giving the uniform average.
	x2 := []float64{0, ln2, 0, ln2}
	out, lat, err = ISAB(cfg, w, x2, 2, 2, []bool{true, false, false, false}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	expectSlice(t, "masked lat", lat, []float64{0, ln2 / 2}, 1e-15)
	expectSlice(t, "masked out", out, []float64{0, 0, ln2 / 2, ln2 / 2}, 1e-15)

	// Self-attention over concat(latent, x): latent 0 gives scores 0, 0, 0 -> mean.
	cfg.LatentSelfAttend = true
	_, lat, err = ISAB(cfg, w, []float64{3, 6}, 1, 2, nil, []float64{0}, false)
	if err != nil {
		t.Fatal(err)
	}
	expectSlice(t, "self-attend lat", lat, []float64{3}, 1e-15)
	// With every x masked only the latent's own key remains, so the latent
	// (0) attends to itself alone.
	_, lat, err = ISAB(cfg, w, []float64{3, 6}, 1, 2, []bool{false, false}, []float64{0}, false)
	if err != nil {
		t.Fatal(err)
	}
	expectSlice(t, "self-attend masked lat", lat, []float64{0}, 1e-15)
}

func TestISABLatentsForms(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	cfg := ISABConfig{Dim: 6, Heads: 2, DimHead: 3, M: 4, LatentSelfAttend: true}
	inner := cfg.Heads * cfg.DimHead
	w := ISABWeights{
		Q1: randSlice(r, inner*6), KV1: randSlice(r, 2*inner*6), Out1: randSlice(r, 6*inner),
		Q2: randSlice(r, inner*6), KV2: randSlice(r, 2*inner*6), Out2: randSlice(r, 6*inner),
	}
	b, n := 3, 7
	x := randSlice(r, b*n*6)
	mask := make([]bool, b*n)
	for i := range mask {
		mask[i] = r.Intn(2) == 0
	}
	shared := randSlice(r, cfg.M*6)
	out2d, lat2d, err := ISAB(cfg, w, x, b, n, mask, shared, false)
	if err != nil {
		t.Fatal(err)
	}
	var rep []float64
	for i := 0; i < b; i++ {
		rep = append(rep, shared...)
	}
	out3d, lat3d, err := ISAB(cfg, w, x, b, n, mask, rep, true)
	if err != nil {
		t.Fatal(err)
	}
	expectSlice(t, "out", out3d, out2d, 0)
	expectSlice(t, "lat", lat3d, lat2d, 0)
	w.Latents = shared
	outL, latL, err := ISAB(cfg, w, x, b, n, mask, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	expectSlice(t, "learned out", outL, out2d, 0)
	expectSlice(t, "learned lat", latL, lat2d, 0)

	// Each batch element alone gives the same result as in the batch.
	for i := 0; i < b; i++ {
		o, l, err := ISAB(cfg, w, x[i*n*6:(i+1)*n*6], 1, n, mask[i*n:(i+1)*n], nil, false)
		if err != nil {
			t.Fatal(err)
		}
		expectSlice(t, "single out", o, out2d[i*n*6:(i+1)*n*6], 0)
		expectSlice(t, "single lat", l, lat2d[i*cfg.M*6:(i+1)*cfg.M*6], 0)
	}
}

func TestISABErrors(t *testing.T) {
	cfg := ISABConfig{Dim: 1, Heads: 1, DimHead: 1, M: 1}
	w := onesWeights(1)
	x := []float64{1, 2}
	noLatents := onesWeights(1)
	noLatents.Latents = nil
	shortQ := onesWeights(1)
	shortQ.Q2 = nil
	longKV := onesWeights(1)
	longKV.KV1 = []float64{1, 1, 1}
	cases := []struct {
		name    string
		cfg     ISABConfig
		w       ISABWeights
		x       []float64
		b, n    int
		mask    []bool
		latents []float64
		batched bool
		want    string
	}{
		{"zero dim", ISABConfig{Heads: 1, DimHead: 1, M: 1}, w, x, 1, 2, nil, nil, false, "must be positive"},
		{"zero heads", ISABConfig{Dim: 1, DimHead: 1, M: 1}, w, x, 1, 2, nil, nil, false, "must be positive"},
		{"zero batch", cfg, w, x, 0, 2, nil, nil, false, "must be positive"},
		{"negative n", cfg, w, x, 1, -2, nil, nil, false, "must be positive"},
		{"x length", cfg, w, x, 1, 3, nil, nil, false, "x has 2 elements"},
		{"mask length", cfg, w, x, 1, 2, []bool{true}, nil, false, "mask has 1 elements"},
		{"no latents", cfg, noLatents, x, 1, 2, nil, nil, false, "no latents"},
		{"shared latents length", cfg, w, x, 1, 2, nil, []float64{1, 2}, false, "latents has 2 elements"},
		{"batched latents length", cfg, w, x, 2, 1, nil, []float64{1}, true, "latents has 1 elements"},
		{"learned latents length", ISABConfig{Dim: 1, Heads: 1, DimHead: 1, M: 2}, w, x, 1, 2, nil, nil, false, "learned latents"},
		{"short to_q", cfg, shortQ, x, 1, 2, nil, nil, false, "to_q weight of attn2"},
		{"long to_kv", cfg, longKV, x, 1, 2, nil, nil, false, "to_kv weight of attn1"},
		{"overflow", ISABConfig{Dim: 1, Heads: math.MaxInt / 2, DimHead: 3, M: 1}, w, x, 1, 2, nil, nil, false, "overflows"},
		{"overflow x", cfg, w, x, math.MaxInt / 2, 3, nil, nil, false, "overflows"},
	}
	for _, c := range cases {
		_, _, err := ISAB(c.cfg, c.w, c.x, c.b, c.n, c.mask, c.latents, c.batched)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.name, err, c.want)
		}
	}
}
