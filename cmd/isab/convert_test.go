package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/safetensors"
)

// TestConvertTorch converts the torch.save fixture and checks the tensors
// and the metadata the flags give.
func TestConvertTorch(t *testing.T) {
	td := func(name string) string { return testutil.Testdata(t, name) }
	out := filepath.Join(t.TempDir(), "w.safetensors")
	code, stdout, stderr := mainOut("convert", td("odd_mask_selfattend.weights.pt"), out, "--heads", "3", "--dim-head", "16", "--latent-self-attend")
	if code != 0 || stderr != "" || !strings.Contains(stdout, "7 tensors") {
		t.Fatalf("convert: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	got, err := safetensors.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := safetensors.ReadFile(td("odd_mask_selfattend.weights.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range want.Names() {
		g, ok := got.Get(name)
		w, _ := want.Get(name)
		if !ok || g.DType != w.DType || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("%s differs", name)
		}
	}
	if m := got.Metadata; m["heads"] != "3" || m["dim_head"] != "16" || m["latent_self_attend"] != "true" || len(m) != 3 {
		t.Errorf("metadata %v", m)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"convert", td("odd_mask_selfattend.weights.pt")}, "two arguments"},
		{[]string{"convert", "a", "b", "c"}, "got 3"},
		{[]string{"convert", "a", "b", "--heads", "-1"}, "positive"},
		{[]string{"convert", "a", "b", "--bogus"}, "-bogus"},
	} {
		code, _, stderr := mainOut(c.args...)
		if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q", c.args, code, stderr)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.pt")
	code, _, stderr = mainOut("convert", td("tiny_basic.input.safetensors")+"/x", bad)
	if code != 1 || strings.Count(stderr, "\n") != 1 {
		t.Errorf("missing input: exit %d, stderr %q", code, stderr)
	}
}

// TestRunTorch runs the torch.save fixture directly and after convert.
func TestRunTorch(t *testing.T) {
	td := func(name string) string { return testutil.Testdata(t, name) }
	dir := t.TempDir()
	out := filepath.Join(dir, "out.safetensors")
	code, _, stderr := runTool(t, "run", "--model", "isab", "--weights", td("odd_mask_selfattend.weights.pt"),
		"--heads", "3", "--dim-head", "16", "--latent-self-attend",
		"--input", td("odd_mask_selfattend.input.safetensors"), "--output", out)
	if code != 0 {
		t.Fatalf("run .pt: exit %d: %s", code, stderr)
	}
	compareOutput(t, out, td("odd_mask_selfattend.expected.safetensors"))
	conv := filepath.Join(dir, "w.safetensors")
	if code, _, stderr := mainOut("convert", td("odd_mask_selfattend.weights.pt"), conv, "--heads", "3", "--dim-head", "16", "--latent-self-attend"); code != 0 {
		t.Fatalf("convert: exit %d: %s", code, stderr)
	}
	out2 := filepath.Join(dir, "out2.safetensors")
	if code, _, stderr := runTool(t, "run", "--weights", conv, "--input", td("odd_mask_selfattend.input.safetensors"), "--output", out2); code != 0 {
		t.Fatalf("run converted: exit %d: %s", code, stderr)
	}
	compareOutput(t, out2, td("odd_mask_selfattend.expected.safetensors"))
}
