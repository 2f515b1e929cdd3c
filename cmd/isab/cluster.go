package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"time"

	"github.com/isab-vk/isab-vk/examples/clustering"

	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/settransformer"
	"github.com/isab-vk/isab-vk/vk"
)

// The amortised clustering example (examples/clustering): a Set Transformer
// reads a set of 2-D points and outputs a 4-component Gaussian mixture.

const clusterDir = "examples/clustering/"

func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("cluster", "--eval [--weights W] [--benchmark B] [--results R] [--device SEL]", stderr)
	eval := fs.Bool("eval", false, "evaluate the trained model on the benchmark sets (required)")
	weights := fs.String("weights", clusterDir+"weights.safetensors", "the trained SetTransformer's state_dict")
	bench := fs.String("benchmark", clusterDir+"benchmark.safetensors", "benchmark sets x [sets, n, 2] with their true pi, mu, sigma")
	results := fs.String("results", clusterDir+"results.json", "PyTorch's evaluation to print beside ours (\"\" for none)")
	device := fs.String("device", "", "device index or name substring (default: $ISAB_DEVICE, else the best GPU)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if !*eval {
		return usagef("say --eval (the only mode)")
	}
	if err := checkDefaultPaths(fs, "weights", "benchmark", "results"); err != nil {
		return err
	}
	dev, err := vk.Open(vk.Options{Device: *device})
	if err != nil {
		return err
	}
	defer dev.Close()
	res, err := clusterEval(ctx, dev, *weights, *bench)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "amortised clustering: %d sets x %d points, %s on %s (forward %.1f ms)\n",
		res.Sets, res.Points, *weights, dev.Info().Name, float64(res.Forward.Microseconds())/1e3)
	fmt.Fprintln(stdout, "mean per-point log-likelihood (nats):")
	fmt.Fprintf(stdout, "  %-26s %9.5f\n", "model, Go/Vulkan", res.ModelLL)
	if *results != "" {
		py, err := readClusterResults(*results)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  %-26s %9.5f  (%s; Go - PyTorch = %.2g)\n", "model, PyTorch (float64)", py.ModelLL, *results, res.ModelLL-py.ModelLL)
	}
	fmt.Fprintf(stdout, "  %-26s %9.5f\n", "oracle (true parameters)", res.OracleLL)
	fmt.Fprintf(stdout, "  %-26s %9.5f\n", "gap, oracle - Go model", res.OracleLL-res.ModelLL)
	return nil
}

// checkDefaultPaths fails, before any device work, when one of the named
// path flags was left at its default (relative to the repository root) and
// that file cannot be found, saying to run from the root or pass the flag.
func checkDefaultPaths(fs *flag.FlagSet, names ...string) error {
	for _, name := range names {
		path := fs.Lookup(name).Value.String()
		if path == "" || isFlagSet(fs, name) {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("default --%s: %w (run from the repository root, or pass --%s)", name, err, name)
		}
	}
	return nil
}

// clusterResult is what clusterEval measures.
type clusterResult struct {
	Sets, Points      int
	ModelLL, OracleLL float64 // mean per-point log-likelihoods
	PerSetModel       []float64
	Forward           time.Duration
}

// pyClusterResults is the part of results.json that we print.
type pyClusterResults struct {
	ModelLL  float64 `json:"model_ll"`
	OracleLL float64 `json:"oracle_ll"`
}

func readClusterResults(path string) (pyClusterResults, error) {
	var r pyClusterResults
	raw, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("reading the PyTorch results: %w", err)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("reading the PyTorch results %s: %w", path, err)
	}
	return r, nil
}

// clusterEval runs the trained model on every benchmark set and computes
// the mean per-point log-likelihood of its mixtures and of the true ones,
// as examples/clustering/common.py defines it.
func clusterEval(ctx context.Context, dev *vk.Device, weights, bench string) (*clusterResult, error) {
	m, err := settransformer.Load(dev, weights, settransformer.Options{Kind: settransformer.KindModel})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	cfg := m.Config()
	if cfg.DimIn != 2 || cfg.DimOut != clustering.Params {
		return nil, fmt.Errorf("the clustering model maps 2-D points to %d parameters per component, but %s has dim_in %d and dim_output %d",
			clustering.Params, weights, cfg.DimIn, cfg.DimOut)
	}
	f, err := safetensors.ReadFile(bench)
	if err != nil {
		return nil, fmt.Errorf("reading the benchmark: %w", err)
	}
	get := func(name string, shape ...int) ([]float64, error) {
		t, ok := f.Get(name)
		if !ok {
			return nil, fmt.Errorf("the benchmark %s lacks %q", bench, name)
		}
		if shape != nil && !slices.Equal(t.Shape, shape) {
			return nil, fmt.Errorf("the benchmark's %s has shape %v, want %v", name, t.Shape, shape)
		}
		return t.Float64()
	}
	xt, ok := f.Get("x")
	if !ok || len(xt.Shape) != 3 || xt.Shape[2] != 2 {
		return nil, fmt.Errorf("the benchmark %s needs x [sets, n, 2]", bench)
	}
	S, N, K := xt.Shape[0], xt.Shape[1], cfg.NumSeeds
	x, err := get("x")
	if err != nil {
		return nil, err
	}
	pi, err := get("pi", S, K)
	if err != nil {
		return nil, err
	}
	mu, err := get("mu", S, K, 2)
	if err != nil {
		return nil, err
	}
	sigma, err := get("sigma", S, K, 2)
	if err != nil {
		return nil, err
	}
	x32, err := xt.Float32()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	out, shape, err := m.ForwardHost(ctx, x32, xt.Shape)
	if err != nil {
		return nil, err
	}
	res := &clusterResult{Sets: S, Points: N, Forward: time.Since(start)}
	if !slices.Equal(shape, []int{S, K, clustering.Params}) {
		return nil, fmt.Errorf("internal error: the model's output has shape %v", shape)
	}
	var modelSum, oracleSum float64
	for s := 0; s < S; s++ {
		pts := x[s*N*2 : (s+1)*N*2]
		rows := make([][]float64, K)
		for k := range rows {
			rows[k] = make([]float64, clustering.Params)
			for j := range rows[k] {
				rows[k][j] = float64(out[(s*K+k)*clustering.Params+j])
			}
		}
		ll := clustering.FromOutput(rows).LogLik(pts)
		res.PerSetModel = append(res.PerSetModel, ll/float64(N))
		modelSum += ll
		truth := clustering.Mixture{Pi: pi[s*K : (s+1)*K]}
		for k := 0; k < K; k++ {
			j := (s*K + k) * 2
			truth.Mu = append(truth.Mu, [2]float64{mu[j], mu[j+1]})
			truth.Sigma = append(truth.Sigma, [2]float64{sigma[j], sigma[j+1]})
		}
		oracleSum += truth.LogLik(pts)
	}
	res.ModelLL = modelSum / float64(S*N)
	res.OracleLL = oracleSum / float64(S*N)
	if math.IsNaN(res.ModelLL) {
		return nil, errors.New("the model's log-likelihood is NaN")
	}
	return res, nil
}
