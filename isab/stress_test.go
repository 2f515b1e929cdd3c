package isab

import (
	"context"
	"math"
	"math/rand"
	"runtime"
	"sync"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/ref"
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

// TestConcurrentForward runs Forward from several goroutines on one model
// (run it under -race) and checks every result against the serial one.
func TestConcurrentForward(t *testing.T) {
	dev := testutil.Device(t)
	cfg := Config{Dim: 16, Heads: 2, DimHead: 8, NumLatents: 4, LatentSelfAttend: true}
	m, err := New(dev, cfg, RandomWeights(cfg, 6))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := rand.New(rand.NewSource(7))
	const workers = 6
	inputs := make([]*Input, workers)
	want := make([][]float32, workers)
	for i := range inputs {
		n := 5 + 7*i
		inputs[i] = &Input{X: RandomNormal(r, 2*n*cfg.Dim), XShape: []int{2, n, cfg.Dim}}
		if want[i], _, err = m.ForwardHost(context.Background(), inputs[i]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, workers*10)
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for rep := 0; rep < 10; rep++ {
				i := (g + rep) % workers
				got, _, err := m.ForwardHost(context.Background(), inputs[i])
				if err != nil {
					errs <- err.Error()
					return
				}
				for j := range got {
					if got[j] != want[i][j] {
						errs <- "concurrent result differs from the serial one"
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
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
