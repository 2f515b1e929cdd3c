package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/examples/clustering"
	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/safetensors"
)

// compareOut checks the out tensor of an output file against an expected
// file within NMSE 1e-9 and that the file holds nothing else.
func compareOut(t *testing.T, got, want string) float64 {
	t.Helper()
	g, err := safetensors.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := safetensors.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if names := g.Names(); len(names) != 1 || names[0] != "out" {
		t.Fatalf("output holds %q, want only out", names)
	}
	gt, _ := g.Get("out")
	wt, ok := w.Get("out")
	if !ok {
		t.Fatal("expected file lacks out")
	}
	if gt.DType != safetensors.F32 || !slices.Equal(gt.Shape, wt.Shape) {
		t.Fatalf("out is %s %v, want F32 %v", gt.DType, gt.Shape, wt.Shape)
	}
	gv, _ := gt.Float32()
	wv, _ := wt.Float64()
	e := ref.NMSE(gv, wv)
	if !(e <= 1e-9) {
		t.Errorf("out NMSE %.3g > 1e-9", e)
	}
	return e
}

// TestRunSetTransformerGolden runs every Set Transformer kind of the golden
// cases through "isab run", picked from the metadata and by --model.
func TestRunSetTransformerGolden(t *testing.T) {
	dir := testutil.GoldenDir(t)
	out := filepath.Join(t.TempDir(), "out.safetensors")
	for _, c := range []struct{ name, kind, heads string }{
		{"st_isab_ln", "settransformer-isab", "4"},
		{"st_sab", "settransformer-sab", "4"},
		{"st_pma_ln", "settransformer-pma", "4"},
		{"st_model_clustering", "settransformer-model", "4"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := func(suffix string) string { return filepath.Join(dir, c.name+suffix) }
			code, _, stderr := runTool(t, "run", "--weights", p(".weights.safetensors"), "--input", p(".input.safetensors"), "--output", out)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			t.Logf("kind from metadata: NMSE %.3g", compareOut(t, out, p(".expected.safetensors")))
			code, _, stderr = runTool(t, "run", "--model", c.kind, "--heads", c.heads, "--weights", p(".weights.safetensors"),
				"--input", p(".input.safetensors"), "--output", out)
			if code != 0 {
				t.Fatalf("--model: exit %d: %s", code, stderr)
			}
			compareOut(t, out, p(".expected.safetensors"))
		})
	}
	// --ln must agree with the keys, and --num-inds with I.
	p := func(suffix string) string { return filepath.Join(dir, "st_isab_ln"+suffix) }
	for _, c := range []struct {
		flag, wants string
	}{{"--ln=false", "unexpected key"}, {"--num-inds=5", "inducing points"}} {
		code, _, stderr := runTool(t, "run", c.flag, "--weights", p(".weights.safetensors"), "--input", p(".input.safetensors"), "--output", out)
		if code == 0 || !strings.Contains(stderr, c.wants) {
			t.Errorf("%s: exit %d, stderr %q, want an error naming %q", c.flag, code, stderr, c.wants)
		}
	}
}

// TestRunSetTransformerExample runs the clustering example's weights on a
// small input written here (no golden files needed).
func TestRunSetTransformerExample(t *testing.T) {
	root := testutil.ModuleRoot(t)
	weights := filepath.Join(root, "examples", "clustering", "weights.safetensors")
	dir := t.TempDir()
	in := filepath.Join(dir, "in.safetensors")
	x := make([]float32, 2*9*2)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)) * 3)
	}
	if err := safetensors.WriteFile(in, []*safetensors.Tensor{safetensors.NewF32("x", []int{2, 9, 2}, x)}, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.safetensors")
	code, _, stderr := runTool(t, "run", "--weights", weights, "--input", in, "--output", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	f, err := safetensors.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	ot, ok := f.Get("out")
	if !ok || !slices.Equal(ot.Shape, []int{2, 4, 5}) {
		t.Fatalf("out missing or of the wrong shape: %v", f.Names())
	}
	for _, c := range []struct {
		name  string
		args  []string
		wants string
	}{
		{"unknown model", []string{"--model", "transformer"}, "unknown model kind"},
		{"dim-head", []string{"--dim-head", "8"}, "--dim-head applies to isab only"},
		{"isab kind", []string{"--model", "isab"}, "isab"},
		{"heads", []string{"--heads", "3"}, "multiple of heads 3"},
		{"ln on an isab", []string{"--ln", "--weights", testutil.Testdata(t, "tiny_basic.weights.safetensors")}, "Set Transformer kinds only"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"run", "--weights", weights, "--input", in, "--output", out}, c.args...)
			code, _, stderr := runTool(t, args...)
			line := strings.TrimSpace(stderr)
			if code == 0 || strings.Contains(line, "\n") || !strings.Contains(line, c.wants) {
				t.Errorf("exit %d, stderr %q, want one line naming %q", code, stderr, c.wants)
			}
		})
	}
}

// TestClusterEval checks the Go evaluation of the clustering example
// against PyTorch's (results.json) and the oracle.
func TestClusterEval(t *testing.T) {
	root := testutil.ModuleRoot(t)
	ex := func(name string) string { return filepath.Join(root, "examples", "clustering", name) }
	dev := testutil.Device(t)
	res, err := clustering.Evaluate(context.Background(), dev, ex("weights.safetensors"), ex("benchmark.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(ex("results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var py struct {
		ModelLL  float64   `json:"model_ll"`
		OracleLL float64   `json:"oracle_ll"`
		PerSet   []float64 `json:"per_set_model_ll"`
	}
	if err := json.Unmarshal(raw, &py); err != nil {
		t.Fatal(err)
	}
	t.Logf("Go model %.6f, PyTorch model %.6f, Go oracle %.6f, PyTorch oracle %.6f (forward %v)",
		res.ModelLL, py.ModelLL, res.OracleLL, py.OracleLL, res.Forward)
	if d := math.Abs(res.ModelLL - py.ModelLL); !(d <= 1e-4) {
		t.Errorf("Go model_ll %.6f differs from PyTorch's %.6f by %.3g > 1e-4", res.ModelLL, py.ModelLL, d)
	}
	if d := math.Abs(res.OracleLL - py.OracleLL); !(d <= 1e-9) {
		t.Errorf("oracle_ll %.9f, PyTorch's %.9f", res.OracleLL, py.OracleLL)
	}
	if d := math.Abs(res.OracleLL - res.ModelLL); !(d <= 0.1) {
		t.Errorf("Go model_ll %.4f is %.3g from the oracle's %.4f, want within 0.1", res.ModelLL, d, res.OracleLL)
	}
	if len(py.PerSet) != len(res.PerSetModel) {
		t.Fatalf("%d sets, results.json has %d", len(res.PerSetModel), len(py.PerSet))
	}
	worst := 0.0
	for i, v := range py.PerSet {
		worst = max(worst, math.Abs(v-res.PerSetModel[i]))
	}
	t.Logf("largest per-set difference from PyTorch: %.3g", worst)
	if !(worst <= 1e-4) {
		t.Errorf("a set's mean log-likelihood differs from PyTorch's by %.3g > 1e-4", worst)
	}

	// The command prints the three figures.
	code, stdout, stderr := runTool(t, "cluster", "--eval", "--weights", ex("weights.safetensors"),
		"--benchmark", ex("benchmark.safetensors"), "--results", ex("results.json"))
	if code != 0 {
		t.Fatalf("cluster --eval: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"model, Go/Vulkan", "model, PyTorch", "oracle (true parameters)", "-1.5145", "-1.5108"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("cluster --eval output lacks %q:\n%s", want, stdout)
		}
	}
	if code, _, _ := runTool(t, "cluster"); code != 2 {
		t.Errorf("cluster without --eval: exit %d, want 2", code)
	}
}
