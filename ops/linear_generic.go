package ops

import (
	"fmt"
	"strings"

	"github.com/isab-vk/isab-vk/shaders"
)

// matmulTiles is one configuration of matmul.comp's specialization
// constants; the workgroup is (BN/TN) x (BM/TM) threads.
type matmulTiles struct {
	BM, BN, BK, TM, TN int
}

func (t matmulTiles) spec() []uint32 {
	return []uint32{uint32(t.BM), uint32(t.BN), uint32(t.BK), uint32(t.TM), uint32(t.TN),
		uint32(t.BN / t.TN), uint32(t.BM / t.TM)}
}

// linearTiles picks matmul.comp's tiles for an m x n output with inner size
// k, on GPUs and on CPU devices where k is too long for matmul_cpu.comp (see
// linearCPU). GPUs
// get 64x64 tiles of 16x16 threads with 4x4 outputs each (32 wide, 2 per
// thread, along a dimension of 32 or less), with more outputs per thread
// where the device takes fewer than 256 invocations per workgroup. CPU rasterisers get 64x64 tiles
// of 8x8 threads with 8x8 outputs each: on lavapipe that was twice as fast
// as 4x4 per thread, as every shared-memory read feeds more arithmetic. Its
// inner loop over BK is not unrolled there, so one thread runs about
// k*(BK+1)/BK loop iterations; past the loop budget (see lavapipeLoopBudget)
// the GPU tiles, whose inner loop lavapipe unrolls (k/BK iterations), take
// over.
func (o *Ops) linearTiles(m, n, k int) (matmulTiles, error) {
	if o.isCPU() {
		t := matmulTiles{BM: 64, BN: 64, BK: 16, TM: 8, TN: 8}
		if o.loopBudget == 0 || ceilDiv(int64(k), int64(t.BK))*int64(t.BK+1) <= o.loopBudget {
			return t, nil
		}
	}
	t := matmulTiles{BM: 64, BN: 64, BK: 16, TM: 4, TN: 4}
	if m <= 32 {
		t.BM, t.TM = 32, 2
	}
	if n <= 32 {
		t.BN, t.TN = 32, 2
	}
	// Fewer threads, each with more outputs, where the device allows fewer
	// than 256 invocations per workgroup (the spec's minimum is 128).
	for (t.BM/t.TM)*(t.BN/t.TN) > int(o.info.MaxWorkgroup) && (t.TM < t.BM || t.TN < t.BN) {
		if t.TM <= t.TN && t.TM < t.BM {
			t.TM *= 2
		} else {
			t.TN *= 2
		}
	}
	if o.loopBudget > 0 && ceilDiv(int64(k), int64(t.BK))+8 > o.loopBudget {
		return t, fmt.Errorf("ops: Linear: an inner size of %d exceeds what one workgroup of %s may loop over", k, o.info.Name)
	}
	return t, nil
}

// linearGeneric is matmul.comp (matmul_f16 for fp16 operands), which runs
// on every device: shared-memory tiles of linearTiles.
type linearGeneric struct{}

func (linearGeneric) name() string { return "matmul" }

func (linearGeneric) plan(o *Ops, l *linArgs) (linPlan, decline) {
	t, err := o.linearTiles(l.M, l.N, l.K)
	if err != nil {
		return linPlan{}, decline(strings.TrimPrefix(err.Error(), "ops: Linear: "))
	}
	kernel := shaders.Matmul
	if l.half {
		kernel = shaders.MatmulF16
	}
	spec, err := kernelSpecFor[matmulPush](kernel, t.spec()...)
	if err != nil {
		return linPlan{}, decline(err.Error())
	}
	p := linPlan{spec: spec, bm: int64(t.BM), bn: int64(t.BN), vecAlign: 1}
	return p, o.storagePieces(l, &p)
}
