package isab

import (
	"context"
	"math/rand"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/vk"
)

// precisions returns FP32, and FP16 where dev has 16-bit storage buffers;
// it says so in the log when FP16 is left out.
func precisions(t *testing.T, dev *vk.Device) []Precision {
	t.Helper()
	if !dev.Info().Storage16 {
		t.Logf("%s has no 16-bit storage buffers: the FP16 cases are skipped", dev.Info().Name)
		return []Precision{FP32}
	}
	return []Precision{FP32, FP16}
}

// TestPlanReplay prepares one pass and runs it on three different inputs
// written into the same x tensor, checking every run against the float64
// reference, in both precisions, with a mask and odd sizes.
func TestPlanReplay(t *testing.T) {
	dev := testutil.Device(t)
	cfg := Config{Dim: 12, Heads: 3, DimHead: 5, NumLatents: 7, LatentSelfAttend: true}
	w := RandomWeights(cfg, 21)
	const b, n = 2, 33
	keep := make([]bool, b*n)
	for i := range keep {
		keep[i] = i%4 != 1
	}
	for _, prec := range precisions(t, dev) {
		t.Run(string(prec), func(t *testing.T) {
			m, err := NewWithPrecision(dev, cfg, w, prec)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			bound := fp32Bound
			if m.Precision() == FP16 {
				bound = 1e-5
			}
			r := rand.New(rand.NewSource(22))
			x, err := NewTensor(dev, RandomNormal(r, b*n*cfg.Dim), b, n, cfg.Dim)
			if err != nil {
				t.Fatal(err)
			}
			defer x.Free()
			mask, err := NewMask(dev, keep, b, n)
			if err != nil {
				t.Fatal(err)
			}
			defer mask.Free()
			var stages []StageTime
			pl, err := m.Prepare(x, WithMask(mask), WithStageTimes(&stages))
			if err != nil {
				t.Fatal(err)
			}
			defer pl.Close()
			for run := 0; run < 3; run++ {
				xs := RandomNormal(r, b*n*cfg.Dim)
				if err := x.Write(xs); err != nil {
					t.Fatal(err)
				}
				if err := pl.Run(context.Background()); err != nil {
					t.Fatal(err)
				}
				out, err := pl.Out().Read()
				if err != nil {
					t.Fatal(err)
				}
				lat, err := pl.Latents().Read()
				if err != nil {
					t.Fatal(err)
				}
				wantOut, wantLat, err := ref.ISAB(refConfig(cfg), refWeights(w), toF64(xs), b, n, keep, nil, false)
				if err != nil {
					t.Fatal(err)
				}
				eo, el := ref.NMSE(out, wantOut), ref.NMSE(lat, wantLat)
				if !(eo <= bound && el <= bound) {
					t.Fatalf("run %d: NMSE out %.3g, latents %.3g, bound %g", run, eo, el, bound)
				}
				if dev.Info().Timestamps && len(stages) == 0 {
					t.Fatalf("run %d: no stage times", run)
				}
			}
			if got := pl.Out().Shape(); len(got) != 3 || got[0] != b || got[1] != n || got[2] != cfg.Dim {
				t.Errorf("out shape %v", got)
			}
		})
	}
}

// TestPlanLifetime checks that a closed plan refuses to run, that Close is
// idempotent and frees everything, and that Prepare rejects bad input as
// Forward does.
func TestPlanLifetime(t *testing.T) {
	dev := testutil.Device(t)
	cfg := Config{Dim: 8, Heads: 2, DimHead: 4, NumLatents: 3}
	m, err := New(dev, cfg, RandomWeights(cfg, 23))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	objs0, bytes0 := dev.LiveObjects()
	x, err := NewTensor(dev, make([]float32, 7*8), 1, 7, 8)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := m.Prepare(x)
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	pl.Close()
	pl.Close()
	if err := pl.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "closed plan") {
		t.Errorf("Run after Close: %v", err)
	}
	x.Free()
	if objs, bytes := dev.LiveObjects(); objs != objs0 || bytes != bytes0 {
		t.Errorf("live objects %d -> %d, bytes %d -> %d after Close", objs0, objs, bytes0, bytes)
	}
	bad, err := NewTensor(dev, make([]float32, 7*5), 1, 7, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Free()
	if _, err := m.Prepare(bad); err == nil || !strings.Contains(err.Error(), "want [batch, n, 8]") {
		t.Errorf("Prepare with a bad shape: %v", err)
	}
	if err := bad.Write(make([]float32, 3)); err == nil {
		t.Error("Write of the wrong length was accepted")
	}
}

// peakAdded runs one pass of a model of width 64 (2 heads of 32, 8
// latents) over x [1, n, 64], with chunks of chunk rows when chunk > 0,
// and returns the device memory that the pass added at its peak.
func peakAdded(t *testing.T, n, chunk int) (int64, Config) {
	t.Helper()
	dev := testutil.Device(t)
	cfg := Config{Dim: 64, Heads: 2, DimHead: 32, NumLatents: 8, LatentSelfAttend: true}
	m, err := New(dev, cfg, RandomWeights(cfg, 24))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	x, err := NewTensor(dev, make([]float32, n*cfg.Dim), 1, n, cfg.Dim)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Free()
	_, base := dev.LiveObjects()
	dev.ResetPeakBytes()
	pl, err := m.Prepare(x, withChunkRows(chunk))
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	if err := pl.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dev.PeakBytes() - base, cfg
}

// TestPlanMemory checks the device memory that a pass adds at its peak:
// kv1 (whose halves q2 and attn2's output reuse) and out, plus small
// buffers, not also separate q2 and o2.
func TestPlanMemory(t *testing.T) {
	const n = 4096
	added, cfg := peakAdded(t, n, 0)
	kvx, out := int64(n*2*cfg.Inner()*4), int64(n*cfg.Dim*4)
	if limit := kvx + out + (kvx+out)/8; added > limit {
		t.Errorf("the pass added %d bytes at its peak, want at most %d (kv1 %d + out %d + 1/8)", added, limit, kvx, out)
	}
	t.Logf("peak added %d bytes (kv1 %d, out %d)", added, kvx, out)
}

// TestChunkedForward forces x through the pass in chunks of rows (the path
// that large n takes) and checks the results against the float64
// reference: ragged last chunk, batch of 2, mask with a fully masked set,
// with and without latent_self_attend, in both precisions.
func TestChunkedForward(t *testing.T) {
	dev := testutil.Device(t)
	const b, n = 2, 33
	precs := precisions(t, dev)
	for _, lsa := range []bool{false, true} {
		for _, prec := range precs {
			for _, chunk := range []int{1, 8, 32} {
				cfg := Config{Dim: 12, Heads: 3, DimHead: 4, NumLatents: 5, LatentSelfAttend: lsa}
				w := RandomWeights(cfg, 25)
				m, err := NewWithPrecision(dev, cfg, w, prec)
				if err != nil {
					t.Fatal(err)
				}
				r := rand.New(rand.NewSource(26))
				xs := RandomNormal(r, b*n*cfg.Dim)
				keep := make([]bool, b*n)
				for i := 0; i < n; i++ {
					keep[i] = i%3 != 0 // the second set is all masked
				}
				x, err := NewTensor(dev, xs, b, n, cfg.Dim)
				if err != nil {
					t.Fatal(err)
				}
				mask, err := NewMask(dev, keep, b, n)
				if err != nil {
					t.Fatal(err)
				}
				out, lat, err := m.Forward(context.Background(), x, WithMask(mask), withChunkRows(chunk))
				if err != nil {
					t.Fatal(err)
				}
				got, err := out.Read()
				if err != nil {
					t.Fatal(err)
				}
				gotLat, err := lat.Read()
				if err != nil {
					t.Fatal(err)
				}
				wantOut, wantLat, err := ref.ISAB(refConfig(cfg), refWeights(w), toF64(xs), b, n, keep, nil, false)
				if err != nil {
					t.Fatal(err)
				}
				bound := fp32Bound
				if prec == FP16 {
					bound = 1e-5
				}
				if eo, el := ref.NMSE(got, wantOut), ref.NMSE(gotLat, wantLat); !(eo <= bound && el <= bound) {
					t.Errorf("lsa=%v %s chunk %d: NMSE out %.3g, latents %.3g, bound %g", lsa, prec, chunk, eo, el, bound)
				}
				for _, v := range []*Tensor{out, lat, x, mask} {
					v.Free()
				}
				m.Close()
			}
		}
	}
}

// TestChunkedMemory checks that with chunks the pass's peak stays near out
// plus one chunk buffer, far below kv1 of the whole input.
func TestChunkedMemory(t *testing.T) {
	const n, chunk = 8192, 512
	added, cfg := peakAdded(t, n, chunk)
	out, buf := int64(n*cfg.Dim*4), int64(chunk*2*cfg.Inner()*4)
	if limit := out + 2*buf; added > limit {
		t.Errorf("the pass added %d bytes at its peak, want at most %d (out %d + 2 chunk buffers of %d)", added, limit, out, buf)
	}
	t.Logf("peak added %d bytes (out %d, chunk buffer %d, whole kv1 %d)", added, out, buf, n*2*cfg.Inner()*4)
}

// TestFootprintMatchesPass checks Config.Footprint's Pass against what a
// recorded pass allocates for its activations and outputs (the attention's
// partial results come on top, as Footprint says): equal but for the
// rounding of half buffers to whole words, with learned, shared and
// per-set latents, with and without latent_self_attend, in both
// precisions. Footprint counts external latents as one set per batch
// element, so with shared ones the pass takes less: the other sets' q1,
// their keys and values, and in FP16 their half copy.
func TestFootprintMatchesPass(t *testing.T) {
	dev := testutil.Device(t)
	const b, n, m = 2, 33, 7
	precs := precisions(t, dev)
	for _, lsa := range []bool{false, true} {
		for _, lat := range []string{"learned", "shared", "per set"} {
			for _, prec := range precs {
				cfg := Config{Dim: 12, Heads: 3, DimHead: 5, LatentSelfAttend: lsa}
				if lat == "learned" {
					cfg.NumLatents = m
				}
				model, err := NewWithPrecision(dev, cfg, RandomWeights(cfg, 27), prec)
				if err != nil {
					t.Fatal(err)
				}
				x, err := NewTensor(dev, make([]float32, b*n*cfg.Dim), b, n, cfg.Dim)
				if err != nil {
					t.Fatal(err)
				}
				var opts []ForwardOption
				var l *Tensor
				switch lat {
				case "shared":
					l, err = NewTensor(dev, make([]float32, m*cfg.Dim), m, cfg.Dim)
				case "per set":
					l, err = NewTensor(dev, make([]float32, b*m*cfg.Dim), b, m, cfg.Dim)
				}
				if err != nil {
					t.Fatal(err)
				}
				if l != nil {
					opts = append(opts, WithLatents(l))
				}
				pl, err := model.Prepare(x, opts...)
				if err != nil {
					t.Fatal(err)
				}
				f, err := cfg.Footprint(b, n, m, model.Precision() == FP16)
				if err != nil {
					t.Fatal(err)
				}
				got := pl.rec.ActivationBytes() + pl.out.buf.Size() + pl.lat.buf.Size()
				want := f.Pass
				if lat == "shared" {
					es, perRow := int64(4), int64(cfg.Inner())
					if prec == FP16 {
						es = 2
					}
					if lsa {
						perRow += 2 * int64(cfg.Inner())
					}
					want -= (b - 1) * m * es * perRow
					if prec == FP16 {
						want -= (b - 1) * m * 2 * int64(cfg.Dim)
					}
				}
				if got < want || got > want+16 {
					t.Errorf("lsa=%v, %s latents, %s: the pass allocated %d bytes for activations and outputs, want %d (Footprint.Pass %d)",
						lsa, lat, prec, got, want, f.Pass)
				}
				pl.Close()
				l.Free()
				x.Free()
				model.Close()
			}
		}
	}
}
