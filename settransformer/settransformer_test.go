package settransformer

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

// goldenBound is the NMSE allowed against the golden float64 truth.
const goldenBound = 1e-9

// GoldenCase is the part of a cases.json entry the tests use.
type goldenCase struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
}

func TestGolden(t *testing.T) {
	dir := testutil.GoldenDir(t)
	raw, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	dev := testutil.Device(t)
	ran := 0
	for _, c := range cases {
		if !strings.HasPrefix(c.Kind, "settransformer-") {
			continue
		}
		ran++
		t.Run(c.Name, func(t *testing.T) {
			e := runGolden(t, dev, dir, c.Name)
			t.Logf("%s (%s): NMSE %.3g", c.Name, c.Kind, e)
			if !(e <= goldenBound) {
				t.Errorf("%s: NMSE %.3g > %.0g", c.Name, e, goldenBound)
			}
		})
	}
	if ran == 0 {
		t.Error("cases.json lists no settransformer case")
	}
}

// runGolden runs one golden case and returns the NMSE of out.
func runGolden(t *testing.T, dev *vk.Device, dir, name string) float64 {
	t.Helper()
	m, err := Load(dev, filepath.Join(dir, name+".weights.safetensors"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	in, err := safetensors.ReadFile(filepath.Join(dir, name+".input.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	xt, ok := in.Get("x")
	if !ok {
		t.Fatal("input lacks x")
	}
	x, err := xt.Float32()
	if err != nil {
		t.Fatal(err)
	}
	got, shape, err := m.ForwardHost(context.Background(), x, xt.Shape)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := safetensors.ReadFile(filepath.Join(dir, name+".expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	ot, ok := exp.Get("out")
	if !ok {
		t.Fatal("expected file lacks out")
	}
	if !slices.Equal(shape, ot.Shape) {
		t.Fatalf("out has shape %v, want %v", shape, ot.Shape)
	}
	want, err := ot.Float64()
	if err != nil {
		t.Fatal(err)
	}
	return ref.NMSE(got, want)
}

// stateDict builds random weights of a model in memory, keeping the
// float32-rounded values for the reference.
type stateDict struct {
	rng *rand.Rand
	f   *safetensors.File
}

func newStateDict(seed uint64, meta map[string]string) *stateDict {
	return &stateDict{rng: rand.New(rand.NewPCG(seed, 7)), f: &safetensors.File{Metadata: meta, Tensors: map[string]*safetensors.Tensor{}}}
}

func (s *stateDict) add(key string, scale float64, shape ...int) []float64 {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v32 := make([]float32, n)
	v64 := make([]float64, n)
	for i := range v32 {
		v32[i] = float32(s.rng.NormFloat64() * scale)
		v64[i] = float64(v32[i])
	}
	s.f.Tensors[key] = safetensors.NewF32(key, shape, v32)
	return v64
}

func (s *stateDict) mab(prefix string, dimQ, dimK, dim int, ln bool) ref.MABWeights {
	// Weights of about PyTorch's initial scale, 1/sqrt(fan-in), keep the
	// activations of a deep model moderate.
	fan := func(in int) float64 { return 1 / math.Sqrt(float64(in)) }
	var w ref.MABWeights
	w.QW, w.QB = s.add(prefix+"fc_q.weight", fan(dimQ), dim, dimQ), s.add(prefix+"fc_q.bias", 0.1, dim)
	w.KW, w.KB = s.add(prefix+"fc_k.weight", fan(dimK), dim, dimK), s.add(prefix+"fc_k.bias", 0.1, dim)
	w.VW, w.VB = s.add(prefix+"fc_v.weight", fan(dimK), dim, dimK), s.add(prefix+"fc_v.bias", 0.1, dim)
	w.OW, w.OB = s.add(prefix+"fc_o.weight", fan(dim), dim, dim), s.add(prefix+"fc_o.bias", 0.1, dim)
	if ln {
		w.LN0W, w.LN0B = s.add(prefix+"ln0.weight", 1, dim), s.add(prefix+"ln0.bias", 0.1, dim)
		w.LN1W, w.LN1B = s.add(prefix+"ln1.weight", 1, dim), s.add(prefix+"ln1.bias", 0.1, dim)
	}
	return w
}

// refFn is a float64 model on one set [n, dimIn], returning its rows.
type refFn func(x []float64, n int) ([]float64, int)

// refISAB adds an ISAB's random weights and returns its reference.
func refISAB(s *stateDict, prefix string, dimIn, dim, heads, m int, ln bool) refFn {
	inds := s.add(prefix+"I", 1, 1, m, dim)
	w0 := s.mab(prefix+"mab0.", dim, dimIn, dim, ln)
	w1 := s.mab(prefix+"mab1.", dimIn, dim, dim, ln)
	return func(x []float64, n int) ([]float64, int) {
		h := ref.MAB(w0, dim, dimIn, dim, heads, inds, m, x, n)
		return ref.MAB(w1, dimIn, dim, dim, heads, x, n, h, m), n
	}
}

func refSAB(s *stateDict, prefix string, dimIn, dim, heads int, ln bool) refFn {
	w := s.mab(prefix+"mab.", dimIn, dimIn, dim, ln)
	return func(x []float64, n int) ([]float64, int) {
		return ref.MAB(w, dimIn, dimIn, dim, heads, x, n, x, n), n
	}
}

func refPMA(s *stateDict, prefix string, dim, heads, k int, ln bool) refFn {
	seeds := s.add(prefix+"S", 1, 1, k, dim)
	w := s.mab(prefix+"mab.", dim, dim, dim, ln)
	return func(x []float64, n int) ([]float64, int) {
		return ref.MAB(w, dim, dim, dim, heads, seeds, k, x, n), k
	}
}

// TestAgainstReference runs every kind with random weights, odd sizes and
// both LayerNorm settings against the float64 reference.
func TestAgainstReference(t *testing.T) {
	dev := testutil.Device(t)
	cases := []struct {
		kind                       string
		b, n, dimIn, dim, heads, m int
		ln                         bool
		dimOut                     int
	}{
		{KindSAB, 1, 1, 7, 8, 2, 0, false, 0},
		{KindSAB, 3, 33, 5, 12, 3, 0, true, 0},
		{KindISAB, 2, 257, 3, 16, 4, 7, true, 0},
		{KindISAB, 1, 7, 33, 32, 1, 1, false, 0},
		{KindPMA, 3, 33, 20, 20, 4, 3, true, 0},
		{KindPMA, 2, 1, 8, 8, 2, 1, false, 0},
		{KindModel, 2, 257, 2, 32, 4, 7, false, 5},
		{KindModel, 3, 33, 3, 16, 2, 5, true, 3},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%s_b%d_n%d_ln%v", c.kind, c.b, c.n, c.ln), func(t *testing.T) {
			s := newStateDict(uint64(i+1), map[string]string{"kind": c.kind, "heads": strconv.Itoa(c.heads)})
			var f refFn
			switch c.kind {
			case KindSAB:
				f = refSAB(s, "", c.dimIn, c.dim, c.heads, c.ln)
			case KindISAB:
				f = refISAB(s, "", c.dimIn, c.dim, c.heads, c.m, c.ln)
			case KindPMA:
				f = refPMA(s, "", c.dim, c.heads, c.m, c.ln)
			case KindModel:
				fs := []refFn{
					refISAB(s, "enc.0.", c.dimIn, c.dim, c.heads, c.m, c.ln),
					refISAB(s, "enc.1.", c.dim, c.dim, c.heads, c.m, c.ln),
					refPMA(s, "dec.0.", c.dim, c.heads, 4, c.ln),
					refSAB(s, "dec.1.", c.dim, c.dim, c.heads, c.ln),
					refSAB(s, "dec.2.", c.dim, c.dim, c.heads, c.ln),
				}
				w := s.add("dec.3.weight", 1/math.Sqrt(float64(c.dim)), c.dimOut, c.dim)
				b := s.add("dec.3.bias", 0.1, c.dimOut)
				f = func(x []float64, n int) ([]float64, int) {
					for _, g := range fs {
						x, n = g(x, n)
					}
					return ref.Linear(x, n, c.dim, w, c.dimOut, b), n
				}
			}
			m, err := LoadFile(dev, s.f, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Config().LN != c.ln {
				t.Errorf("LN %v, want %v (from the keys)", m.Config().LN, c.ln)
			}
			x := make([]float32, c.b*c.n*c.dimIn)
			for j := range x {
				x[j] = float32(s.rng.NormFloat64())
			}
			got, shape, err := m.ForwardHost(context.Background(), x, []int{c.b, c.n, c.dimIn})
			if err != nil {
				t.Fatal(err)
			}
			var want []float64
			rows := 0
			for bi := 0; bi < c.b; bi++ {
				xs := make([]float64, c.n*c.dimIn)
				for j := range xs {
					xs[j] = float64(x[bi*c.n*c.dimIn+j])
				}
				var y []float64
				y, rows = f(xs, c.n)
				want = append(want, y...)
			}
			cfg := m.Config()
			if wantShape := []int{c.b, rows, cfg.DimOut}; !slices.Equal(shape, wantShape) || cfg.OutRows(c.n) != rows {
				t.Fatalf("out shape %v, want %v", shape, wantShape)
			}
			e := ref.NMSE(got, want)
			t.Logf("NMSE %.3g", e)
			if !(e <= 1e-10) {
				t.Errorf("NMSE %.3g > 1e-10", e)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dev := testutil.Device(t)
	base := func() *stateDict {
		s := newStateDict(9, map[string]string{"kind": KindPMA, "heads": "2"})
		refPMA(s, "", 8, 2, 3, false)
		return s
	}
	cases := []struct {
		name, want string
		edit       func(s *stateDict) Options
	}{
		{"missing key", `"mab.fc_o.bias"`, func(s *stateDict) Options { delete(s.f.Tensors, "mab.fc_o.bias"); return Options{} }},
		{"extra key", `"mab.extra"`, func(s *stateDict) Options { s.add("mab.extra", 1, 2); return Options{} }},
		{"bad shape", "mab.fc_k.weight", func(s *stateDict) Options { s.add("mab.fc_k.weight", 1, 8, 7); return Options{} }},
		{"no heads", "heads", func(s *stateDict) Options { delete(s.f.Metadata, "heads"); return Options{} }},
		{"heads do not divide", "multiple", func(s *stateDict) Options { return Options{Heads: 3} }},
		{"unknown kind", "unknown kind", func(s *stateDict) Options { return Options{Kind: "isab"} }},
		{"no kind", "no kind", func(s *stateDict) Options { delete(s.f.Metadata, "kind"); return Options{} }},
		{"ln keys missing", `"mab.ln0.weight"`, func(s *stateDict) Options { return Options{LN: Bool(true)} }},
		{"seeds mismatch", "seeds", func(s *stateDict) Options { return Options{NumInds: 5} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base()
			opts := c.edit(s)
			m, err := LoadFile(dev, s.f, opts)
			if err == nil {
				m.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

func TestForwardErrors(t *testing.T) {
	dev := testutil.Device(t)
	s := newStateDict(10, map[string]string{"kind": KindSAB, "heads": "2"})
	refSAB(s, "", 4, 8, 2, false)
	m, err := LoadFile(dev, s.f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Forward(context.Background(), nil); err == nil {
		t.Error("nil x: no error")
	}
	if _, _, err := m.ForwardHost(context.Background(), make([]float32, 10), []int{1, 2, 5}); err == nil || !strings.Contains(err.Error(), "want [batch, n, 4]") {
		t.Errorf("wrong width: %v", err)
	}
}

// TestConcurrentForward runs one model from several goroutines at once.
func TestConcurrentForward(t *testing.T) {
	dev := testutil.Device(t)
	s := newStateDict(11, map[string]string{"kind": KindISAB, "heads": "2"})
	refISAB(s, "", 3, 8, 2, 5, true)
	m, err := LoadFile(dev, s.f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	x := make([]float32, 2*40*3)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)))
	}
	want, _, err := m.ForwardHost(context.Background(), x, []int{2, 40, 3})
	if err != nil {
		t.Fatal(err)
	}
	const workers = 4
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			for i := 0; i < 3; i++ {
				got, _, err := m.ForwardHost(context.Background(), x, []int{2, 40, 3})
				if err != nil {
					errs <- err
					return
				}
				for j := range got {
					if got[j] != want[j] {
						errs <- fmt.Errorf("element %d: %g, want %g", j, got[j], want[j])
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
