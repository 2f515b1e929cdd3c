package benchkit

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/isab-vk/isab-vk/isab"
	"github.com/isab-vk/isab-vk/ops"
)

func TestParseShape(t *testing.T) {
	s, err := ParseShape("1, 16384,512,8,128")
	if err != nil || s != DefaultShape {
		t.Fatalf("ParseShape = %v, %v", s, err)
	}
	if s.String() != "1,16384,512,8,128" {
		t.Fatalf("String = %q", s.String())
	}
	for _, bad := range []string{"", "1,2,3,4", "1,2,3,4,5,6", "1,2,x,4,5", "1,0,3,4,5", "1,-2,3,4,5"} {
		if _, err := ParseShape(bad); err == nil {
			t.Errorf("ParseShape(%q) accepted", bad)
		}
	}
	var l ShapeList
	if err := l.Set("1,2,3,4,5"); err != nil {
		t.Fatal(err)
	}
	if err := l.Set("2,3,4,5,6"); err != nil {
		t.Fatal(err)
	}
	if l.String() != "1,2,3,4,5 2,3,4,5,6" {
		t.Fatalf("ShapeList = %q", l.String())
	}
}

func TestSweep(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
	}{
		{"4096..65536", []int{4096, 8192, 16384, 32768, 65536}},
		{"100..1000", []int{100, 200, 400, 800}},
		{"7..7", []int{7}},
		{"1..4", []int{1, 2, 4}},
	} {
		w, err := ParseSweep(c.in)
		if err != nil {
			t.Fatalf("ParseSweep(%q): %v", c.in, err)
		}
		if got := w.Ns(); !slices.Equal(got, c.want) {
			t.Errorf("%s: Ns = %v, want %v", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"", "4096", "4096-65536", "a..b", "0..8", "8..4", "1..99999999999999"} {
		if _, err := ParseSweep(bad); err == nil {
			t.Errorf("ParseSweep(%q) accepted", bad)
		}
	}
	shapes := []Shape{{1, 5, 8, 2, 3}, {2, 5, 8, 2, 3}, {1, 9, 8, 2, 3}}
	if got := Expand(shapes, nil); !slices.Equal(got, shapes) {
		t.Fatalf("Expand without a sweep = %v", got)
	}
	got := Expand(shapes, &Sweep{From: 16, To: 32})
	want := []Shape{{1, 16, 8, 2, 3}, {1, 32, 8, 2, 3}, {2, 16, 8, 2, 3}, {2, 32, 8, 2, 3}}
	if !slices.Equal(got, want) {
		t.Fatalf("Expand = %v, want %v", got, want)
	}
}

func TestSummarize(t *testing.T) {
	ms := func(v ...float64) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x * 1e6)
		}
		return out
	}
	if s := Summarize(ms(3, 1, 2)); s != (Stats{2, 1, 3, 2, 1}) {
		t.Errorf("odd: %+v", s)
	}
	// Sample standard deviation of 4, 1, 2, 8: sqrt(28.75/3).
	if s := Summarize(ms(4, 1, 2, 8)); s.Median != 3 || s.Min != 1 || s.Max != 8 || s.Mean != 3.75 ||
		math.Abs(s.Stddev-math.Sqrt(28.75/3)) > 1e-12 {
		t.Errorf("even: %+v", s)
	}
	if s := Summarize(ms(5)); s.Stddev != 0 || s.Mean != 5 {
		t.Errorf("one: %+v", s)
	}
	if s := Summarize(nil); !math.IsNaN(s.Median) {
		t.Errorf("empty: %+v", s)
	}
}

func TestAggregateStages(t *testing.T) {
	ms := func(v float64) time.Duration { return time.Duration(v * 1e6) }
	pass := func(scale float64) []isab.StageTime {
		return []isab.StageTime{
			{Kernel: "matmul", Stage: "q1", Time: ms(1 * scale)}, {Kernel: "matmul", Stage: "kv1", Time: ms(2 * scale)},
			{Kernel: "attention", Stage: "attn1", Time: ms(4 * scale)},
			{Kernel: "matmul", Stage: "out1", Time: ms(1 * scale)},
			{Kernel: "attention", Stage: "attn2", Time: ms(3 * scale)}, {Kernel: "attn_combine", Stage: "attn2", Time: ms(0.5 * scale)},
			{Kernel: "matmul", Time: ms(2 * scale)},
		}
	}
	if AggregateStages([][]isab.StageTime{nil, {}}) != nil {
		t.Fatal("passes without timestamps gave a report")
	}
	r := AggregateStages([][]isab.StageTime{pass(1), nil, pass(3), pass(2)})
	if r == nil {
		t.Fatal("nil report")
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	if !near(r.GPUMs, 27) { // median of 13.5, 40.5, 27
		t.Errorf("GPUMs = %v, want 27", r.GPUMs)
	}
	row := func(name string, n int, ms float64, kernels ...string) StageTime {
		return StageTime{Name: name, Dispatches: n, MsMedian: ms, Kernels: kernels}
	}
	wantK := []StageTime{row("matmul", 4, 12), row("attention", 2, 14), row("attn_combine", 1, 1)}
	wantF := []StageTime{row("q1", 1, 2, "matmul"), row("kv1", 1, 4, "matmul"), row("attn1", 1, 8, "attention"), row("out1", 1, 2, "matmul"),
		row("attn2", 2, 7, "attention", "attn_combine"), row("unlabelled", 1, 4, "matmul")}
	for _, c := range []struct {
		got, want []StageTime
	}{{r.Kernels, wantK}, {r.Forward, wantF}} {
		if len(c.got) != len(c.want) {
			t.Fatalf("got %v, want %v", c.got, c.want)
		}
		for i := range c.got {
			g, w := c.got[i], c.want[i]
			if g.Name != w.Name || g.Dispatches != w.Dispatches || !near(g.MsMedian, w.MsMedian) || !slices.Equal(g.Kernels, w.Kernels) {
				t.Errorf("row %d: got %+v, want %+v", i, g, w)
			}
		}
	}
	r.Choices = []StepChoice{{Step: "q1", Call: "Linear 128x512 -> 512", Choice: ops.Choice{Op: "Linear", Chosen: "matmul_tex", Kernel: "matmul_tex",
		Candidates: []ops.Candidate{{Name: "matmul_coop", Why: "fp16 only"}, {Name: "matmul_tex", Kernel: "matmul_tex", Chosen: true}}}}}
	var buf bytes.Buffer
	WriteStages(&buf, r)
	for _, s := range []string{"attn_combine", "out1", "GPU total", "attention+attn_combine", "matmul_coop: fp16 only"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("WriteStages lacks %q:\n%s", s, buf.String())
		}
	}
}

func TestScalingRatios(t *testing.T) {
	rs := []Result{
		{B: 1, N: 4096, Dim: 8, Heads: 2, M: 3, MsMedian: 2},
		{B: 1, N: 8192, Dim: 8, Heads: 2, M: 3, MsMedian: 5},
		{B: 1, N: 65536, Dim: 8, Heads: 2, M: 3, MsMedian: 40},
		{B: 2, N: 4096, Dim: 8, Heads: 2, M: 3, MsMedian: 1}, // no n=65536
	}
	got := ScalingRatios(rs, 4096, 65536)
	if len(got) != 1 || got[0].Ratio != 20 || !strings.Contains(got[0].Family, "b=1 ") {
		t.Fatalf("ScalingRatios = %+v", got)
	}
}

func TestWritePlot(t *testing.T) {
	dir := t.TempDir()
	var rs []Result
	for _, n := range []int{64, 128, 256, 512} {
		rs = append(rs,
			Result{Precision: "fp32", B: 1, N: n, Dim: 16, Heads: 2, DimHead: 8, M: 4, MsMedian: float64(n) / 50, DeviceMemBytes: int64(n) << 12},
			Result{Precision: "fp32", B: 2, N: n, Dim: 16, Heads: 2, DimHead: 8, M: 4, MsMedian: float64(n) / 20, DeviceMemBytes: int64(n) << 13})
	}
	for _, c := range []struct {
		name string
		rs   []Result
		w    int // panels
	}{
		{"sweep.png", rs, 2},
		{"single.png", rs[:1], 2},                        // one point: the axes must still have a range
		{"nomem.png", []Result{{N: 10, MsMedian: 1}}, 1}, // no memory figure: time panel only
	} {
		path := filepath.Join(dir, c.name)
		if err := WritePlot(path, "test", c.rs); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s is not a valid PNG: %v", c.name, err)
		}
		b := img.Bounds()
		if b.Dx() < 100*c.w || b.Dy() < 100 || b.Dx() < b.Dy()*c.w {
			t.Errorf("%s: %dx%d, want about %d panels side by side", c.name, b.Dx(), b.Dy(), c.w)
		}
		// The lines must have drawn something other than the background.
		colors := map[[4]uint32]bool{}
		for y := b.Min.Y; y < b.Max.Y; y += 3 {
			for x := b.Min.X; x < b.Max.X; x += 3 {
				r, g, bl, a := img.At(x, y).RGBA()
				colors[[4]uint32{r, g, bl, a}] = true
			}
		}
		if len(colors) < 3 {
			t.Errorf("%s: only %d colours", c.name, len(colors))
		}
	}
	if err := WritePlot(filepath.Join(dir, "none.png"), "test", nil); err == nil {
		t.Error("no results: no error")
	}
	if err := WritePlot(filepath.Join(dir, "absent", "x.png"), "test", rs); err == nil {
		t.Error("unwritable path: no error")
	}
}

func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	if p := NewProgress(&buf, 5); p != nil {
		t.Fatal("a bytes.Buffer is not a terminal, yet got a bar")
	}
	var nilBar *Progress
	nilBar.Start("x") // a nil bar draws nothing and must not panic
	nilBar.Done()
	p := newProgress(&buf, 4)
	p.Start("a")
	p.Done()
	p.Start("b")
	out := buf.String()
	if !strings.Contains(out, "1/4 a") || !strings.Contains(out, "2/4 b") || !strings.Contains(out, "\r\x1b[K") {
		t.Fatalf("bar output %q", out)
	}
	if !strings.Contains(out, "[#######.......................]") {
		t.Fatalf("after one of four steps the bar should be a quarter full: %q", out)
	}
}
