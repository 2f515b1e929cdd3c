package benchkit

import (
	"context"
	"fmt"
	"math/rand"
	"time"

	"github.com/isab-vk/isab-vk/ops"
	"github.com/isab-vk/isab-vk/shaders"
	"github.com/isab-vk/isab-vk/vk"
)

// coopChain is CHAIN of shaders/peak_coop.comp: the dependent
// multiply-adds of each of its coopAcc accumulators per round.
const coopChain = 4

// coopAcc is the accumulators each subgroup slot of peak_coop.comp keeps.
const coopAcc = 4

// coopIters is the rounds each slot runs (well below lavapipe's
// 65535-iteration loop cap). With coopChain it keeps every accumulator
// element an exact integer in float32 (see newCoopPeak).
const coopIters = 256

// coopMaxSlots is the most subgroup slots per workgroup of peak_coop.comp.
const coopMaxSlots = 4

// CoopPeakShape returns the cooperative-matrix shape that DeviceCoopPeak
// measures on a device described by info: the one that ops' fp16 kernels
// use (ops.CoopShape: fp16 A and B, float32 accumulator and result,
// subgroup scope). ok is false when the device reports none, or lacks
// shaderFloat16 or a known subgroup size.
func CoopPeakShape(info vk.Info) (shape vk.CoopMatrixShape, ok bool) {
	if !info.Float16 || info.SubgroupSize == 0 {
		return vk.CoopMatrixShape{}, false
	}
	return ops.CoopShape(info)
}

// coopPeak is one configuration of shaders/peak_coop.comp and the data it
// runs on.
type coopPeak struct {
	shape vk.CoopMatrixShape
	slots int // subgroup slots per workgroup (NSG)
	wg    int // invocations per workgroup (WG)
	// ab is the 2LM x LK matrix A then the LK x 2LN matrix B, row major,
	// of -1, 0 and 1; abSum is the sum of the elements of A B (not 0).
	ab    []float32
	abSum int64
}

// newCoopPeak chooses the slots per workgroup for dev's shape (as many as
// shared memory and the workgroup limits allow, up to coopMaxSlots) and
// draws A and B. Every accumulator element stays an integer of at most
// coopAcc*(7 + coopIters*coopChain*LK) <= 2^20 in magnitude (LK <= 64),
// so float32 holds it exactly whatever the order of the additions.
func newCoopPeak(info vk.Info) (coopPeak, error) {
	shape, ok := CoopPeakShape(info)
	if !ok {
		return coopPeak{}, fmt.Errorf("benchkit: coop peak: %s has no usable cooperative-matrix shape "+
			"(VK_KHR_cooperative_matrix with fp16 A and B, float32 accumulator, subgroup scope, and shaderFloat16)", info.Name)
	}
	lm, ln, lk := int(shape.M), int(shape.N), int(shape.K)
	c := coopPeak{shape: shape}
	for s := coopMaxSlots; s >= 1; s-- {
		wg := s * int(info.SubgroupSize)
		shared := 2*(2*lm*lk+2*lk*ln) + 4*s*lm*ln
		if shared <= int(info.SharedMemory) && wg <= int(info.MaxWorkgroup) && wg <= int(info.MaxWorkgroupSize[0]) {
			c.slots, c.wg = s, wg
			break
		}
	}
	if c.slots == 0 {
		return coopPeak{}, fmt.Errorf("benchkit: coop peak: shape %s with subgroups of %d does not fit %s's limits "+
			"(%d bytes of shared memory, %d invocations per workgroup)", shape, info.SubgroupSize, info.Name, info.SharedMemory, info.MaxWorkgroup)
	}
	r := rand.New(rand.NewSource(5))
	for c.abSum == 0 {
		c.ab = make([]float32, 2*lm*lk+2*lk*ln)
		for i := range c.ab {
			c.ab[i] = float32(r.Intn(3) - 1)
		}
		c.abSum = productSum(c.ab, 2*lm, lk, 2*ln)
	}
	return c, nil
}

// productSum returns the sum of the elements of A B, where ab holds the
// m x k matrix A and then the k x n matrix B, row major, of integers.
func productSum(ab []float32, m, k, n int) int64 {
	a, b := ab[:m*k], ab[m*k:]
	var s int64
	for p := range k {
		var col, row int64 // the sums of column p of A and of row p of B
		for i := range m {
			col += int64(a[i*k+p])
		}
		for j := range n {
			row += int64(b[p*n+j])
		}
		s += col * row
	}
	return s
}

// flops is the operations of one run of groups workgroups of iters
// rounds, a multiply-add counting as two.
func (c coopPeak) flops(groups int64, iters int) float64 {
	perMMA := 2 * float64(c.shape.M) * float64(c.shape.N) * float64(c.shape.K)
	return perMMA * coopAcc * coopChain * float64(iters) * float64(c.slots) * float64(groups)
}

// want is the value that peak_coop.comp writes for slot after iters
// rounds: the sum of the elements of its four accumulators, each element
// starting at (slot + t) & 7 for accumulator t and gaining the elements of
// its product iters*coopChain times, modulo 2^32.
func (c coopPeak) want(slot int64, iters int) uint32 {
	var init int64
	for t := range int64(coopAcc) {
		init += (slot + t) & 7
	}
	elems := int64(c.shape.M) * int64(c.shape.N)
	return uint32(elems*init + int64(iters)*coopChain*c.abSum)
}

// check compares out, what one run of iters rounds wrote, with want.
func (c coopPeak) check(out []uint32, iters int) error {
	bad, first := 0, -1
	for s, v := range out {
		if v != c.want(int64(s), iters) {
			if bad++; first < 0 {
				first = s
			}
		}
	}
	if bad > 0 {
		return fmt.Errorf("benchkit: coop peak: %d of %d subgroup slots wrote a wrong sum (slot %d: %d, want %d): "+
			"the device did not do the multiply-adds timed", bad, len(out), first, int32(out[first]), int32(c.want(int64(first), iters)))
	}
	return nil
}

// kernel creates dev's pipeline of peak_coop.comp for c.
func (c coopPeak) kernel(dev *vk.Device) (*vk.Kernel, error) {
	code, err := shaders.PeakCoop.SPIRV()
	if err != nil {
		return nil, fmt.Errorf("benchkit: coop peak: %w", err)
	}
	spec := []uint32{c.shape.M, c.shape.N, c.shape.K, uint32(c.slots), uint32(c.wg)}
	k, err := dev.Kernel(vk.KernelSpec{Name: shaders.PeakCoop.Name(), Code: code, Buffers: 2, PushSize: 4, Spec: spec})
	if err != nil {
		return nil, fmt.Errorf("benchkit: coop peak: %w", err)
	}
	return k, nil
}

// run dispatches groups workgroups of k with iters rounds once untimed,
// then runs times, and returns the best time and what the last run wrote
// (one uint32 per slot).
func (c coopPeak) run(ctx context.Context, dev *vk.Device, k *vk.Kernel, groups int64, iters, runs int) (time.Duration, []uint32, error) {
	ab, err := vk.BufferFrom(dev, c.ab)
	if err != nil {
		return 0, nil, fmt.Errorf("benchkit: coop peak: %w", err)
	}
	defer ab.Free()
	slots := groups * int64(c.slots)
	out, err := dev.NewBuffer(slots * 4)
	if err != nil {
		return 0, nil, fmt.Errorf("benchkit: coop peak: %w", err)
	}
	defer out.Free()
	seq := dev.NewSequence()
	defer seq.Close()
	x := min(groups, int64(dev.Info().MaxGroupCount[0]))
	for groups%x != 0 {
		x--
	}
	grid := [3]uint32{uint32(x), uint32(groups / x), 1}
	if err := seq.Dispatch(k, grid, vk.Push(uint32(iters)), vk.In(ab), vk.Out(out)); err != nil {
		return 0, nil, fmt.Errorf("benchkit: coop peak: %w", err)
	}
	best, err := bestRun(ctx, seq, runs)
	if err != nil {
		return 0, nil, fmt.Errorf("benchkit: coop peak: %w", err)
	}
	got, err := vk.Download[uint32](out, 0, int(slots))
	if err != nil {
		return 0, nil, fmt.Errorf("benchkit: coop peak: %w", err)
	}
	return best, got, nil
}

// DeviceCoopPeak measures dev's cooperative-matrix peak in GFLOP/s with
// shaders/peak_coop.comp, on the shape CoopPeakShape chooses (fp16 A and
// B, float32 accumulation): every subgroup keeps four accumulators and
// runs chains of multiply-adds on matrices it loaded once, the way
// microbenchmarks such as vkpeak do. It doubles the workgroups until one
// run takes at least 50 ms, then returns the best of three runs of that
// size; a multiply-add of two elements counts as two operations. Each
// subgroup writes a sum of its accumulators, which is checked against its
// exact value (any mismatch is an error), so the work timed is the work
// counted. It fails on a device without a usable shape.
func DeviceCoopPeak(ctx context.Context, dev *vk.Device) (float64, error) {
	c, err := newCoopPeak(dev.Info())
	if err != nil {
		return 0, err
	}
	k, err := c.kernel(dev)
	if err != nil {
		return 0, err
	}
	for groups := int64(16); ; groups *= 2 {
		d, out, err := c.run(ctx, dev, k, groups, coopIters, 1)
		if err != nil {
			return 0, err
		}
		if err := c.check(out, coopIters); err != nil {
			return 0, err
		}
		if d < 50*time.Millisecond && groups < 1<<22 {
			continue
		}
		if d, out, err = c.run(ctx, dev, k, groups, coopIters, 3); err != nil {
			return 0, err
		}
		if err := c.check(out, coopIters); err != nil {
			return 0, err
		}
		return c.flops(groups, coopIters) / d.Seconds() / 1e9, nil
	}
}
