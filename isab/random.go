package isab

import (
	"math"
	"math/rand"
)

// RandomWeights makes weights for cfg the way PyTorch initialises a fresh
// module: Linear weights uniform in ±1/sqrt(fan_in), latents standard
// normal. The same seed gives the same weights. Benchmarks and the demo use
// it; real models load trained weights. For a configuration that
// Config.Validate refuses it returns nil, which New and NewWithPrecision
// reject with Validate's error; callers that make large models should
// check their Footprint first.
func RandomWeights(cfg Config, seed int64) *Weights {
	if cfg.Validate() != nil {
		return nil
	}
	r := rand.New(rand.NewSource(seed))
	uniform := func(rows, cols int) []float32 {
		bound := 1 / math.Sqrt(float64(cols))
		v := make([]float32, rows*cols)
		for i := range v {
			v[i] = float32((2*r.Float64() - 1) * bound)
		}
		return v
	}
	d, i := cfg.Dim, cfg.Inner()
	w := &Weights{}
	if cfg.NumLatents > 0 {
		w.Latents = RandomNormal(r, cfg.NumLatents*d)
	}
	for _, a := range []*AttentionWeights{&w.Attn1, &w.Attn2} {
		a.Q = uniform(i, d)
		a.KV = uniform(2*i, d)
		a.Out = uniform(d, i)
	}
	return w
}

// RandomNormal returns n standard-normal float32 values drawn from r (none
// for n <= 0).
func RandomNormal(r *rand.Rand, n int) []float32 {
	v := make([]float32, max(n, 0))
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}
