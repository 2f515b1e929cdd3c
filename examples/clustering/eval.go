// Package clustering is the Go side of the amortised-clustering example: it
// evaluates the trained Set Transformer (weights.safetensors) on the
// benchmark sets (benchmark.safetensors) on a Vulkan device, with the
// mixture log-likelihood of package mixture, as evaluate.py does in
// PyTorch. isab cluster --eval prints what Evaluate measures.
package clustering

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/isab-vk/isab-vk/mixture"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/settransformer"
	"github.com/isab-vk/isab-vk/vk"
)

// Result is what Evaluate measures.
type Result struct {
	Sets, Points      int
	ModelLL, OracleLL float64   // mean per-point log-likelihoods
	PerSetModel       []float64 // the model's mean per-point log-likelihood of each set
	Forward           time.Duration
}

// benchmark is the content of benchmark.safetensors: sets x [n, 2] points
// and each set's true mixture of k components.
type benchmark struct {
	x32           []float32
	x             []float64
	shape         []int // [sets, n, 2]
	pi, mu, sigma []float64
}

// readBenchmark reads the benchmark file and checks its shapes for k
// components per set.
func readBenchmark(path string, k int) (*benchmark, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the benchmark: %w", err)
	}
	xt, ok := f.Get("x")
	if !ok || len(xt.Shape) != 3 || xt.Shape[2] != 2 {
		return nil, fmt.Errorf("the benchmark %s needs x [sets, n, 2]", path)
	}
	b := &benchmark{shape: xt.Shape}
	get := func(name string, shape ...int) ([]float64, error) {
		t, ok := f.Get(name)
		if !ok {
			return nil, fmt.Errorf("the benchmark %s lacks %q", path, name)
		}
		if shape != nil && !slices.Equal(t.Shape, shape) {
			return nil, fmt.Errorf("the benchmark's %s has shape %v, want %v", name, t.Shape, shape)
		}
		return t.Float64()
	}
	S := xt.Shape[0]
	if b.x, err = get("x"); err != nil {
		return nil, err
	}
	if b.pi, err = get("pi", S, k); err != nil {
		return nil, err
	}
	if b.mu, err = get("mu", S, k, 2); err != nil {
		return nil, err
	}
	if b.sigma, err = get("sigma", S, k, 2); err != nil {
		return nil, err
	}
	if b.x32, err = xt.Float32(); err != nil {
		return nil, err
	}
	return b, nil
}

// truth is set s's true mixture.
func (b *benchmark) truth(s, k int) mixture.Mixture {
	m := mixture.Mixture{Pi: b.pi[s*k : (s+1)*k]}
	for c := 0; c < k; c++ {
		j := (s*k + c) * 2
		m.Mu = append(m.Mu, [2]float64{b.mu[j], b.mu[j+1]})
		m.Sigma = append(m.Sigma, [2]float64{b.sigma[j], b.sigma[j+1]})
	}
	return m
}

// Evaluate runs the trained model (weights) on every set of the benchmark
// (bench) on dev and computes the mean per-point log-likelihood of its
// mixtures and of the true ones, as examples/clustering/common.py defines
// it.
func Evaluate(ctx context.Context, dev *vk.Device, weights, bench string) (*Result, error) {
	m, err := settransformer.Load(dev, weights, settransformer.Options{Kind: settransformer.KindModel})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	cfg := m.Config()
	if cfg.DimIn != 2 || cfg.DimOut != mixture.Params {
		return nil, fmt.Errorf("the clustering model maps 2-D points to %d parameters per component, but %s has dim_in %d and dim_output %d",
			mixture.Params, weights, cfg.DimIn, cfg.DimOut)
	}
	K := cfg.NumSeeds
	b, err := readBenchmark(bench, K)
	if err != nil {
		return nil, err
	}
	S, N := b.shape[0], b.shape[1]
	start := time.Now()
	out, shape, err := m.ForwardHost(ctx, b.x32, b.shape)
	if err != nil {
		return nil, err
	}
	res := &Result{Sets: S, Points: N, Forward: time.Since(start)}
	if !slices.Equal(shape, []int{S, K, mixture.Params}) {
		return nil, fmt.Errorf("internal error: the model's output has shape %v", shape)
	}
	var modelSum, oracleSum float64
	for s := 0; s < S; s++ {
		pts := b.x[s*N*2 : (s+1)*N*2]
		pred, err := mixture.FromFlat(out[s*K*mixture.Params : (s+1)*K*mixture.Params])
		if err != nil {
			return nil, fmt.Errorf("set %d: %w", s, err)
		}
		ll := pred.LogLik(pts)
		res.PerSetModel = append(res.PerSetModel, ll/float64(N))
		modelSum += ll
		oracleSum += b.truth(s, K).LogLik(pts)
	}
	res.ModelLL = modelSum / float64(S*N)
	res.OracleLL = oracleSum / float64(S*N)
	if math.IsNaN(res.ModelLL) {
		return nil, errors.New("the model's log-likelihood is NaN")
	}
	return res, nil
}
