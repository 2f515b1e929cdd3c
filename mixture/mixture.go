// Package mixture is the Gaussian mixture of the Set Transformer's amortised
// clustering experiment (examples/clustering): a diagonal mixture in 2-D,
// the model's output parameterisation that yields it, and its
// log-likelihood, exactly as examples/clustering/common.py and evaluate.py
// define them. The example's evaluation (examples/clustering, isab cluster)
// and the viewer (package view) share it; it depends on nothing but the
// standard library.
package mixture

import (
	"errors"
	"fmt"
	"math"
)

// SigmaMin is the floor of the predicted standard deviations.
const SigmaMin = 1e-3

// Params is the number of model outputs per component: pi logit, mu_x,
// mu_y, raw_sigma_x, raw_sigma_y.
const Params = 5

// Mixture is a diagonal Gaussian mixture in 2-D: per component k the weight
// Pi[k], mean Mu[k] and standard deviations Sigma[k].
type Mixture struct {
	Pi    []float64
	Mu    [][2]float64
	Sigma [][2]float64
}

// FromOutput applies the model's output parameterisation to its rows
// (pi_logit, mu_x, mu_y, raw_sigma_x, raw_sigma_y), one per component:
// pi = softmax of the logits, sigma = max(softplus(raw), SigmaMin). A row
// of another length than Params, or no row, is an error.
func FromOutput(rows [][]float64) (Mixture, error) {
	if len(rows) == 0 {
		return Mixture{}, errors.New("mixture: no output rows")
	}
	logits := make([]float64, len(rows))
	for k, r := range rows {
		if len(r) != Params {
			return Mixture{}, fmt.Errorf("mixture: output row %d has %d values, want %d", k, len(r), Params)
		}
		logits[k] = r[0]
	}
	lse := logSumExp(logits)
	var m Mixture
	for k, r := range rows {
		m.Pi = append(m.Pi, math.Exp(logits[k]-lse))
		m.Mu = append(m.Mu, [2]float64{r[1], r[2]})
		m.Sigma = append(m.Sigma, [2]float64{max(softplus(r[3]), SigmaMin), max(softplus(r[4]), SigmaMin)})
	}
	return m, nil
}

// FromFlat is FromOutput for the model's output as one flat float32 slice
// of components x Params values (one set of ForwardHost's output).
func FromFlat(out []float32) (Mixture, error) {
	if len(out)%Params != 0 {
		return Mixture{}, fmt.Errorf("mixture: %d output values are not rows of %d", len(out), Params)
	}
	rows := make([][]float64, len(out)/Params)
	for k := range rows {
		rows[k] = make([]float64, Params)
		for j := range rows[k] {
			rows[k][j] = float64(out[k*Params+j])
		}
	}
	return FromOutput(rows)
}

// LogLik returns the summed log-likelihood of the points pts (x0, y0, x1,
// y1, ...) under the mixture:
//
//	log p(x) = logsumexp_k [ log pi_k + sum_d Normal(mu_kd, sigma_kd).log_prob(x_d) ]
func (m Mixture) LogLik(pts []float64) float64 {
	halfLog2Pi := 0.5 * math.Log(2*math.Pi)
	comp := make([]float64, len(m.Pi))
	total := 0.0
	for i := 0; i+1 < len(pts); i += 2 {
		for k := range comp {
			c := math.Log(m.Pi[k])
			for d := 0; d < 2; d++ {
				z := (pts[i+d] - m.Mu[k][d]) / m.Sigma[k][d]
				c += -0.5*z*z - math.Log(m.Sigma[k][d]) - halfLog2Pi
			}
			comp[k] = c
		}
		total += logSumExp(comp)
	}
	return total
}

// softplus is PyTorch's softplus(x) = log(1 + exp(x)), which returns x
// itself above its threshold 20.
func softplus(x float64) float64 {
	if x > 20 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

// logSumExp returns log(sum(exp(v))) without overflow.
func logSumExp(v []float64) float64 {
	mx := math.Inf(-1)
	for _, a := range v {
		mx = max(mx, a)
	}
	if math.IsInf(mx, -1) {
		return mx
	}
	s := 0.0
	for _, a := range v {
		s += math.Exp(a - mx)
	}
	return mx + math.Log(s)
}
