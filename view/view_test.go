package view

import (
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/safetensors"
)

func weightsPath(t *testing.T) string {
	return filepath.Join(testutil.ModuleRoot(t), "examples", "clustering", "weights.safetensors")
}

// loadModel opens the device and loads the clustering model on it, both
// closed when the test ends.
func loadModel(t *testing.T) *Model {
	t.Helper()
	dev := testutil.Device(t)
	m, err := LoadModel(dev, weightsPath(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// distinctColors counts the different RGB values of img.
func distinctColors(img image.Image) int {
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	return len(seen)
}

// near says whether the pixel at (x, y) is within tol of c in every channel.
func near(img image.Image, x, y int, c [3]uint8, tol int) bool {
	r, g, b, _ := img.At(x, y).RGBA()
	got := [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
	for i := range got {
		if d := got[i] - int(c[i]); d < -tol || d > tol {
			return false
		}
	}
	return true
}

func TestGlyphs(t *testing.T) {
	for r, g := range glyphs {
		if len(g) != 15 {
			t.Errorf("glyph %q has %d cells, want 15", r, len(g))
		}
	}
}

func TestProjectRoundTrip(t *testing.T) {
	s := &State{Width: 960, Height: 640}
	for _, p := range [][2]float64{{0, 0}, {-4.5, 3.25}, {5.9, -5.9}} {
		px, py := s.Project(p[0], p[1])
		if !s.InPlot(px, py) {
			t.Errorf("%v projects to (%g, %g), outside the plot", p, px, py)
		}
		x, y := s.Unproject(px, py)
		if math.Abs(x-p[0]) > 1e-9 || math.Abs(y-p[1]) > 1e-9 {
			t.Errorf("%v -> (%g, %g) -> (%g, %g)", p, px, py, x, y)
		}
	}
	if x0, _ := s.Project(-1, 0); x0 >= 364 {
		t.Errorf("x does not grow to the right")
	}
	if _, y0 := s.Project(0, 1); y0 >= 320 {
		t.Errorf("y does not grow upwards")
	}
}

// TestRenderPoints renders a handful of points with known heat values on
// the device and finds each one's colour at its projected position.
func TestRenderPoints(t *testing.T) {
	dev := testutil.Device(t)
	s := &State{
		Width: 640, Height: 480,
		Points: [][2]float64{{-3, -3}, {3, 3}, {-3, 3}, {3, -3}, {0, 0}},
		Heat:   []float64{0, 0.5, 1, 2, 4}, // divided by the largest
		Mixture: Mixture{
			Pi:    []float64{0.5, 0.5},
			Mu:    [][2]float64{{-2, 1}, {2, -1}},
			Sigma: [][2]float64{{0.4, 0.4}, {0.8, 0.3}},
		},
		Title:  []string{"TEST"},
		Footer: []string{"Q QUIT"},
	}
	img, err := Render(dev, s)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 640 || b.Dy() != 480 {
		t.Fatalf("image is %v, want 640x480", b)
	}
	if n := distinctColors(img); n < 10 {
		t.Errorf("%d distinct colours, want at least 10", n)
	}
	heat := s.HeatValues()
	for i, p := range s.Points {
		px, py := s.Project(p[0], p[1])
		want := HeatColor(heat[i])
		if !near(img, int(px), int(py), want, 2) {
			t.Errorf("point %d at pixel (%d, %d): colour %v, want %v", i, int(px), int(py), img.At(int(px), int(py)), want)
		}
	}
	// Each component's mean carries a cross in its colour.
	for k, mu := range s.Mixture.Mu {
		px, py := s.Project(mu[0], mu[1])
		if !near(img, int(px)+3, int(py), ComponentColors[k], 1) {
			t.Errorf("component %d: no cross at its mean (%d, %d): %v", k, int(px), int(py), img.At(int(px)+3, int(py)))
		}
	}
	// The legend's heat bar runs from the low to the high colour.
	pw := s.plotWidth()
	found := 0
	for y := 0; y < s.Height && found == 0; y++ {
		if near(img, pw+14, y, HeatColor(0), 1) && near(img, pw+14+PanelWidth-29, y, HeatColor(1), 1) {
			found = y
		}
	}
	if found == 0 {
		t.Errorf("no heat bar in the legend")
	}
}

// TestRenderModel renders the clustering model's view of a sampled set and
// checks that most points show in their own heat colour.
func TestRenderModel(t *testing.T) {
	m := loadModel(t)
	app, err := NewApp(m, 300, 1, "isab", 960, 640)
	if err != nil {
		t.Fatal(err)
	}
	app.Query, app.Head = 5, 2
	s := app.State()
	img, err := Render(m.dev, s)
	if err != nil {
		t.Fatal(err)
	}
	if n := distinctColors(img); n < 50 {
		t.Errorf("%d distinct colours, want at least 50", n)
	}
	heat := s.HeatValues()
	hits := 0
	for i, p := range s.Points {
		px, py := s.Project(p[0], p[1])
		if near(img, int(px), int(py), HeatColor(heat[i]), 2) {
			hits++
		}
	}
	// Points overlap in the clusters (the hottest is drawn on top) and the
	// ellipses are drawn over them, so not every centre shows its own colour.
	if hits < len(s.Points)/3 {
		t.Errorf("only %d of %d points show their heat colour at their position", hits, len(s.Points))
	}
}

func TestModel(t *testing.T) {
	m := loadModel(t)
	if m.Heads != 4 || m.Dim != 128 || m.NumInds != 32 || m.Seeds != 4 {
		t.Fatalf("model: heads %d dim %d inds %d seeds %d", m.Heads, m.Dim, m.NumInds, m.Seeds)
	}
	for seed := int64(1); seed <= 3; seed++ {
		pts, truth := Sample(300, seed)
		p, err := m.Predict(t.Context(), pts)
		if err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		for _, v := range p.Mixture.Pi {
			sum += v
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("seed %d: pi sums to %g", seed, sum)
		}
		for _, rows := range [][][][]float64{p.ISAB, p.PMA} {
			for _, head := range rows {
				for _, row := range head {
					s := 0.0
					for _, v := range row {
						s += v
					}
					if math.Abs(s-1) > 1e-5 || len(row) != 300 {
						t.Fatalf("seed %d: attention row of %d sums to %g", seed, len(row), s)
					}
				}
			}
		}
		// Every well-populated true component has a predicted mean nearby.
		for k, mu := range truth.Mu {
			if truth.Pi[k] < 0.15 {
				continue
			}
			best := math.Inf(1)
			for _, q := range p.Mixture.Mu {
				best = math.Min(best, math.Hypot(q[0]-mu[0], q[1]-mu[1]))
			}
			if best > 0.6 {
				t.Errorf("seed %d: true mean %v (pi %.2f) has no predicted mean within 0.6 (nearest %.2f); predicted %v",
					seed, mu, truth.Pi[k], best, p.Mixture.Mu)
			}
		}
	}
}

func TestApp(t *testing.T) {
	m := loadModel(t)
	app, err := NewApp(m, 50, 7, "pma", 800, 600)
	if err != nil {
		t.Fatal(err)
	}
	app.Prev()
	if app.Query != m.Seeds-1 {
		t.Errorf("prev from 0: query %d, want %d", app.Query, m.Seeds-1)
	}
	app.Next()
	app.NextHead()
	if app.Query != 0 || app.Head != 1 {
		t.Errorf("query %d head %d, want 0 1", app.Query, app.Head)
	}
	added, err := app.AddPoint(100, 100)
	if err != nil || !added || len(app.Points) != 51 || len(app.State().Heat) != 51 {
		t.Errorf("add point: %v %v, %d points", added, err, len(app.Points))
	}
	if added, _ := app.AddPoint(790, 100); added {
		t.Errorf("a click in the legend added a point")
	}
	if err := app.Resample(); err != nil || app.Seed != 8 || len(app.Points) != 50 {
		t.Errorf("resample: %v, seed %d, %d points", err, app.Seed, len(app.Points))
	}
	if _, err := NewApp(m, 10, 1, "sab", 800, 600); err == nil {
		t.Errorf("block sab accepted")
	}
}

// TestLoadModelErrors checks that weights with a missing or mis-shaped key,
// or heads that do not divide the width, are an error that names the
// problem, not a panic.
func TestLoadModelErrors(t *testing.T) {
	dev := testutil.Device(t)
	f, err := safetensors.ReadFile(weightsPath(t))
	if err != nil {
		t.Fatal(err)
	}
	write := func(t *testing.T, edit func(map[string]*safetensors.Tensor, map[string]string)) string {
		tensors := map[string]*safetensors.Tensor{}
		for k, v := range f.Tensors {
			c := *v
			tensors[k] = &c
		}
		meta := map[string]string{}
		for k, v := range f.Metadata {
			meta[k] = v
		}
		edit(tensors, meta)
		var list []*safetensors.Tensor
		for _, v := range tensors {
			list = append(list, v)
		}
		b, err := safetensors.Encode(list, meta)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "w.safetensors")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, c := range []struct {
		name, want string
		edit       func(map[string]*safetensors.Tensor, map[string]string)
	}{
		{"no head bias", "dec.3.bias", func(ts map[string]*safetensors.Tensor, _ map[string]string) { delete(ts, "dec.3.bias") }},
		{"no seeds", "dec.0.S", func(ts map[string]*safetensors.Tensor, _ map[string]string) { delete(ts, "dec.0.S") }},
		{"stray key", "extra", func(ts map[string]*safetensors.Tensor, _ map[string]string) {
			ts["extra"] = &safetensors.Tensor{Name: "extra", DType: "F32", Shape: []int{1}, Data: make([]byte, 4)}
		}},
		{"4-D points", "enc.0.", func(ts map[string]*safetensors.Tensor, _ map[string]string) {
			ts["enc.0.mab0.fc_k.weight"].Shape = []int{64, 4} // same bytes, 4 inputs
		}},
		{"heads", "heads", func(_ map[string]*safetensors.Tensor, m map[string]string) { m["heads"] = "3" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := LoadModel(dev, write(t, c.edit))
			if err == nil {
				m.Close()
				t.Fatalf("no error")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not name %q", err, c.want)
			}
		})
	}
	if _, err := LoadModel(nil, weightsPath(t)); err == nil {
		t.Errorf("nil device: no error")
	}
}
