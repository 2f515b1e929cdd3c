package benchkit

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"time"

	"github.com/isab-vk/isab-vk/internal/checked"
	"github.com/isab-vk/isab-vk/internal/sysmem"
	"github.com/isab-vk/isab-vk/ops"
	"github.com/isab-vk/isab-vk/shaders"
	"github.com/isab-vk/isab-vk/vk"
)

// PeakGFLOPs measures the FP32 matrix-product rate of dev: y = x w^T with
// x, w and y all n x n through ops.Linear, the kernel the forward pass uses
// for its projections. It runs once untimed (pipeline creation), then runs
// times timed, and returns the best rate in GFLOP/s (a multiply-add counts
// as two), so that noise from other load on the machine lowers it least.
func PeakGFLOPs(ctx context.Context, dev *vk.Device, n, runs int) (float64, error) {
	if n < 1 || runs < 1 {
		return 0, fmt.Errorf("benchkit: peak matmul size %d and runs %d must be positive", n, runs)
	}
	// x, w and y on the device; x (reused for w) on the host.
	bytes, err := checked.Size(fmt.Sprintf("benchkit: peak matmul of size %d", n), n, n, 4)
	if err != nil {
		return 0, err
	}
	if total := dev.MemoryBudget(); total > 0 && bytes > total/3 {
		return 0, fmt.Errorf("benchkit: peak matmul of size %d needs %s of device memory; %s has %s",
			n, checked.Bytes(3*min(bytes, math.MaxInt64/3)), dev.Info().Name, checked.Bytes(total))
	}
	if err := dev.CheckFootprint(fmt.Sprintf("benchkit: peak matmul of size %d", n), bytes); err != nil {
		return 0, err
	}
	if avail := sysmem.Available(); avail > 0 && bytes > avail {
		return 0, fmt.Errorf("benchkit: peak matmul of size %d needs %s of host memory; the host has %s available",
			n, checked.Bytes(bytes), checked.Bytes(avail))
	}
	o, err := ops.New(dev)
	if err != nil {
		return 0, fmt.Errorf("benchkit: peak matmul: %w", err)
	}
	defer o.Close()
	r := rand.New(rand.NewSource(3))
	data := make([]float32, n*n)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	var bufs []*vk.Buffer
	defer func() {
		for _, b := range bufs {
			b.Free()
		}
	}()
	for range 2 {
		b, err := vk.BufferFrom(dev, data)
		if err != nil {
			return 0, fmt.Errorf("benchkit: peak matmul of size %d: %w", n, err)
		}
		bufs = append(bufs, b)
	}
	y, err := dev.NewBuffer(int64(n) * int64(n) * 4)
	if err != nil {
		return 0, fmt.Errorf("benchkit: peak matmul of size %d: %w", n, err)
	}
	bufs = append(bufs, y)
	seq := dev.NewSequence()
	defer seq.Close()
	if err := o.Linear(seq, ops.Dense(bufs[0], 0, n, n), ops.Dense(bufs[1], 0, n, n), nil, ops.Dense(y, 0, n, n)); err != nil {
		return 0, fmt.Errorf("benchkit: peak matmul: %w", err)
	}
	best, err := bestRun(ctx, seq, runs)
	if err != nil {
		return 0, fmt.Errorf("benchkit: peak matmul: %w", err)
	}
	return 2 * float64(n) * float64(n) * float64(n) / best.Seconds() / 1e9, nil
}

// bestRun runs seq once untimed (pipeline creation and, on lavapipe,
// compilation), then runs times timed, and returns the shortest.
func bestRun(ctx context.Context, seq *vk.Sequence, runs int) (time.Duration, error) {
	best := time.Duration(0)
	for i := 0; i <= runs; i++ {
		start := time.Now()
		if err := seq.Run(ctx); err != nil {
			return 0, err
		}
		if d := time.Since(start); i > 0 && (best == 0 || d < best) {
			best = d
		}
	}
	return best, nil
}

// peakChain is the multiply-adds one invocation of shaders/peak.comp does
// per round: CHAIN (32) x ACC (8) vec4s.
const peakChain = 32 * 8 * 4

// peakIters is the rounds each invocation runs (well below lavapipe's
// 65535-iteration loop cap).
const peakIters = 256

// peakWG is peak.comp's workgroup size.
const peakWG = 64

// DevicePeak measures dev's arithmetic peak in GFLOP/s with
// shaders/peak.comp: independent chains of vec4 multiply-adds in float32,
// or in float16 when half is set (which needs shaderFloat16), the way
// microbenchmarks such as vkpeak do. It doubles the workgroups until one
// run takes at least 50 ms (so that every core or compute unit is busy
// and the timing is long enough to trust), then returns the best of three
// runs of that size. A multiply-add counts as two operations.
func DevicePeak(ctx context.Context, dev *vk.Device, half bool) (float64, error) {
	name := "peak"
	if half {
		if !dev.Info().Float16 {
			return 0, fmt.Errorf("benchkit: fp16 peak: %s lacks shaderFloat16", dev.Info().Name)
		}
		name = "peak_f16"
	}
	code, err := shaders.SPIRV(name)
	if err != nil {
		return 0, fmt.Errorf("benchkit: peak: %w", err)
	}
	k, err := dev.Kernel(vk.KernelSpec{Name: name, Code: code, Buffers: 1, PushSize: 12, Spec: []uint32{peakWG}})
	if err != nil {
		return 0, fmt.Errorf("benchkit: peak: %w", err)
	}
	push := vk.Push(uint32(peakIters), float32(1-1.0/1024), float32(1.0/1024))
	maxX := int64(dev.Info().MaxGroupCount[0])
	for groups := int64(16); ; groups *= 2 {
		d, err := timePeak(ctx, dev, k, push, groups, maxX, 1)
		if err != nil {
			return 0, err
		}
		if d >= 50*time.Millisecond || groups >= 1<<22 {
			if d, err = timePeak(ctx, dev, k, push, groups, maxX, 3); err != nil {
				return 0, err
			}
			flops := 2 * float64(groups) * peakWG * peakIters * peakChain
			return flops / d.Seconds() / 1e9, nil
		}
	}
}

// timePeak records groups workgroups of k and returns the best of runs
// timed runs, after one untimed run (the pipeline's first dispatch).
func timePeak(ctx context.Context, dev *vk.Device, k *vk.Kernel, push []byte, groups, maxX int64, runs int) (time.Duration, error) {
	out, err := dev.NewBuffer(groups * peakWG * 4)
	if err != nil {
		return 0, fmt.Errorf("benchkit: peak: %w", err)
	}
	defer out.Free()
	seq := dev.NewSequence()
	defer seq.Close()
	x := groups // a power of two, so that x divides it
	for x > maxX {
		x /= 2
	}
	grid := [3]uint32{uint32(x), uint32(groups / x), 1}
	if err := seq.Dispatch(k, grid, push, vk.Out(out)); err != nil {
		return 0, fmt.Errorf("benchkit: peak: %w", err)
	}
	best, err := bestRun(ctx, seq, runs)
	if err != nil {
		return 0, fmt.Errorf("benchkit: peak: %w", err)
	}
	return best, nil
}
