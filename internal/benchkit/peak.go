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
	best := time.Duration(0)
	for i := 0; i <= runs; i++ {
		start := time.Now()
		if err := seq.Run(ctx); err != nil {
			return 0, fmt.Errorf("benchkit: peak matmul: %w", err)
		}
		if d := time.Since(start); i > 0 && (best == 0 || d < best) {
			best = d
		}
	}
	return 2 * float64(n) * float64(n) * float64(n) / best.Seconds() / 1e9, nil
}
