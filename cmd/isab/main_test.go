package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

// runTool runs the tool in-process and returns its exit code and output.
func runTool(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	testutil.Device(t) // skips without Vulkan; checks validation messages at the end
	var stdout, stderr bytes.Buffer
	code := mainErr(context.Background(), args, &stdout, &stderr)
	for _, m := range vk.ValidationMessages() {
		t.Errorf("validation layer: %s", m)
	}
	return code, stdout.String(), stderr.String()
}

func compareOutput(t *testing.T, got, want string) {
	t.Helper()
	g, err := safetensors.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := safetensors.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"out", "latents"} {
		gt, ok := g.Get(name)
		if !ok || gt.DType != safetensors.F32 {
			t.Fatalf("output lacks F32 %q", name)
		}
		wt, _ := w.Get(name)
		if !slices.Equal(gt.Shape, wt.Shape) {
			t.Fatalf("%s shape %v, want %v", name, gt.Shape, wt.Shape)
		}
		gv, _ := gt.Float32()
		wv, _ := wt.Float64()
		if e := ref.NMSE(gv, wv); !(e <= 1e-9) {
			t.Errorf("%s NMSE %.3g", name, e)
		}
	}
}

func TestRunFixtures(t *testing.T) {
	td := func(name string) string { return testutil.Testdata(t, name) }
	out := filepath.Join(t.TempDir(), "out.safetensors")
	code, _, stderr := runTool(t, "run", "--weights", td("odd_mask_selfattend.weights.safetensors"),
		"--input", td("odd_mask_selfattend.input.safetensors"), "--output", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	compareOutput(t, out, td("odd_mask_selfattend.expected.safetensors"))

	// Configuration that the metadata lacks comes from the flags.
	code, _, stderr = runTool(t, "run", "--weights", td("meta_override.weights.safetensors"),
		"--input", td("meta_override.input.safetensors"), "--output", out,
		"--heads", "4", "--dim-head", "4", "--latent-self-attend=true")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	compareOutput(t, out, td("meta_override.expected.safetensors"))
}

func TestRunBadInput(t *testing.T) {
	dir := t.TempDir()
	td := func(name string) string { return testutil.Testdata(t, name) }
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	w := td("tiny_basic.weights.safetensors")
	in := td("tiny_basic.input.safetensors")
	out := filepath.Join(dir, "out.safetensors")
	cases := []struct {
		name  string
		args  []string
		wants string
	}{
		{"missing weights flag", []string{"--input", in, "--output", out}, "--weights is required"},
		{"missing file", []string{"--weights", filepath.Join(dir, "absent"), "--input", in, "--output", out}, "no such file"},
		{"empty file", []string{"--weights", write("empty", ""), "--input", in, "--output", out}, "safetensors"},
		{"header past end", []string{"--weights", write("hdr", "\xff\xff\x00\x00\x00\x00\x00\x00{}"), "--input", in, "--output", out}, "safetensors"},
		{"header not JSON", []string{"--weights", w, "--input", write("nj", "\x04\x00\x00\x00\x00\x00\x00\x00abcd"), "--output", out}, "safetensors"},
		{"wrong x dim", []string{"--weights", td("ext2d_f16.weights.safetensors"), "--input", in, "--output", out}, "x has shape"},
		{"weights and input of different cases", []string{"--weights", w, "--input", td("ext2d_f16.input.safetensors"), "--output", out}, "shape"},
		{"bad heads", []string{"--weights", w, "--input", in, "--output", out, "--heads", "3"}, "heads"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runTool(t, append([]string{"run"}, c.args...)...)
			if code == 0 {
				t.Fatal("exit 0")
			}
			line := strings.TrimSpace(stderr)
			if strings.Count(line, "\n") != 0 || !strings.HasPrefix(line, "isab run: ") || !strings.Contains(line, c.wants) {
				t.Fatalf("stderr %q, want one line naming %q", stderr, c.wants)
			}
		})
	}
}

func TestCommands(t *testing.T) {
	if code, stdout, _ := runTool(t, "devices"); code != 0 || !strings.Contains(stdout, "0: ") {
		t.Fatalf("devices: exit %d, %q", code, stdout)
	}
	if code, _, _ := runTool(t, "frobnicate"); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
	if code, stdout, stderr := runTool(t, "run", "--help"); code != 0 || !strings.Contains(stdout, "--weights") || stderr != "" {
		t.Fatalf("run --help: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, stdout, stderr := runTool(t, "bench", "--shape", "1,33,16,2,3", "--dim-head", "8", "--iters", "1", "--json"); code != 0 || !strings.Contains(stdout, `"ms_median"`) {
		t.Fatalf("bench: exit %d, %q %q", code, stdout, stderr)
	}
	if code, stdout, stderr := runTool(t, "demo", "--n", "64", "--runs", "1"); code != 0 || !strings.Contains(stdout, ": OK") {
		t.Fatalf("demo: exit %d, %q %q", code, stdout, stderr)
	}
}

// mainOut runs the tool in-process without a device (for help and usage
// errors) and returns its exit code and output.
func mainOut(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := mainErr(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestHelp checks that requested help goes to stdout with status 0, that
// "isab help COMMAND" prints what "isab COMMAND --help" does, and that a
// bad help request is one line on stderr with status 2.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"help", "help"}} {
		code, stdout, stderr := mainOut(args...)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "usage: isab COMMAND") || !strings.Contains(stdout, "version") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	for _, c := range commands() {
		code, want, stderr := mainOut(c.name, "--help")
		if code != 0 || stderr != "" || !strings.HasPrefix(want, "usage: isab "+c.name+" ") || !strings.Contains(want, "flags:") {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", c.name, code, want, stderr)
		}
		if code, got, stderr := mainOut("help", c.name); code != 0 || stderr != "" || got != want {
			t.Errorf("help %s: exit %d, stdout %q, stderr %q; want stdout %q", c.name, code, got, stderr, want)
		}
	}
	for _, args := range [][]string{{"help", "xyz"}, {"help", "run", "demo"}, {"run", "--bogus"}} {
		code, stdout, stderr := mainOut(args...)
		if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "isab ") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want status 2 and one line", args, code, stdout, stderr)
		}
	}
}

// TestClusterOutsideRoot checks that cluster --eval run elsewhere than the
// repository root, without path flags, says so on one line.
func TestClusterOutsideRoot(t *testing.T) {
	t.Chdir(t.TempDir())
	code, stdout, stderr := mainOut("cluster", "--eval")
	if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 ||
		!strings.Contains(stderr, "run from the repository root, or pass --weights") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestNoDriver checks that a loader that finds no driver gives one line
// that names the variables to check.
func TestNoDriver(t *testing.T) {
	testutil.Device(t) // skips without Vulkan
	res := runChild(t, "", []string{"VK_ICD_FILENAMES=/nonexistent.json", "VK_DRIVER_FILES=/nonexistent.json"}, "devices")
	checkHostile(t, res, 1, "no Vulkan driver (ICD) could be loaded; check VK_DRIVER_FILES")
}
