package ref

import (
	"math"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/safetensors"
)

func TestLayerNormHand(t *testing.T) {
	// Row (1, 2, 3): mean 2, biased variance 2/3; a constant row normalises
	// to 0 (eps keeps it finite).
	y := LayerNorm([]float64{1, 2, 3, 5, 5, 5}, 2, 3, []float64{1, 2, 1}, []float64{0, 0, 1}, 1e-12)
	s := math.Sqrt(1.5)
	expectSlice(t, "LayerNorm", y, []float64{-s, 0, 1 + s, 0, 0, 1}, 1e-9)
}

func TestMABHand(t *testing.T) {
	// Identity projections, one head, zero biases: every query attends to
	// the single key, so O = Q + V = Q + K, and relu(fc_o(O)) = relu(O).
	id := []float64{1, 0, 0, 1}
	zero := []float64{0, 0}
	w := MABWeights{QW: id, QB: zero, KW: id, KB: zero, VW: id, VB: zero, OW: id, OB: zero}
	q := []float64{1, -2, 3, 4}
	k := []float64{0.5, 1}
	got := MAB(w, 2, 2, 2, 1, q, 2, k, 1)
	// O = (1.5, -1), (3.5, 5); plus relu(O).
	expectSlice(t, "MAB", got, []float64{3, -1, 7, 10}, 1e-12)
}

// mabFrom reads a MAB's weights under prefix from a state_dict.
func mabFrom(t *testing.T, f *safetensors.File, prefix string, ln bool) MABWeights {
	t.Helper()
	get := func(key string) []float64 {
		v, _, err := readF64(f, prefix+key)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	w := MABWeights{QW: get("fc_q.weight"), QB: get("fc_q.bias"), KW: get("fc_k.weight"), KB: get("fc_k.bias"),
		VW: get("fc_v.weight"), VB: get("fc_v.bias"), OW: get("fc_o.weight"), OB: get("fc_o.bias")}
	if ln {
		w.LN0W, w.LN0B, w.LN1W, w.LN1B = get("ln0.weight"), get("ln0.bias"), get("ln1.weight"), get("ln1.bias")
	}
	return w
}

// TestGoldenMAB checks MAB against the golden SAB, PMA and ISAB cases.
func TestGoldenMAB(t *testing.T) {
	dir := testutil.GoldenDir(t)
	for _, name := range []string{"st_sab", "st_pma_ln", "st_isab_ln"} {
		t.Run(name, func(t *testing.T) {
			wf, err := safetensors.ReadFile(filepath.Join(dir, name+".weights.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			in, err := safetensors.ReadFile(filepath.Join(dir, name+".input.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			exp, err := safetensors.ReadFile(filepath.Join(dir, name+".expected.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			x, xs, err := readF64(in, "x")
			if err != nil {
				t.Fatal(err)
			}
			want, _, err := readF64(exp, "out")
			if err != nil {
				t.Fatal(err)
			}
			heads, err := metaInt(wf.Metadata, "heads")
			if err != nil {
				t.Fatal(err)
			}
			dim, err := metaInt(wf.Metadata, "dim")
			if err != nil {
				t.Fatal(err)
			}
			ln := wf.Metadata["ln"] == "true"
			b, n, dIn := xs[0], xs[1], xs[2]
			var got []float64
			for s := 0; s < b; s++ {
				xb := x[s*n*dIn : (s+1)*n*dIn]
				switch name {
				case "st_sab":
					got = append(got, MAB(mabFrom(t, wf, "mab.", ln), dIn, dIn, dim, heads, xb, n, xb, n)...)
				case "st_pma_ln":
					seeds, ss, err := readF64(wf, "S")
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, MAB(mabFrom(t, wf, "mab.", ln), dim, dim, dim, heads, seeds, ss[1], xb, n)...)
				case "st_isab_ln":
					inds, is, err := readF64(wf, "I")
					if err != nil {
						t.Fatal(err)
					}
					h := MAB(mabFrom(t, wf, "mab0.", ln), dim, dIn, dim, heads, inds, is[1], xb, n)
					got = append(got, MAB(mabFrom(t, wf, "mab1.", ln), dIn, dim, dim, heads, xb, n, h, is[1])...)
				}
			}
			e := NMSE64(got, want)
			t.Logf("NMSE %.3g", e)
			if !(e <= 1e-12) {
				t.Errorf("NMSE %.3g > 1e-12", e)
			}
		})
	}
}

func TestLayerNormRandom(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	x := randSlice(r, 7*33)
	w, b := randSlice(r, 33), randSlice(r, 33)
	y := LayerNorm(x, 7, 33, w, b, 1e-5)
	for row := 0; row < 7; row++ {
		// Undo the affine part: the normalised row has mean 0, variance about 1.
		m, v := 0.0, 0.0
		for c := 0; c < 33; c++ {
			m += (y[row*33+c] - b[c]) / w[c]
		}
		m /= 33
		for c := 0; c < 33; c++ {
			d := (y[row*33+c]-b[c])/w[c] - m
			v += d * d
		}
		v /= 33
		if math.Abs(m) > 1e-9 || math.Abs(v-1) > 1e-3 {
			t.Errorf("row %d: normalised mean %g, variance %g", row, m, v)
		}
	}
}
