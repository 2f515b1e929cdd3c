package view

import (
	"fmt"
	"math"
	"testing"

	"github.com/isab-vk/isab-vk/mixture"
	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/safetensors"
)

// refModel is the clustering model in float64 on the CPU with package ref:
// what the tests check the device's Prediction against.
type refModel struct {
	heads, dim int
	mabs       map[string]refMAB
	params     map[string][]float64
	shapes     map[string][]int
}

// refMAB is one MAB's weights and input widths.
type refMAB struct {
	w          ref.MABWeights
	dimQ, dimK int
}

var refMABNames = []string{"enc.0.mab0", "enc.0.mab1", "enc.1.mab0", "enc.1.mab1", "dec.0.mab", "dec.1.mab", "dec.2.mab"}

func loadRefModel(t *testing.T, path string, heads int) *refModel {
	t.Helper()
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := &refModel{heads: heads, mabs: map[string]refMAB{}, params: map[string][]float64{}, shapes: map[string][]int{}}
	for _, name := range f.Names() {
		tn, _ := f.Get(name)
		if m.params[name], err = tn.Float64(); err != nil {
			t.Fatal(err)
		}
		m.shapes[name] = tn.Shape
	}
	m.dim = m.shapes["enc.0.I"][2]
	for _, p := range refMABNames {
		var b refMAB
		for _, l := range []struct {
			w, bias *[]float64
			name    string
			in      *int
		}{{&b.w.QW, &b.w.QB, "fc_q", &b.dimQ}, {&b.w.KW, &b.w.KB, "fc_k", &b.dimK}, {&b.w.VW, &b.w.VB, "fc_v", nil}, {&b.w.OW, &b.w.OB, "fc_o", nil}} {
			*l.w, *l.bias = m.params[p+"."+l.name+".weight"], m.params[p+"."+l.name+".bias"]
			if *l.w == nil || *l.bias == nil {
				t.Fatalf("%s.%s missing", p, l.name)
			}
			if l.in != nil {
				*l.in = m.shapes[p+"."+l.name+".weight"][1]
			}
		}
		b.w.LN0W, b.w.LN0B = m.params[p+".ln0.weight"], m.params[p+".ln0.bias"]
		b.w.LN1W, b.w.LN1B = m.params[p+".ln1.weight"], m.params[p+".ln1.bias"]
		m.mabs[p] = b
	}
	return m
}

// forward runs MAB(Q, K) on q [nq, dimQ] and k [nk, dimK] and, when
// withAttn, also returns its attention probabilities [heads][nq][nk].
func (m *refModel) forward(name string, q []float64, nq int, k []float64, nk int, withAttn bool) ([]float64, [][][]float64) {
	b := m.mabs[name]
	out := ref.MAB(b.w, b.dimQ, b.dimK, m.dim, m.heads, q, nq, k, nk)
	if !withAttn {
		return out, nil
	}
	qp := ref.Linear(q, nq, b.dimQ, b.w.QW, m.dim, b.w.QB)
	kp := ref.Linear(k, nk, b.dimK, b.w.KW, m.dim, b.w.KB)
	d := m.dim / m.heads
	attn := make([][][]float64, m.heads)
	for h := range attn {
		qh, kh := headColumns(qp, nq, m.dim, h, d), headColumns(kp, nk, m.dim, h, d)
		p := ref.MaskedSoftmax(ref.Linear(qh, nq, d, kh, nk, nil), nq, nk, 1/math.Sqrt(float64(m.dim)), nil)
		attn[h] = make([][]float64, nq)
		for i := range attn[h] {
			attn[h][i] = p[i*nk : (i+1)*nk]
		}
	}
	return out, attn
}

// headColumns copies columns [h*d, (h+1)*d) of x [rows, cols].
func headColumns(x []float64, rows, cols, h, d int) []float64 {
	out := make([]float64, 0, rows*d)
	for r := 0; r < rows; r++ {
		out = append(out, x[r*cols+h*d:r*cols+(h+1)*d]...)
	}
	return out
}

// predict is Model.Predict in float64.
func (m *refModel) predict(points [][2]float64) (*Prediction, error) {
	n := len(points)
	x := make([]float64, 0, 2*n)
	for _, p := range points {
		x = append(x, p[0], p[1])
	}
	ni, ns := m.shapes["enc.0.I"][1], m.shapes["dec.0.S"][1]
	pred := &Prediction{}
	h, a := m.forward("enc.0.mab0", m.params["enc.0.I"], ni, x, n, true)
	pred.ISAB = a
	x, _ = m.forward("enc.0.mab1", x, n, h, ni, false)
	h, _ = m.forward("enc.1.mab0", m.params["enc.1.I"], m.shapes["enc.1.I"][1], x, n, false)
	x, _ = m.forward("enc.1.mab1", x, n, h, m.shapes["enc.1.I"][1], false)
	y, a := m.forward("dec.0.mab", m.params["dec.0.S"], ns, x, n, true)
	pred.PMA = a
	y, _ = m.forward("dec.1.mab", y, ns, y, ns, false)
	y, _ = m.forward("dec.2.mab", y, ns, y, ns, false)
	b := m.params["dec.3.bias"]
	out := ref.Linear(y, ns, m.dim, m.params["dec.3.weight"], len(b), b)
	rows := make([][]float64, ns)
	for i := range rows {
		rows[i] = out[i*len(b) : (i+1)*len(b)]
	}
	var err error
	if pred.Mixture, err = mixture.FromOutput(rows); err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	return pred, nil
}

// flatAttn flattens attention maps [heads][nq][n] into one slice.
func flatAttn(a [][][]float64) []float64 {
	var v []float64
	for _, h := range a {
		for _, row := range h {
			v = append(v, row...)
		}
	}
	return v
}

// flatMixture flattens a mixture's parameters into one slice.
func flatMixture(m Mixture) []float64 {
	var v []float64
	for k := range m.Pi {
		v = append(v, m.Pi[k], m.Mu[k][0], m.Mu[k][1], m.Sigma[k][0], m.Sigma[k][1])
	}
	return v
}

// predictionBound is the NMSE allowed between the device's float32
// prediction and the float64 reference.
const predictionBound = 1e-9

// TestPredictReference checks the device's attention maps and mixture
// against the float64 reference on sets of odd sizes.
func TestPredictReference(t *testing.T) {
	m := loadModel(t)
	t.Logf("device: %s", m.dev.Info().Name)
	r := loadRefModel(t, weightsPath(t), m.Heads)
	if _, err := m.Predict(t.Context(), nil); err == nil {
		t.Errorf("Predict of no points: no error")
	}
	for _, n := range []int{1, 7, 33, 300} {
		pts, _ := Sample(n, int64(n))
		got, err := m.Predict(t.Context(), pts)
		if err != nil {
			t.Fatalf("n %d: %v", n, err)
		}
		want, err := r.predict(pts)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			what      string
			got, want []float64
		}{
			{"ISAB attention", flatAttn(got.ISAB), flatAttn(want.ISAB)},
			{"PMA attention", flatAttn(got.PMA), flatAttn(want.PMA)},
			{"mixture", flatMixture(got.Mixture), flatMixture(want.Mixture)},
		} {
			e := ref.NMSE64(c.got, c.want)
			t.Logf("n %d: %s NMSE %.3g", n, c.what, e)
			if !(e <= predictionBound) {
				t.Errorf("n %d: %s NMSE %.3g > %.0g", n, c.what, e, predictionBound)
			}
		}
	}
}
