package ops

import (
	"errors"
	"fmt"

	"github.com/isab-vk/isab-vk/shaders"
	"github.com/isab-vk/isab-vk/vk"
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
// 131000 or 262000, past which matmul.comp takes over. On lavapipe (Mesa
// 22.3) every buffer load is a loop over the 8 SIMD lanes, one iteration
// per lane and 32- or 64-bit component, so the kernel wants few loaded
// components per multiply-add: 12x8 outputs per thread with vec4 loads
// along K ran x [1024, 512] @ w[1024, 512]^T at about 33 GFLOP/s against
// 5.6 for matmul.comp's 8x8 shared-memory tiles (16x16 was as fast but
// wastes more on ragged edges; unrolling K further was slower). u64vec4
// loads (8 floats in 4 components) took the ISAB projections from about
// 32 to 46-48 GFLOP/s; with them 16x8 outputs per thread used about 4%
// less CPU time than 12x8 (8x8, 8x16, 12x12, 16x10, 20x8 and unrolling K
// twice were slower), while with vec4 loads 16x8 was about 10% slower
// than 12x8.
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

// Linear records y = x w^T (+ b), PyTorch's Linear: x is [rows, in], w is
// [out, in], y is [rows, out], and b (nil for none) holds out consecutive
// elements from b.Off. y must not overlap x, w or b. Large operands are
// processed in row and column pieces whose bindings fit the device's range
// limit; a single row of x or w longer than that limit is an error.
func (o *Ops) Linear(seq *vk.Sequence, x, w Mat, b *Mat, y Mat) error {
	half := x.Half
	if w.Half != half || y.Half != half || (b != nil && b.Half != half) {
		return errors.New("ops: Linear: x, w, y and the bias must all be half or all float32")
	}
	esize := int64(4)
	if half {
		if err := o.needHalf("Linear"); err != nil {
			return err
		}
		esize = 2
	}
	// fp16 on cooperative matrices where the device has them (see useCoop).
	var ct coopTiles
	coop := false
	if half {
		if shape, ok := o.useCoop(); ok {
			ct, coop = o.coopFor(shape, x.Cols, x.Off, x.ld(), w.Off, w.ld())
		}
	}
	if !coop {
		if ok, err := o.linearTexel(seq, x, w, b, y); ok || err != nil {
			return err // matmul_tex.comp on CPU devices (linear_tex.go)
		}
	}
	if err := x.check("ops: Linear x"); err != nil {
		return err
	}
	if err := w.check("ops: Linear w"); err != nil {
		return err
	}
	if err := y.check("ops: Linear y"); err != nil {
		return err
	}
	M, K, N := x.Rows, x.Cols, w.Rows
	if w.Cols != K {
		return fmt.Errorf("ops: Linear: x is %dx%d but w is %dx%d (want %d columns)", x.Rows, x.Cols, w.Rows, w.Cols, K)
	}
	if y.Rows != M || y.Cols != N {
		return fmt.Errorf("ops: Linear: y is %dx%d, want %dx%d", y.Rows, y.Cols, M, N)
	}
	if b != nil {
		if err := b.check("ops: Linear b"); err != nil {
			return err
		}
		if b.Rows*b.Cols != N || (b.Rows > 1 && b.ld() != b.Cols) {
			return fmt.Errorf("ops: Linear: bias is a %dx%d view (stride %d), want %d consecutive elements", b.Rows, b.Cols, b.ld(), N)
		}
	}

	// k runs every piece; every piece's element offsets of x and w must be
	// multiples of vecAlign (1 for any), which the loads of matmul_cpu
	// (see cpuVec) and matmul_coop need. t.BM x t.BN is the output block
	// of one workgroup.
	var t matmulTiles
	var k *vk.Kernel
	var err error
	vecAlign := uint32(1)
	if coop {
		// matmul_coop.comp (linear_coop.go).
		t = matmulTiles{BM: ct.bm(), BN: ct.bn()}
		spec, err := kernelSpecFor[matmulPush](shaders.MatmulCoop, ct.spec()...)
		if err != nil {
			return err
		}
		spec.SubgroupSize = o.info.SubgroupSize
		if k, err = o.kernelSpec(spec); err != nil {
			return err
		}
		vecAlign = uint32(ct.VEC)
	} else if half {
		// The fp16 variant of matmul.comp: the CPU kernel is fp32 only.
		if t, err = o.linearTiles(M, N, K); err != nil {
			return err
		}
		if k, err = kernelFor[matmulPush](o, shaders.MatmulF16, t.spec()...); err != nil {
			return err
		}
	} else if c, ok := o.linearCPU(M, N, K, o.cpuVec(x.Off, x.ld(), w.Off, w.ld())); ok {
		t = matmulTiles{BM: c.TM, BN: c.WG * c.TN}
		if k, err = kernelFor[matmulPush](o, shaders.MatmulCPU, c.spec()...); err != nil {
			return err
		}
		vecAlign = uint32(4 * c.VEC)
	} else {
		if t, err = o.linearTiles(M, N, K); err != nil {
			return err
		}
		if k, err = kernelFor[matmulPush](o, shaders.Matmul, t.spec()...); err != nil {
			return err
		}
	}
	ldx, ldw, ldy := int64(x.ld()), int64(w.ld()), int64(y.ld())
	capacity := o.capElems()
	// Column pieces: rows of w (and columns of y and b).
	nc := maxCount(ldw, int64(K), capacity, int64(N))
	nc = min(nc, capacity, int64(o.groups[0])*int64(t.BN))
	// Row pieces: rows of x and y.
	rc := min(maxCount(ldx, int64(K), capacity, int64(M)), maxCount(ldy, nc, capacity, int64(M)),
		int64(o.groups[1])*int64(t.BM))
	if nc < 1 || rc < 1 {
		return fmt.Errorf("ops: Linear: a row of %d elements does not fit one binding of at most %d bytes", K, o.maxRange)
	}
	if nc < int64(N) && nc >= int64(t.BN) {
		nc -= nc % int64(t.BN)
	}
	if rc < int64(M) && rc >= int64(t.BM) {
		rc -= rc % int64(t.BM)
	}

	for n0 := int64(0); n0 < int64(N); n0 += nc {
		n := min(nc, int64(N)-n0)
		wb, woff, err := o.bindSized(w.Buf, int64(w.Off)+n0*ldw, (n-1)*ldw+int64(K), esize, false)
		if err != nil {
			return err
		}
		bb, boff := o.dummyBinding(), uint32(0)
		if b != nil {
			if bb, boff, err = o.bindSized(b.Buf, int64(b.Off)+n0, n, esize, false); err != nil {
				return err
			}
		}
		for r0 := int64(0); r0 < int64(M); r0 += rc {
			r := min(rc, int64(M)-r0)
			xb, xoff, err := o.bindSized(x.Buf, int64(x.Off)+r0*ldx, (r-1)*ldx+int64(K), esize, false)
			if err != nil {
				return err
			}
			yb, yoff, err := o.bindSized(y.Buf, int64(y.Off)+r0*ldy+n0, (r-1)*ldy+n, esize, true)
			if err != nil {
				return err
			}
			push := matmulPush{M: uint32(r), N: uint32(n), K: uint32(K), LdX: uint32(ldx), LdW: uint32(ldw), LdY: uint32(ldy),
				XOff: xoff, WOff: woff, BOff: boff, YOff: yoff, HasBias: flag(b != nil)}
			groups := [3]uint32{uint32(ceilDiv(n, int64(t.BN))), uint32(ceilDiv(r, int64(t.BM))), 1}
			if vecAlign > 1 && (xoff|woff|uint32(ldx)|uint32(ldw))%vecAlign != 0 {
				return fmt.Errorf("ops: internal error: Linear piece offsets %d, %d or strides %d, %d not multiples of %d", xoff, woff, ldx, ldw, vecAlign)
			}
			if err := seq.Dispatch(k, groups, vk.PushStruct(&push), xb, wb, bb, yb); err != nil {
				return fmt.Errorf("ops: Linear: %w", err)
			}
		}
	}
	return nil
}
