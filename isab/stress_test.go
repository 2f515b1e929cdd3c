package isab

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"sync"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/vk"
)

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func refWeights(w *Weights) ref.ISABWeights {
	var lat []float64
	if w.Latents != nil {
		lat = toF64(w.Latents)
	}
	return ref.ISABWeights{
		Latents: lat,
		Q1:      toF64(w.Attn1.Q), KV1: toF64(w.Attn1.KV), Out1: toF64(w.Attn1.Out),
		Q2: toF64(w.Attn2.Q), KV2: toF64(w.Attn2.KV), Out2: toF64(w.Attn2.Out),
	}
}

func refConfig(c Config) ref.ISABConfig {
	return ref.ISABConfig{Dim: c.Dim, Heads: c.Heads, DimHead: c.DimHead, M: c.NumLatents, LatentSelfAttend: c.LatentSelfAttend}
}

// concShape is the shape of one pair of inputs of the concurrency tests:
// x [b, n, dim], with a key mask [b, n] when masked.
type concShape struct {
	b, n   int
	masked bool
}

// concCase is one input of the concurrency tests: on the host, on the
// device (shared by the goroutines, which only read it), and the results
// of its serial run.
type concCase struct {
	in               *Input
	x, mask          *Tensor // mask is nil when the input has none
	wantOut, wantLat []float32
}

// concFixture is a model and the inputs that the concurrency tests run on
// it. The inputs come in twins, cases 2k and 2k+1, of one shape and mask
// with different x.
type concFixture struct {
	m     *Model
	lat   *Tensor // external latents [m, dim]; nil when the model learns them
	cases []*concCase
}

// twin is the index of case i's twin.
func twin(i int) int { return i ^ 1 }

// concKeep is the key mask of an input [b, n]: every third position is
// dropped, so with n = 1 some sets are wholly masked.
func concKeep(b, n int) []bool {
	keep := make([]bool, b*n)
	for i := range keep {
		keep[i] = i%3 != 1
	}
	return keep
}

// newConcFixture makes twin inputs of each shape from seed (with lat's
// values as their latents when lat is not nil), uploads them, and runs
// each one serially through ForwardHost for the expected results. The
// device inputs are freed when the test ends.
func newConcFixture(tb testing.TB, m *Model, lat *Tensor, shapes []concShape, seed int64) *concFixture {
	tb.Helper()
	f := &concFixture{m: m, lat: lat}
	tb.Cleanup(f.free)
	var latHost []float32
	if lat != nil {
		var err error
		if latHost, err = lat.Read(); err != nil {
			tb.Fatalf("reading the latents: %v", err)
		}
	}
	r := rand.New(rand.NewSource(seed))
	for _, s := range shapes {
		for range 2 {
			c := &concCase{in: &Input{X: RandomNormal(r, s.b*s.n*m.cfg.Dim), XShape: []int{s.b, s.n, m.cfg.Dim}}}
			if s.masked {
				c.in.Mask = concKeep(s.b, s.n)
			}
			if lat != nil {
				c.in.Latents, c.in.LatentsShape = latHost, lat.Shape()
			}
			f.cases = append(f.cases, c)
			if err := f.prepareCase(c); err != nil {
				tb.Fatalf("case %d %s: %v", len(f.cases)-1, c.describe(), err)
			}
		}
	}
	return f
}

// prepareCase uploads c's input and runs it serially for its expected
// results.
func (f *concFixture) prepareCase(c *concCase) error {
	var err error
	if c.x, err = NewTensor(f.m.dev, c.in.X, c.in.XShape...); err != nil {
		return err
	}
	if c.in.Mask != nil {
		if c.mask, err = NewMask(f.m.dev, c.in.Mask, c.in.XShape[:2]...); err != nil {
			return err
		}
	}
	if c.wantOut, c.wantLat, err = f.m.ForwardHost(context.Background(), c.in); err != nil {
		return fmt.Errorf("serial run: %w", err)
	}
	return nil
}

// free frees the device inputs.
func (f *concFixture) free() {
	for _, c := range f.cases {
		c.x.Free()
		c.mask.Free()
	}
}

// opts are the Forward options of case c: its mask and the external
// latents.
func (f *concFixture) opts(c *concCase) []ForwardOption {
	var o []ForwardOption
	if c.mask != nil {
		o = append(o, WithMask(c.mask))
	}
	if f.lat != nil {
		o = append(o, WithLatents(f.lat))
	}
	return o
}

// describe names c's shape and whether it has a mask, for messages.
func (c *concCase) describe() string {
	return fmt.Sprintf("x %v mask=%v", c.in.XShape, c.in.Mask != nil)
}

// sameBits returns an error naming the first element where got differs
// from want bit for bit (NaNs and signed zeros included), or nil.
func sameBits(what string, got, want []float32) error {
	if len(got) != len(want) {
		return fmt.Errorf("%s: %d values, the serial run gave %d", what, len(got), len(want))
	}
	for i := range got {
		if g, w := math.Float32bits(got[i]), math.Float32bits(want[i]); g != w {
			return fmt.Errorf("%s[%d] = %v (%#08x), the serial run gave %v (%#08x)", what, i, got[i], g, want[i], w)
		}
	}
	return nil
}

// check compares out and latents with c's serial results.
func (c *concCase) check(out, lat []float32) error {
	if err := sameBits("out", out, c.wantOut); err != nil {
		return err
	}
	return sameBits("latents", lat, c.wantLat)
}

// readCheck reads out and latents back and compares them with c's serial
// results.
func (c *concCase) readCheck(out, lat *Tensor) error {
	o, err := out.Read()
	if err != nil {
		return fmt.Errorf("reading out: %w", err)
	}
	l, err := lat.Read()
	if err != nil {
		return fmt.Errorf("reading latents: %w", err)
	}
	return c.check(o, l)
}

// concPass is one way of running case i of a fixture and checking the
// results.
type concPass struct {
	name string
	run  func(f *concFixture, i int) error
}

// hostPass runs case i through ForwardHost: upload, Forward, read back.
func hostPass(f *concFixture, i int) error {
	c := f.cases[i]
	out, lat, err := f.m.ForwardHost(context.Background(), c.in)
	if err != nil {
		return err
	}
	return c.check(out, lat)
}

// devicePass runs Forward on case i's shared device tensors.
func devicePass(f *concFixture, i int) error {
	c := f.cases[i]
	out, lat, err := f.m.Forward(context.Background(), c.x, f.opts(c)...)
	if err != nil {
		return err
	}
	defer out.Free()
	defer lat.Free()
	return c.readCheck(out, lat)
}

// planPass returns a pass that prepares a plan over an x of its own with
// case i's mask, runs it runs times, writing case i's x before even runs
// and its twin's before odd ones, checks every run and closes the plan.
func planPass(runs int) func(f *concFixture, i int) error {
	return func(f *concFixture, i int) error {
		c := f.cases[i]
		x, err := NewTensor(f.m.dev, make([]float32, len(c.in.X)), c.in.XShape...)
		if err != nil {
			return err
		}
		defer x.Free()
		pl, err := f.m.Prepare(x, f.opts(c)...)
		if err != nil {
			return err
		}
		defer pl.Close()
		for r := range runs {
			j := i
			if r%2 == 1 {
				j = twin(i)
			}
			if err := x.Write(f.cases[j].in.X); err != nil {
				return fmt.Errorf("run %d: %w", r, err)
			}
			if err := pl.Run(context.Background()); err != nil {
				return fmt.Errorf("run %d: %w", r, err)
			}
			if err := f.cases[j].readCheck(pl.Out(), pl.Latents()); err != nil {
				return fmt.Errorf("run %d (x of case %d): %w", r, j, err)
			}
		}
		return nil
	}
}

// concWorker returns the work of goroutine g: reps passes that cycle
// through passes and f's cases, offset by g so that the goroutines run
// different ones at once. It stops at the first error.
func concWorker(f *concFixture, passes []concPass, reps int) func(g int) error {
	return func(g int) error {
		for rep := range reps {
			i := (3*g + rep) % len(f.cases)
			p := passes[(g+rep)%len(passes)]
			if err := p.run(f, i); err != nil {
				return fmt.Errorf("rep %d, %s pass of case %d (%s): %w", rep, p.name, i, f.cases[i].describe(), err)
			}
		}
		return nil
	}
}

// runConcurrently runs fn(0) ... fn(workers-1) in as many goroutines and
// returns their errors, indexed by goroutine.
func runConcurrently(workers int, fn func(g int) error) []error {
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[g] = fn(g)
		}()
	}
	wg.Wait()
	return errs
}

// concModel is a model that TestConcurrentForward runs.
type concModel struct {
	name string
	cfg  Config
	prec Precision
	// extLatents is the number of external latents [m, dim] passed with
	// WithLatents; 0 when the model learns them.
	extLatents int
}

// concModels are the models of TestConcurrentForward: FP32, FP16, and
// external latents shared by every pass.
var concModels = []concModel{
	{"fp32", Config{Dim: 12, Heads: 3, DimHead: 4, NumLatents: 5, LatentSelfAttend: true}, FP32, 0},
	{"fp16", Config{Dim: 12, Heads: 3, DimHead: 4, NumLatents: 5}, FP16, 0},
	{"external-latents", Config{Dim: 12, Heads: 3, DimHead: 4, LatentSelfAttend: true}, FP32, 5},
}

// concShapes are TestConcurrentForward's inputs: odd sizes, with and
// without a mask.
var concShapes = []concShape{{3, 1, true}, {1, 1, false}, {2, 7, true}, {1, 7, false}, {2, 33, true}, {2, 33, false}}

// TestConcurrentForward runs passes of one model from 6 goroutines at once
// (run it under -race too): ForwardHost, Forward on device tensors that
// the goroutines share, and plans that are prepared, replayed on rewritten
// x and closed, over odd sizes (n = 1, 7, 33) with and without masks, for
// each of concModels. Every out and latents must equal the serial run's
// bit for bit, the serial run must match the float64 reference, and the
// device must hold as many objects and bytes afterwards as before.
func TestConcurrentForward(t *testing.T) {
	dev := testutil.Device(t)
	for _, mc := range concModels {
		t.Run(mc.name, func(t *testing.T) { testConcurrent(t, dev, mc) })
	}
}

// testConcurrent is TestConcurrentForward for one model.
func testConcurrent(t *testing.T, dev *vk.Device, mc concModel) {
	w := RandomWeights(mc.cfg, 6)
	m, err := NewWithPrecision(dev, mc.cfg, w, mc.prec)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var lat *Tensor
	if mc.extLatents > 0 {
		r := rand.New(rand.NewSource(8))
		if lat, err = NewTensor(dev, RandomNormal(r, mc.extLatents*mc.cfg.Dim), mc.extLatents, mc.cfg.Dim); err != nil {
			t.Fatal(err)
		}
		defer lat.Free()
	}
	f := newConcFixture(t, m, lat, concShapes, 7)
	checkConcRef(t, f, w)
	objs0, bytes0 := dev.LiveObjects()
	passes := []concPass{{"host", hostPass}, {"device", devicePass}, {"plan", planPass(3)}}
	for g, err := range runConcurrently(6, concWorker(f, passes, 10)) {
		if err != nil {
			t.Errorf("goroutine %d: %v", g, err)
		}
	}
	if objs, bytes := dev.LiveObjects(); objs != objs0 || bytes != bytes0 {
		t.Errorf("after the goroutines: live objects %d -> %d, bytes %d -> %d", objs0, objs, bytes0, bytes)
	}
}

// checkConcRef checks f's serial results against the float64 reference:
// NMSE within fp32Bound, or 1e-5 in FP16.
func checkConcRef(t *testing.T, f *concFixture, w *Weights) {
	t.Helper()
	bound := fp32Bound
	if f.m.Precision() == FP16 {
		bound = 1e-5
	}
	for i, c := range f.cases {
		cfg := refConfig(f.m.cfg)
		var lat []float64
		if c.in.LatentsShape != nil {
			cfg.M, lat = c.in.LatentsShape[0], toF64(c.in.Latents)
		}
		wantOut, wantLat, err := ref.ISAB(cfg, refWeights(w), toF64(c.in.X), c.in.XShape[0], c.in.XShape[1], c.in.Mask, lat, false)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if eo, el := ref.NMSE(c.wantOut, wantOut), ref.NMSE(c.wantLat, wantLat); !(eo <= bound && el <= bound) {
			t.Errorf("case %d (%s), serial run: NMSE out %.3g, latents %.3g, bound %g", i, c.describe(), eo, el, bound)
		}
	}
}

// TestLeak runs 1000 forward passes and checks that the Go heap and the
// count of live Vulkan objects stay steady.
func TestLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the 1000-pass leak test is skipped")
	}
	dev := testutil.Device(t)
	cfg := Config{Dim: 8, Heads: 2, DimHead: 4, NumLatents: 3, LatentSelfAttend: true}
	m, err := New(dev, cfg, RandomWeights(cfg, 8))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := rand.New(rand.NewSource(9))
	x, err := NewTensor(dev, RandomNormal(r, 2*9*8), 2, 9, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Free()
	keep := make([]bool, 18)
	for i := range keep {
		keep[i] = i%3 != 0
	}
	mask, err := NewMask(dev, keep, 2, 9)
	if err != nil {
		t.Fatal(err)
	}
	defer mask.Free()
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	pass := func() {
		out, lat, err := m.Forward(context.Background(), x, WithMask(mask))
		if err != nil {
			t.Fatal(err)
		}
		out.Free()
		lat.Free()
	}
	for i := 0; i < 50; i++ { // warm up caches and pools
		pass()
	}
	objs0, bytes0 := dev.LiveObjects()
	heap0 := heap()
	for i := 0; i < 1000; i++ {
		pass()
	}
	objs1, bytes1 := dev.LiveObjects()
	heap1 := heap()
	t.Logf("live objects %d -> %d, buffer bytes %d -> %d, Go heap %d -> %d", objs0, objs1, bytes0, bytes1, heap0, heap1)
	if objs1 != objs0 || bytes1 != bytes0 {
		t.Errorf("Vulkan objects grew: %d -> %d objects, %d -> %d bytes", objs0, objs1, bytes0, bytes1)
	}
	if heap1 > heap0+2<<20 {
		t.Errorf("Go heap grew from %d to %d bytes over 1000 passes", heap0, heap1)
	}
}

// TestLargeInput runs x of [1, 100000, 512] (205 MB, above lavapipe's
// 128 MiB maxStorageBufferRange), so x and out are bound in pieces, and
// checks sampled rows and all latents against the float64 reference. The
// attention is narrow (2 heads of 8) to keep the reference quick.
func TestLargeInput(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the 205 MB input test is skipped")
	}
	dev := testutil.Device(t)
	cfg := Config{Dim: 512, Heads: 2, DimHead: 8, NumLatents: 16, LatentSelfAttend: true}
	const n = 100000
	if uint64(n*cfg.Dim*4) <= dev.Info().MaxStorageBufferRange {
		t.Logf("x fits one binding on %s; the test still runs but does not exercise splitting", dev.Info().Name)
	}
	w := RandomWeights(cfg, 10)
	m, err := New(dev, cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := rand.New(rand.NewSource(11))
	in := &Input{X: RandomNormal(r, n*cfg.Dim), XShape: []int{1, n, cfg.Dim}, Mask: make([]bool, n)}
	for i := range in.Mask {
		in.Mask[i] = r.Intn(10) != 0
	}
	out, lat, err := m.ForwardHost(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	wantOut, wantLat, err := ref.ISAB(refConfig(cfg), refWeights(w), toF64(in.X), 1, n, in.Mask, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if e := ref.NMSE(lat, wantLat); !(e <= fp32Bound) {
		t.Errorf("latents NMSE %.3g, bound %g", e, fp32Bound)
	}
	// Sampled rows of out, the ends of each binding piece among them.
	var gotRows []float32
	var wantRows []float64
	for _, row := range []int{0, 1, 65535, 65536, 65537, 81919, 81920, 99998, 99999, r.Intn(n), r.Intn(n), r.Intn(n)} {
		gotRows = append(gotRows, out[row*cfg.Dim:(row+1)*cfg.Dim]...)
		wantRows = append(wantRows, wantOut[row*cfg.Dim:(row+1)*cfg.Dim]...)
	}
	e := ref.NMSE(gotRows, wantRows)
	t.Logf("NMSE latents %.3g, sampled out rows %.3g, all out rows %.3g", ref.NMSE(lat, wantLat), e, ref.NMSE(out, wantOut))
	if !(e <= fp32Bound) {
		t.Errorf("sampled out rows NMSE %.3g, bound %g", e, fp32Bound)
	}
}

// TestNaNPropagates checks that a NaN in one set spreads through that set's
// latents and outputs, as in PyTorch, and leaves the other set alone.
func TestNaNPropagates(t *testing.T) {
	dev := testutil.Device(t)
	cfg := Config{Dim: 8, Heads: 2, DimHead: 4, NumLatents: 3}
	w := RandomWeights(cfg, 12)
	m, err := New(dev, cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := rand.New(rand.NewSource(13))
	in := &Input{X: RandomNormal(r, 2*5*8), XShape: []int{2, 5, 8}}
	in.X[3] = float32(math.NaN())
	out, lat, err := m.ForwardHost(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range out[:40] {
		if !math.IsNaN(float64(v)) {
			t.Fatalf("out[%d] = %v in the set holding a NaN", i, v)
		}
	}
	for i, v := range lat[:24] {
		if !math.IsNaN(float64(v)) {
			t.Fatalf("latents[%d] = %v in the set holding a NaN", i, v)
		}
	}
	wantOut, wantLat, err := ref.ISAB(refConfig(cfg), refWeights(w), toF64(in.X[40:]), 1, 5, nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if e1, e2 := ref.NMSE(out[40:], wantOut), ref.NMSE(lat[24:], wantLat); !(e1 <= fp32Bound && e2 <= fp32Bound) {
		t.Fatalf("the clean set: NMSE out %.3g latents %.3g", e1, e2)
	}
}
