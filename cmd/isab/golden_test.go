package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
)

// TestRunGolden runs every case of the golden cases.json through "isab run"
// with the precision and kernels the tool picks for the device (fp32 where
// the device lacks 16-bit storage, as SwiftShader does), and compares out
// (and latents, for the ISAB) with the PyTorch outputs. make test runs it
// on lavapipe and on SwiftShader (ISAB_DEVICE, scripts/swiftshader.sh).
func TestRunGolden(t *testing.T) {
	dir := testutil.GoldenDir(t)
	t.Logf("device: %s", testutil.Device(t).Info().Name) // the one isab run picks
	data, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatalf("golden cases: %v", err)
	}
	var cases []struct{ Name, Kind string }
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatalf("golden cases.json: %v", err)
	}
	if len(cases) == 0 {
		t.Fatal("golden cases.json lists no case")
	}
	out := filepath.Join(t.TempDir(), "out.safetensors")
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			p := func(suffix string) string { return filepath.Join(dir, c.Name+suffix) }
			// fp32 explicitly: the golden bound (NMSE 1e-9) is float32's;
			// Auto's fp16 on a device with 16-bit storage is checked by
			// TestRunPrecision.
			code, _, stderr := runTool(t, "run", "--precision", "fp32", "--weights", p(".weights.safetensors"),
				"--input", p(".input.safetensors"), "--output", out)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if strings.HasPrefix(c.Kind, "settransformer") {
				compareOut(t, out, p(".expected.safetensors"))
			} else {
				compareOutput(t, out, p(".expected.safetensors"))
			}
		})
	}
}
