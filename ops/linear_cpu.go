package ops

import "github.com/isab-vk/isab-vk/shaders"

// cpuTiles configures matmul_cpu.comp, the Linear kernel for CPU
// rasterisers: workgroups of WG threads share TM rows of x, each thread
// computes TN columns, and the K loop steps by 4*KU (8*KU with VEC 2;
// unrolled). VEC selects the loads: 2, u64vec4 loads of 8 floats, which
// need x_off, ldx, w_off and ldw to be multiples of 8; 1, vec4 loads
// (multiples of 4); 0, scalar loads.
type cpuTiles struct {
	WG, TM, TN, KU, VEC int
}

func (c cpuTiles) spec() []uint32 {
	return []uint32{uint32(c.WG), uint32(c.TM), uint32(c.TN), uint32(c.KU), uint32(c.VEC)}
}

// kStep is how many elements of K one iteration of the kernel's main loop
// takes.
func (c cpuTiles) kStep() int64 {
	if c.VEC == 2 {
		return int64(8 * c.KU)
	}
	return int64(4 * c.KU)
}

// cpuVec returns the widest load matmul_cpu.comp may use for x and w
// views with these element offsets and row strides: 2 (u64vec4, 8 floats)
// when all are multiples of 8 and the device has shaderInt64, 1 (vec4)
// when all are multiples of 4, else 0 (scalar). Binding offsets are powers
// of two of at least 4 bytes, so every row or column piece that Linear
// binds keeps that alignment in its element offsets.
func (o *Ops) cpuVec(xoff, ldx, woff, ldw int) int {
	a := xoff | ldx | woff | ldw
	switch {
	case a%8 == 0 && o.info.Int64:
		return 2
	case a%4 == 0:
		return 1
	}
	return 0
}

// linearCPU picks matmul_cpu.comp's configuration for an m x n output with
// inner size k on CPU devices, with loads of width vec (see cpuVec); ok is
// false on GPUs, on devices without shaderInt64 (the module declares it),
// and when one invocation would loop past the budget, about k/s + s
// iterations for a K step s of 4 (vec 0, 1) or 8 (vec 2): k up to about
// 131000 or 262000, past which matmul.comp takes over. On lavapipe every
// buffer load is a loop over the SIMD lanes, one iteration per lane and
// 32- or 64-bit component, so the kernel wants few loaded components per
// multiply-add: each thread keeps 12x8 outputs (16x8 with 8-float loads),
// which measured fastest among the shapes tried (docs/perf-notes.md).
func (o *Ops) linearCPU(m, n, k, vec int) (cpuTiles, bool) {
	if !o.isCPU() || !o.info.Int64 {
		return cpuTiles{}, false
	}
	c := cpuTiles{WG: 8, TM: min(12, m), TN: min(8, (n+7)/8), KU: 1, VEC: vec}
	if vec == 2 {
		c.TM = min(16, m)
	}
	if s := c.kStep(); o.loopBudget > 0 && ceilDiv(int64(k), s)+s > o.loopBudget {
		return c, false
	}
	return c, true
}

// linearCPUImpl is matmul_cpu.comp, the float32 Linear kernel for CPU
// rasterisers (see linearCPU).
type linearCPUImpl struct{}

func (linearCPUImpl) name() string { return "matmul_cpu" }

func (linearCPUImpl) plan(o *Ops, l *linArgs) (linPlan, decline) {
	switch {
	case l.half:
		return linPlan{}, "float32 only"
	case !o.isCPU():
		return linPlan{}, "tuned for CPU rasterisers, not GPUs"
	case !o.info.Int64:
		return linPlan{}, "needs shaderInt64"
	}
	c, ok := o.linearCPU(l.M, l.N, l.K, o.cpuVec(l.x.Off, l.x.ld(), l.w.Off, l.w.ld()))
	if !ok {
		return linPlan{}, declinef("an inner size of %d loops past the loop budget", l.K)
	}
	spec, err := kernelSpecFor[matmulPush](shaders.MatmulCPU, c.spec()...)
	if err != nil {
		return linPlan{}, decline(err.Error())
	}
	p := linPlan{spec: spec, bm: int64(c.TM), bn: int64(c.WG * c.TN), vecAlign: uint32(4 * c.VEC)}
	return p, o.storagePieces(l, &p)
}
