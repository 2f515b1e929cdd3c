package view

import (
	"fmt"
	"math"

	"github.com/isab-vk/isab-vk/mixture"
	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/safetensors"
)

// Model is the clustering Set Transformer of examples/clustering (two ISABs,
// a PMA, two SABs and a Linear head) evaluated on the CPU in float64 with
// the project's reference (package ref). The viewer needs the attention
// probabilities of single query rows, which the fused GPU attention never
// stores; the reference gives them exactly from the weights.
type Model struct {
	Heads   int
	Dim     int
	NumInds int
	Seeds   int
	mabs    map[string]mabBlock
	params  map[string][]float64
	shapes  map[string][]int
}

// mabBlock is one MAB's weights and input widths.
type mabBlock struct {
	w          ref.MABWeights
	dimQ, dimK int
}

// Mixture is a predicted (or true) 2-D diagonal Gaussian mixture.
type Mixture = mixture.Mixture

// Prediction is one forward pass: the mixture, and the attention
// probabilities of the first ISAB's inducing points over the points
// (ISAB[h][i][j] for head h, inducing point i, point j) and of the PMA's
// seeds over the points (PMA[h][s][j]).
type Prediction struct {
	Mixture Mixture
	ISAB    [][][]float64
	PMA     [][][]float64
}

var mabNames = []string{"enc.0.mab0", "enc.0.mab1", "enc.1.mab0", "enc.1.mab1", "dec.0.mab", "dec.1.mab", "dec.2.mab"}

// LoadModel reads the clustering model's weights (examples/clustering/weights.safetensors).
func LoadModel(path string) (*Model, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := &Model{Heads: 4, mabs: map[string]mabBlock{}, params: map[string][]float64{}, shapes: map[string][]int{}}
	if h, ok, err := safetensors.MetaInt(f.Metadata, "heads"); err != nil || (ok && h < 1) {
		return nil, fmt.Errorf("view: %s: bad heads metadata %q", path, f.Metadata["heads"])
	} else if ok {
		m.Heads = h
	}
	for _, name := range f.Names() {
		t, _ := f.Get(name)
		v, err := t.Float64()
		if err != nil {
			return nil, fmt.Errorf("view: %s: %s: %w", path, name, err)
		}
		m.params[name] = v
		m.shapes[name] = t.Shape
	}
	for _, k := range []string{"enc.0.I", "enc.1.I", "dec.0.S"} {
		if s := m.shapes[k]; len(s) != 3 || s[0] != 1 {
			return nil, fmt.Errorf("view: %s: %s missing or not [1, n, dim]", path, k)
		}
	}
	m.Dim = m.shapes["enc.0.I"][2]
	m.NumInds = m.shapes["enc.0.I"][1]
	m.Seeds = m.shapes["dec.0.S"][1]
	if m.Dim%m.Heads != 0 {
		return nil, fmt.Errorf("view: %s: dim %d not divisible by %d heads", path, m.Dim, m.Heads)
	}
	for _, p := range mabNames {
		var b mabBlock
		for _, l := range []struct {
			w, bias *[]float64
			name    string
			in      *int
		}{{&b.w.QW, &b.w.QB, "fc_q", &b.dimQ}, {&b.w.KW, &b.w.KB, "fc_k", &b.dimK}, {&b.w.VW, &b.w.VB, "fc_v", nil}, {&b.w.OW, &b.w.OB, "fc_o", nil}} {
			in, err := m.linear(p+"."+l.name, l.w, l.bias)
			if err != nil {
				return nil, fmt.Errorf("view: %s: %w", path, err)
			}
			if l.in != nil {
				*l.in = in
			}
		}
		b.w.LN0W, b.w.LN0B = m.params[p+".ln0.weight"], m.params[p+".ln0.bias"]
		b.w.LN1W, b.w.LN1B = m.params[p+".ln1.weight"], m.params[p+".ln1.bias"]
		m.mabs[p] = b
	}
	var w, bias []float64
	if _, err := m.linear("dec.3", &w, &bias); err != nil {
		return nil, fmt.Errorf("view: %s: %w", path, err)
	}
	return m, nil
}

// linear looks up a Linear layer's weight [out, in] and bias [out], checks
// that its output width is the model's, except for the head, and returns in.
func (m *Model) linear(prefix string, w, b *[]float64) (int, error) {
	var ok1, ok2 bool
	*w, ok1 = m.params[prefix+".weight"]
	*b, ok2 = m.params[prefix+".bias"]
	s := m.shapes[prefix+".weight"]
	if !ok1 || !ok2 || len(s) != 2 || len(*b) != s[0] || (prefix != "dec.3" && s[0] != m.Dim) {
		return 0, fmt.Errorf("%s.weight/bias missing or mis-shaped", prefix)
	}
	return s[1], nil
}

// forward runs MAB(Q, K) on q [nq, dimQ] and k [nk, dimK] and, when
// withAttn, also returns its attention probabilities [heads][nq][nk].
func (m *Model) forward(name string, q []float64, nq int, k []float64, nk int, withAttn bool) ([]float64, [][][]float64) {
	b := m.mabs[name]
	out := ref.MAB(b.w, b.dimQ, b.dimK, m.Dim, m.Heads, q, nq, k, nk)
	if !withAttn {
		return out, nil
	}
	qp := ref.Linear(q, nq, b.dimQ, b.w.QW, m.Dim, b.w.QB)
	kp := ref.Linear(k, nk, b.dimK, b.w.KW, m.Dim, b.w.KB)
	d := m.Dim / m.Heads
	attn := make([][][]float64, m.Heads)
	for h := range attn {
		qh, kh := headColumns(qp, nq, m.Dim, h, d), headColumns(kp, nk, m.Dim, h, d)
		// Q'_h K'_h^T is a Linear of Q'_h by the "weights" K'_h.
		p := ref.MaskedSoftmax(ref.Linear(qh, nq, d, kh, nk, nil), nq, nk, 1/math.Sqrt(float64(m.Dim)), nil)
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

// Predict runs the model on one set of 2-D points.
func (m *Model) Predict(points [][2]float64) (*Prediction, error) {
	n := len(points)
	if n == 0 {
		return nil, fmt.Errorf("view: empty point set")
	}
	x := make([]float64, 0, 2*n)
	for _, p := range points {
		x = append(x, p[0], p[1])
	}
	ni, ns := m.NumInds, m.Seeds
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
	var w, b []float64
	if _, err := m.linear("dec.3", &w, &b); err != nil {
		return nil, fmt.Errorf("view: %w", err)
	}
	outW := len(b)
	out := ref.Linear(y, ns, m.Dim, w, outW, b)
	rows := make([][]float64, ns)
	for i := range rows {
		rows[i] = out[i*outW : (i+1)*outW]
	}
	var err error
	if pred.Mixture, err = mixture.FromOutput(rows); err != nil {
		return nil, fmt.Errorf("view: %w", err)
	}
	return pred, nil
}
