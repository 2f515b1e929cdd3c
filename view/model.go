package view

import (
	"fmt"
	"math"

	"github.com/isab-vk/isab-vk/safetensors"
)

// Model is the clustering Set Transformer of examples/clustering (two ISABs,
// a PMA, two SABs and a Linear head) evaluated on the CPU in float64. The
// viewer needs the attention probabilities of single query rows, which it
// computes here exactly from the weights.
type Model struct {
	Heads   int
	Dim     int
	NumInds int
	Seeds   int
	mabs    map[string]*mab
	params  map[string][]float64
	shapes  map[string][]int
}

type linear struct {
	w      []float64 // [out, in]
	b      []float64 // [out]
	in     int
	out    int
	prefix string
}

type mab struct {
	q, k, v, o linear
}

// Mixture is the model's predicted mixture: per component k the weight
// Pi[k], mean Mu[k] and diagonal standard deviations Sigma[k].
type Mixture struct {
	Pi    []float64
	Mu    [][2]float64
	Sigma [][2]float64
}

// Prediction is one forward pass: the mixture, and the attention
// probabilities of the first ISAB's inducing points over the points
// (ISAB[h][i][j] for head h, inducing point i, point j) and of the PMA's
// seeds over the points (PMA[h][s][j]).
type Prediction struct {
	Mixture Mixture
	ISAB    [][][]float64
	PMA     [][][]float64
}

// LoadModel reads the clustering model's weights (examples/clustering/weights.safetensors).
func LoadModel(path string) (*Model, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := &Model{Heads: 4, mabs: map[string]*mab{}, params: map[string][]float64{}, shapes: map[string][]int{}}
	if h := f.Metadata["heads"]; h != "" {
		if _, err := fmt.Sscan(h, &m.Heads); err != nil || m.Heads < 1 {
			return nil, fmt.Errorf("view: %s: bad heads metadata %q", path, h)
		}
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
	for _, p := range []string{"enc.0.mab0", "enc.0.mab1", "enc.1.mab0", "enc.1.mab1", "dec.0.mab", "dec.1.mab", "dec.2.mab"} {
		var b mab
		for _, l := range []struct {
			dst  *linear
			name string
		}{{&b.q, "fc_q"}, {&b.k, "fc_k"}, {&b.v, "fc_v"}, {&b.o, "fc_o"}} {
			if *l.dst, err = m.linear(p + "." + l.name); err != nil {
				return nil, fmt.Errorf("view: %s: %w", path, err)
			}
		}
		m.mabs[p] = &b
	}
	if _, err := m.linear("dec.3"); err != nil {
		return nil, fmt.Errorf("view: %s: %w", path, err)
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
	return m, nil
}

func (m *Model) linear(prefix string) (linear, error) {
	w, ok1 := m.params[prefix+".weight"]
	b, ok2 := m.params[prefix+".bias"]
	s := m.shapes[prefix+".weight"]
	if !ok1 || !ok2 || len(s) != 2 || len(b) != s[0] {
		return linear{}, fmt.Errorf("%s.weight/bias missing or mis-shaped", prefix)
	}
	return linear{w: w, b: b, out: s[0], in: s[1], prefix: prefix}, nil
}

// apply computes x W^T + b for x [n, in].
func (l linear) apply(x [][]float64) [][]float64 {
	y := make([][]float64, len(x))
	for i, row := range x {
		out := make([]float64, l.out)
		for o := 0; o < l.out; o++ {
			s := l.b[o]
			w := l.w[o*l.in : (o+1)*l.in]
			for j, v := range row {
				s += v * w[j]
			}
			out[o] = s
		}
		y[i] = out
	}
	return y
}

// forward runs MAB(Q, K) and returns its output and, per head, the
// attention probabilities [heads][nq][nk].
func (b *mab) forward(q, k [][]float64, heads int) ([][]float64, [][][]float64) {
	qp, kp, vp := b.q.apply(q), b.k.apply(k), b.v.apply(k)
	dimV := b.q.out
	d := dimV / heads
	scale := 1 / math.Sqrt(float64(dimV))
	o := make([][]float64, len(q))
	for i := range o {
		o[i] = append([]float64(nil), qp[i]...)
	}
	attn := make([][][]float64, heads)
	for h := 0; h < heads; h++ {
		attn[h] = make([][]float64, len(q))
		for i := range q {
			a := make([]float64, len(k))
			mx := math.Inf(-1)
			for j := range k {
				s := 0.0
				for c := h * d; c < (h+1)*d; c++ {
					s += qp[i][c] * kp[j][c]
				}
				a[j] = s * scale
				mx = math.Max(mx, a[j])
			}
			sum := 0.0
			for j := range a {
				a[j] = math.Exp(a[j] - mx)
				sum += a[j]
			}
			for j := range a {
				a[j] /= sum
				for c := h * d; c < (h+1)*d; c++ {
					o[i][c] += a[j] * vp[j][c]
				}
			}
			attn[h][i] = a
		}
	}
	f := b.o.apply(o)
	for i := range o {
		for c := range o[i] {
			o[i][c] += math.Max(f[i][c], 0)
		}
	}
	return o, attn
}

func (m *Model) rows(name string) [][]float64 {
	s := m.shapes[name]
	v := m.params[name]
	r := make([][]float64, s[1])
	for i := range r {
		r[i] = v[i*s[2] : (i+1)*s[2]]
	}
	return r
}

// Predict runs the model on one set of 2-D points.
func (m *Model) Predict(points [][2]float64) (*Prediction, error) {
	if len(points) == 0 {
		return nil, fmt.Errorf("view: empty point set")
	}
	x := make([][]float64, len(points))
	for i, p := range points {
		x[i] = []float64{p[0], p[1]}
	}
	pred := &Prediction{}
	h, a := m.mabs["enc.0.mab0"].forward(m.rows("enc.0.I"), x, m.Heads)
	pred.ISAB = a
	x, _ = m.mabs["enc.0.mab1"].forward(x, h, m.Heads)
	h, _ = m.mabs["enc.1.mab0"].forward(m.rows("enc.1.I"), x, m.Heads)
	x, _ = m.mabs["enc.1.mab1"].forward(x, h, m.Heads)
	y, a := m.mabs["dec.0.mab"].forward(m.rows("dec.0.S"), x, m.Heads)
	pred.PMA = a
	y, _ = m.mabs["dec.1.mab"].forward(y, y, m.Heads)
	y, _ = m.mabs["dec.2.mab"].forward(y, y, m.Heads)
	head, _ := m.linear("dec.3")
	out := head.apply(y)
	pred.Mixture = MixtureFrom(out)
	return pred, nil
}

// MixtureFrom applies the output parameterisation of
// examples/clustering/common.py to the model's output rows (pi_logit, mu_x,
// mu_y, raw_sigma_x, raw_sigma_y): pi = softmax of the logits, sigma =
// max(softplus(raw), 1e-3).
func MixtureFrom(out [][]float64) Mixture {
	var mix Mixture
	mx := math.Inf(-1)
	for _, r := range out {
		mx = math.Max(mx, r[0])
	}
	sum := 0.0
	for _, r := range out {
		e := math.Exp(r[0] - mx)
		mix.Pi = append(mix.Pi, e)
		sum += e
		mix.Mu = append(mix.Mu, [2]float64{r[1], r[2]})
		mix.Sigma = append(mix.Sigma, [2]float64{sigma(r[3]), sigma(r[4])})
	}
	for k := range mix.Pi {
		mix.Pi[k] /= sum
	}
	return mix
}

func sigma(raw float64) float64 {
	var sp float64
	if raw > 30 {
		sp = raw
	} else {
		sp = math.Log1p(math.Exp(raw))
	}
	return math.Max(sp, 1e-3)
}
