package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/safetensors"
)

// TestRunPrecision runs a fixture with --precision fp16 (NMSE 1e-5 against
// the expected outputs) and checks the flag's errors.
func TestRunPrecision(t *testing.T) {
	td := func(name string) string { return testutil.Testdata(t, name) }
	if !testutil.Device(t).Info().Storage16 {
		t.Skip("no 16-bit storage")
	}
	out := filepath.Join(t.TempDir(), "out.safetensors")
	code, _, stderr := runTool(t, "run", "--precision", "fp16", "--weights", td("odd_mask_selfattend.weights.safetensors"),
		"--input", td("odd_mask_selfattend.input.safetensors"), "--output", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	g, err := safetensors.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	w, err := safetensors.ReadFile(td("odd_mask_selfattend.expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"out", "latents"} {
		gt, ok := g.Get(name)
		if !ok || gt.DType != safetensors.F32 {
			t.Fatalf("output lacks F32 %q", name)
		}
		wt, _ := w.Get(name)
		gv, _ := gt.Float32()
		wv, _ := wt.Float64()
		e := ref.NMSE(gv, wv)
		t.Logf("fp16 %s NMSE %.3g", name, e)
		if !(e <= 1e-5) {
			t.Errorf("fp16 %s NMSE %.3g > 1e-5", name, e)
		}
	}

	code, _, stderr = runTool(t, "run", "--precision", "fp8", "--weights", td("odd_mask_selfattend.weights.safetensors"),
		"--input", td("odd_mask_selfattend.input.safetensors"), "--output", out)
	if code == 0 || !strings.Contains(stderr, "unknown precision") {
		t.Errorf("--precision fp8: exit %d, %q", code, stderr)
	}
	code, stdout, stderr := runTool(t, "demo", "--n", "33", "--runs", "1", "--precision", "fp16")
	if code != 0 || !strings.Contains(stdout, "precision: fp16") || !strings.Contains(stdout, ": OK") {
		t.Errorf("demo --precision fp16: exit %d, %q %q", code, stdout, stderr)
	}
}
