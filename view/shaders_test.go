package view

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestShaderUpToDate checks that the committed frame.spv is what
// frame.comp compiles to (skipped without glslc).
func TestShaderUpToDate(t *testing.T) {
	if _, err := exec.LookPath("glslc"); err != nil {
		t.Skip("glslc not installed: shader freshness not checked")
	}
	out := filepath.Join(t.TempDir(), "frame.spv")
	cmd := exec.Command("glslc", "--target-env=vulkan1.1", "-O", "-o", out, "frame.comp")
	cmd.Dir = "shaders"
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("glslc: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, frameSPIRV) {
		t.Errorf("view/shaders/frame.spv is stale: run make shaders")
	}
}
