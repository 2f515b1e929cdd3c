package main

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"time"

	"github.com/isab-vk/isab-vk/internal/checked"
	"github.com/isab-vk/isab-vk/internal/sysmem"
	"github.com/isab-vk/isab-vk/isab"
	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/vk"
)

// demoBound is the NMSE that the demo's float32 GPU result must reach
// against the float64 CPU reference; demoBoundFP16 the fp16 result's.
const (
	demoBound     = 1e-9
	demoBoundFP16 = 1e-5
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "[--n N] [--runs R] [--precision fp32|fp16|auto] [--device SEL]", stderr)
	n := fs.Int("n", 16384, "set size (the README example's is 16384)")
	runs := fs.Int("runs", 3, "timed forward passes")
	device := fs.String("device", "", "device index or name substring (default: $ISAB_DEVICE, else the best GPU)")
	seed := fs.Int64("seed", 1, "seed of the random weights and inputs")
	precision := fs.String("precision", "fp32", "number format on the device: fp32, fp16 (half storage, fp32 accumulation) or auto")
	if err := parse(fs, args); err != nil {
		return err
	}
	prec, err := isab.ParsePrecision(*precision)
	if err != nil {
		return usagef("--precision: %v", err)
	}
	if *n < 1 || *runs < 1 || *runs > maxPasses {
		return usagef("--n must be at least 1 and --runs in [1, %d]", maxPasses)
	}
	// The isab-pytorch README: ISAB(dim = 512, heads = 8, num_latents = 128,
	// latent_self_attend = True); x = randn(1, 16384, 512); mask all true.
	cfg := isab.Config{Dim: 512, Heads: 8, DimHead: 64, NumLatents: 128, LatentSelfAttend: true}
	b := 1
	fmt.Fprintf(stdout, "isab demo: the isab-pytorch README example\n")
	fmt.Fprintf(stdout, "  ISAB(%v), x [%d, %d, %d], mask all true, random weights (seed %d)\n", cfg, b, *n, cfg.Dim, *seed)

	dev, err := vk.Open(vk.Options{Device: *device})
	if err != nil {
		return err
	}
	defer dev.Close()
	info := dev.Info()
	fmt.Fprintf(stdout, "device %d: %s (%s %s, Vulkan %s, %s)\n", info.Index, info.Name, info.Vendor, info.Type, info.APIVersion, info.Driver)

	if err := demoFits(dev, cfg, b, *n, prec); err != nil {
		return err
	}
	w := isab.RandomWeights(cfg, *seed)
	m, err := isab.NewWithPrecision(dev, cfg, w, prec)
	if err != nil {
		return err
	}
	defer m.Close()
	bound := demoBound
	if m.Precision() == isab.FP16 {
		bound = demoBoundFP16
	}
	fmt.Fprintf(stdout, "precision: %s\n", m.Precision())
	r := rand.New(rand.NewSource(*seed + 1))
	in := &isab.Input{X: isab.RandomNormal(r, b**n*cfg.Dim), XShape: []int{b, *n, cfg.Dim}, Mask: make([]bool, b**n)}
	for i := range in.Mask {
		in.Mask[i] = true
	}

	x, err := isab.NewTensor(dev, in.X, in.XShape...)
	if err != nil {
		return err
	}
	defer x.Free()
	mask, err := isab.NewMask(dev, in.Mask, b, *n)
	if err != nil {
		return err
	}
	defer mask.Free()
	times, outT, latT, err := timeForward(ctx, m, x, mask, *runs)
	if err != nil {
		return err
	}
	defer outT.Free()
	defer latT.Free()
	st := summarize(times)
	gflop := cfg.FLOPs(b, *n, cfg.NumLatents) / 1e9
	fmt.Fprintf(stdout, "forward pass: %.1f ms median over %d runs (range %.1f to %.1f), %.1f GFLOP, %.1f GFLOP/s\n",
		st.median, len(times), st.min, st.max, gflop, gflop/(st.median/1e3))
	return demoCheck(stdout, cfg, w, in, outT, latT, bound)
}

// timeForward runs runs timed forward passes after one that warms up the
// pipelines, and returns their times and the last pass's outputs.
func timeForward(ctx context.Context, m *isab.Model, x, mask *isab.Tensor, runs int) ([]time.Duration, *isab.Tensor, *isab.Tensor, error) {
	var times []time.Duration
	var outT, latT *isab.Tensor
	for i := 0; i <= runs; i++ {
		start := time.Now()
		o, l, err := m.Forward(ctx, x, isab.WithMask(mask))
		if err != nil {
			outT.Free()
			latT.Free()
			return nil, nil, nil, err
		}
		if i > 0 {
			times = append(times, time.Since(start))
		}
		outT.Free()
		latT.Free()
		outT, latT = o, l
	}
	return times, outT, latT, nil
}

// demoCheck compares the device's outputs with the float64 reference and
// prints the verdict; it fails past bound (NMSE).
func demoCheck(stdout io.Writer, cfg isab.Config, w *isab.Weights, in *isab.Input, outT, latT *isab.Tensor, bound float64) error {
	b, n := in.XShape[0], in.XShape[1]
	out, err := outT.Read()
	if err != nil {
		return err
	}
	lat, err := latT.Read()
	if err != nil {
		return err
	}
	start := time.Now()
	wantOut, wantLat, err := ref.ISAB(refConfig(cfg), refWeights(w), toF64(in.X), b, n, in.Mask, nil, false)
	if err != nil {
		return err
	}
	eOut, eLat := ref.NMSE(out, wantOut), ref.NMSE(lat, wantLat)
	verdict := "OK"
	if !(eOut <= bound && eLat <= bound) {
		verdict = "FAILED"
	}
	fmt.Fprintf(stdout, "check against the float64 CPU reference (%.1f s): NMSE out %.2e, latents %.2e (bound %.0e): %s\n",
		time.Since(start).Seconds(), eOut, eLat, bound, verdict)
	fmt.Fprintf(stdout, "result: out %v, latents %v\n", outT.Shape(), latT.Shape())
	if verdict != "OK" {
		return fmt.Errorf("the GPU result differs from the CPU reference beyond NMSE %.0e", bound)
	}
	return nil
}

// demoFits refuses, before anything is allocated, a set size whose pass
// does not fit the device or whose float64 reference check does not fit
// the host.
func demoFits(dev *vk.Device, cfg isab.Config, b, n int, prec isab.Precision) error {
	if err := isab.CheckFits(dev, cfg, b, n, cfg.NumLatents, prec); err != nil {
		return err
	}
	// The float64 reference holds x, its keys and values and out.
	need, err := checked.Size("--n", b, n, cfg.Dim+2*cfg.Inner()+cfg.Dim, 8)
	if err != nil {
		return err
	}
	if avail := sysmem.Available(); avail > 0 && need > avail {
		return fmt.Errorf("--n %d: the CPU reference check needs at least %s of host memory; the host has %s available",
			n, checked.Bytes(need), checked.Bytes(avail))
	}
	return nil
}

func refConfig(c isab.Config) ref.ISABConfig {
	return ref.ISABConfig{Dim: c.Dim, Heads: c.Heads, DimHead: c.DimHead, M: c.NumLatents, LatentSelfAttend: c.LatentSelfAttend}
}

func refWeights(w *isab.Weights) ref.ISABWeights {
	return ref.ISABWeights{
		Latents: toF64(w.Latents),
		Q1:      toF64(w.Attn1.Q), KV1: toF64(w.Attn1.KV), Out1: toF64(w.Attn1.Out),
		Q2: toF64(w.Attn2.Q), KV2: toF64(w.Attn2.KV), Out2: toF64(w.Attn2.Out),
	}
}

func toF64(v []float32) []float64 {
	if v == nil {
		return nil
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
