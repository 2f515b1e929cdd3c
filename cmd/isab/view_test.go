package main

import (
	"context"
	"debug/elf"
	"errors"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/mixture"
	"github.com/isab-vk/isab-vk/settransformer"
	"github.com/isab-vk/isab-vk/view"
)

func clusteringWeights(t *testing.T) string {
	return filepath.Join(testutil.ModuleRoot(t), "examples", "clustering", "weights.safetensors")
}

// checkViewPNG decodes a screenshot of "isab view --n 300 --seed seed
// --size 800x600" and compares it with the device's output: the frame that
// view.Render draws of the same set's Prediction, computed on the device,
// must match it pixel for pixel, and most points must show in the heat
// colour of their attention probability where they project.
func checkViewPNG(t *testing.T, path string, seed int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != 800 || b.Dy() != 600 {
		t.Fatalf("%s is %v, want 800x600", path, b)
	}
	dev := testutil.Device(t)
	m, err := view.LoadModel(dev, clusteringWeights(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	app, err := view.NewApp(m, 300, seed, "isab", 800, 600)
	if err != nil {
		t.Fatal(err)
	}
	s := app.State()
	want, err := view.Render(dev, s)
	if err != nil {
		t.Fatal(err)
	}
	colours := map[[3]uint32]bool{}
	differ := 0
	for y := 0; y < 600; y++ {
		for x := 0; x < 800; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, b >> 8}] = true
			if r2, g2, b2, _ := want.At(x, y).RGBA(); r != r2 || g != g2 || b != b2 {
				differ++
			}
		}
	}
	if len(colours) < 50 {
		t.Errorf("%s: %d distinct colours, want at least 50", path, len(colours))
	}
	if differ > 0 {
		t.Errorf("%s: %d pixels differ from the frame of the device's prediction", path, differ)
	}
	heat := s.HeatValues()
	hits := 0
	for i, p := range s.Points {
		px, py := s.Project(p[0], p[1])
		want := view.HeatColor(heat[i])
		r, g, b, _ := img.At(int(px), int(py)).RGBA()
		got := [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
		ok := true
		for c := range got {
			if d := got[c] - int(want[c]); d < -2 || d > 2 {
				ok = false
			}
		}
		if ok {
			hits++
		}
	}
	if hits < len(s.Points)/3 {
		t.Errorf("%s: only %d of %d points show in their heat colour", path, hits, len(s.Points))
	}
}

func TestViewScreenshot(t *testing.T) {
	out := filepath.Join(t.TempDir(), "view.png")
	code, stdout, stderr := runTool(t, "view", "--weights", clusteringWeights(t), "--seed", "4", "--size", "800x600", "--screenshot", out)
	if code != 0 || !strings.Contains(stdout, "wrote ") {
		t.Fatalf("view --screenshot: exit %d, %q %q", code, stdout, stderr)
	}
	checkViewPNG(t, out, 4)
	if code, _, stderr := runTool(t, "view", "--weights", clusteringWeights(t), "--block", "sab", "--screenshot", out); code != 1 || !strings.Contains(stderr, "sab") {
		t.Errorf("view --block sab: exit %d, %q", code, stderr)
	}
}

// buildTools builds, as make build does, the headless isab and isab-view
// (-tags window) next to it into a temporary folder, and returns isab's path.
func buildTools(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, b := range [][]string{
		{"build", "-o", filepath.Join(dir, "isab"), "."},
		{"build", "-tags", "window", "-o", filepath.Join(dir, viewerName), "."},
	} {
		if out, err := exec.Command("go", b...).CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(b, " "), err, out)
		}
	}
	return filepath.Join(dir, "isab")
}

// runBinary runs a built binary with extra environment and returns its exit
// status, stdout and stderr.
func runBinary(t *testing.T, env []string, bin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s: %v", bin, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestViewHandoff checks the split that make build makes: bin/isab links
// no X11, GL or Vulkan library (vk loads libvulkan itself), and its isab
// view without --screenshot hands over to the isab-view beside it, whose
// exit status and one error line come back unchanged.
func TestViewHandoff(t *testing.T) {
	bin := buildTools(t)
	for _, name := range []string{bin, filepath.Join(filepath.Dir(bin), viewerName)} {
		f, err := elf.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		libs, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		x11 := false
		for _, l := range libs {
			for _, bad := range []string{"libX11", "libxcb", "libGL", "libvulkan"} {
				if strings.HasPrefix(l, bad) {
					x11 = true
					if name == bin {
						t.Errorf("%s links %s (ldd: %v)", filepath.Base(name), l, libs)
					}
				}
			}
		}
		if name != bin && !x11 {
			t.Errorf("%s links no X11 library (%v): is its window in?", filepath.Base(name), libs)
		}
	}

	// No isab-view anywhere: one line that says how to get it.
	alone := filepath.Join(t.TempDir(), "isab")
	copyFile(t, bin, alone)
	noPath := "PATH=" + t.TempDir()
	code, _, stderr := runBinary(t, []string{noPath}, alone, "view", "--weights", clusteringWeights(t))
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "make build") || !strings.Contains(stderr, "--screenshot") {
		t.Errorf("isab view without isab-view: exit %d, %q", code, stderr)
	}
	// A headless binary under the name isab-view: no loop.
	copyFile(t, bin, filepath.Join(filepath.Dir(alone), viewerName))
	code, _, stderr = runBinary(t, []string{noPath}, alone, "view", "--weights", clusteringWeights(t))
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "no window either") {
		t.Errorf("isab view with a headless isab-view: exit %d, %q", code, stderr)
	}

	testutil.Device(t) // the rest opens the device; skips without Vulkan
	code, _, stderr = runBinary(t, []string{"DISPLAY=", "WAYLAND_DISPLAY=", noPath}, bin, "view", "--weights", clusteringWeights(t))
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "no display") {
		t.Errorf("isab view handed over without a display: exit %d, %q", code, stderr)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestViewXvfb runs the built tool under a virtual X server: a screenshot,
// then the window itself (swapchain, a few frames, scripted keys), which
// bin/isab hands over to the isab-view beside it.
func TestViewXvfb(t *testing.T) {
	if _, err := exec.LookPath("xvfb-run"); err != nil {
		t.Skip("xvfb-run not installed (Debian package xvfb; make view-deps): window tests skipped")
	}
	testutil.Device(t) // skips without Vulkan
	bin := buildTools(t)
	out := filepath.Join(t.TempDir(), "shot.png")
	cmd := exec.Command("xvfb-run", "-a", bin, "view", "--weights", clusteringWeights(t), "--seed", "9", "--size", "800x600", "--screenshot", out)
	cmd.Env = append(os.Environ(), "ISAB_VALIDATION=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xvfb-run isab view --screenshot: %v\n%s", err, b)
	}
	checkViewPNG(t, out, 9)

	cmd = exec.Command("xvfb-run", "-a", bin, "view", "--weights", clusteringWeights(t), "--size", "800x600", "--frames", "6", "--keys", "nphr", "-v")
	cmd.Env = append(os.Environ(), "ISAB_VALIDATION=1")
	b, err := cmd.CombinedOutput()
	text := string(b)
	if err != nil {
		t.Fatalf("xvfb-run isab view --frames 6: %v\n%s", err, text)
	}
	for _, want := range []string{"presenting on", "presented 6 frames", "window closed (300 points, seed 2, isab 0, head 1)"} {
		if !strings.Contains(text, want) {
			t.Errorf("window run: output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Validation") {
		t.Errorf("window run: validation messages:\n%s", text)
	}
}

// TestViewMixtureEngine checks that the viewer's mixture, which its model
// computes as five settransformer modules and a head, is the one the whole
// settransformer.Model (isab cluster's path) computes on the device.
func TestViewMixtureEngine(t *testing.T) {
	dev := testutil.Device(t)
	st, err := settransformer.Load(dev, clusteringWeights(t), settransformer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := view.LoadModel(dev, clusteringWeights(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, n := range []int{1, 7, 33, 250} {
		pts, _ := view.Sample(n, int64(n))
		x := make([]float32, 0, 2*n)
		for _, p := range pts {
			x = append(x, float32(p[0]), float32(p[1]))
		}
		out, _, err := st.ForwardHost(context.Background(), x, []int{1, n, 2})
		if err != nil {
			t.Fatal(err)
		}
		want, err := mixture.FromFlat(out)
		if err != nil {
			t.Fatal(err)
		}
		p, err := m.Predict(context.Background(), pts)
		if err != nil {
			t.Fatal(err)
		}
		got := p.Mixture
		if len(got.Pi) != len(want.Pi) {
			t.Fatalf("n %d: %d components in the viewer, %d from the model", n, len(got.Pi), len(want.Pi))
		}
		for k := range want.Pi {
			d := math.Abs(got.Pi[k] - want.Pi[k])
			for j := 0; j < 2; j++ {
				d = math.Max(d, math.Abs(got.Mu[k][j]-want.Mu[k][j]))
				d = math.Max(d, math.Abs(got.Sigma[k][j]-want.Sigma[k][j]))
			}
			if d > 1e-5 {
				t.Errorf("n %d component %d: viewer %v %v %v, model %v %v %v", n, k,
					got.Pi[k], got.Mu[k], got.Sigma[k], want.Pi[k], want.Mu[k], want.Sigma[k])
			}
		}
	}
}

func TestViewNoDisplay(t *testing.T) {
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	t.Setenv("PATH", t.TempDir()) // no isab-view to hand over to
	code, _, stderr := runTool(t, "view", "--weights", clusteringWeights(t))
	want := "no display" // the window build
	if !hasWindow {
		want = "make build" // the headless build, without isab-view
	}
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "--screenshot") {
		t.Errorf("view without a display: exit %d, %q", code, stderr)
	}
}
