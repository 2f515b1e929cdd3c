package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/isab-vk/isab-vk/examples/clustering"
	"github.com/isab-vk/isab-vk/vk"
)

// The amortised clustering example (examples/clustering): a Set Transformer
// reads a set of 2-D points and outputs a 4-component Gaussian mixture;
// clustering.Evaluate measures it on the benchmark sets.

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
	res, err := clustering.Evaluate(ctx, dev, *weights, *bench)
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
