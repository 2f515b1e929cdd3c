package ops

import (
	"fmt"

	"github.com/isab-vk/isab-vk/shaders"
	"github.com/isab-vk/isab-vk/vk"
)

// linTexTiles configures matmul_tex.comp, the Linear kernel for CPU rasterisers
// that reads x and w as texel buffers: workgroups of WG threads (whole
// subgroups) in quads, each quad computing TM rows (a multiple of 4) and
// each thread TN columns of them.
type linTexTiles struct {
	WG, TM, TN int
}

func (c linTexTiles) spec() []uint32 {
	return []uint32{uint32(c.WG), uint32(c.TM), uint32(c.TN)}
}

// block returns the rows and columns of the output one workgroup computes.
func (c linTexTiles) block() (rows, cols int64) {
	return int64(c.WG/4) * int64(c.TM), 4 * int64(c.TN)
}

// loops is the most loop iterations one invocation runs for an inner size
// of k: one per whole texel of K.
func (c linTexTiles) loops(k int) int64 {
	return ceilDiv(int64(k), 4)
}

// linTexBindings marks matmul_tex's bindings 0 (x) and 1 (w) as uniform
// texel buffers, linTexStores binding 3 (y) as a storage texel buffer; in
// matmul_tex_f16 all three hold halves (vk.KernelSpec.HalfTexel).
const (
	linTexBindings = 0b11
	linTexStores   = 0b1000
)

// linTexAlign returns the byte alignment of texel-binding offsets (a multiple
// of a texel) and the largest texel binding in bytes for texels of four
// elements of esize bytes: the device's texel limit, capped like every
// binding by the range limit (MaxBindingRange).
func (o *Ops) linTexAlign(esize int64) (align, maxBytes int64) {
	texel := 4 * esize
	align = max(int64(o.info.MinTexelBufferOffsetAlignment), 16)
	if align%16 != 0 {
		align = ceilDiv(align, 16) * 16
	}
	maxBytes = o.maxRange
	if t := o.info.MaxTexelBufferElements; t < uint64(1<<58) {
		maxBytes = min(maxBytes, int64(t)*texel)
	}
	return align, maxBytes
}

// linTexCapElems is the most elements of esize bytes, a multiple of 4, that
// one texel binding may cover from any element offset that is a multiple of
// 4.
func (o *Ops) linTexCapElems(esize int64) int64 {
	align, maxBytes := o.linTexAlign(esize)
	texel := 4 * esize
	return (maxBytes - (align - texel)) / texel * 4
}

// linTexBind returns a texel binding of b covering the n elements of esize
// bytes from element off (a multiple of 4), its start rounded down to the
// texel offset alignment and its end up to a whole texel, and the element
// offset of off inside the binding.
func (o *Ops) linTexBind(b *vk.Buffer, off, n, esize int64) (vk.Binding, uint32, error) {
	align, maxBytes := o.linTexAlign(esize)
	texel := 4 * esize
	start := esize * off
	start -= start % align
	end := ceilDiv(esize*(off+n), texel) * texel
	if end-start > maxBytes {
		return vk.Binding{}, 0, fmt.Errorf("ops: internal error: texel binding of %d bytes exceeds the limit %d", end-start, maxBytes)
	}
	if end > b.Size() {
		return vk.Binding{}, 0, fmt.Errorf("ops: internal error: texel binding [%d, %d) outside a buffer of %d bytes", start, end, b.Size())
	}
	return vk.Binding{Buf: b, Offset: start, Size: end - start}, uint32(off - start/esize), nil
}

// linTexConfig picks matmul_tex.comp's tiles for an m x n output with inner
// size k; ok is false when the device lacks subgroup quad operations or
// one invocation would loop past the budget (about k/4 iterations: k up to
// about 262000).
//
// Workgroups are one subgroup, at least 8 threads (with 8 threads on
// lavapipe's 16 lanes half the lanes idle). Products of at least
// linTexBigRows x linTexBigCols take quads of 32 rows and 16 columns per
// thread (linTexBigTM, linTexBigTN); smaller ones 8 rows and 8 columns,
// whose kernel compiles in a fraction of the time. On lavapipe (Mesa 22.3,
// 2 Zen 5 cores, 512-bit vectors) with the ISAB's projections,
// [16384, 512] x [512 or 1024, 512]^T, 32 x 16 ran at 118-123 GFLOP/s
// (106-117 before y was stored as whole texels, as did 64 x 16, whose cold
// compile takes twice as long); before the texel stores 24 x 16 and 40 x 16
// at 111-116, 32 x 32 at 114, 64 x 8 at 111, 32 x 20 at 103-113, 32 x 24 at
// 101, 16 x 32 at 101 and 32 x 12 at 85. With 256-bit vectors 32 x 16 in
// workgroups of 8 ran at 77 (64 x 16: 71-73). The kernel before quads,
// with every thread fetching the X texels of all its rows itself, peaked at
// 94 (64 rows x 16 columns per thread at 512 bits; 71 at 256) and at 51
// with 20 x 8: lavapipe calls a function for each texel fetch, so what
// counts is fetches per multiply-add, and a quad broadcast costs far less
// than a fetch (broadcasts across the whole subgroup cost more: 47
// GFLOP/s, and subgroupShuffleXor over groups of 8 107-112).
func (o *Ops) linTexConfig(m, n, k int) (linTexTiles, bool) {
	wg := max(8, int(o.info.SubgroupSize))
	c := linTexTiles{WG: wg, TM: 8, TN: 8}
	if m >= linTexBigRows && n >= linTexBigCols && o.fast(2*float64(m)*float64(n)*float64(k)) {
		c.TM, c.TN = linTexBigTM, linTexBigTN
	}
	if !o.info.SubgroupQuad || o.info.SubgroupSize%4 != 0 || wg > 64 || !o.info.SupportsSubgroupSize(o.info.SubgroupSize) {
		return c, false
	}
	if o.loopBudget > 0 && c.loops(k) > o.loopBudget {
		return c, false
	}
	return c, true
}

// matmul_tex.comp's tiles for large products (see linTexConfig), used from
// linTexBigRows rows and linTexBigCols columns.
const (
	linTexBigRows = 256
	linTexBigCols = 256
	linTexBigTM   = 32
	linTexBigTN   = 16
)

// linearTexel records Linear (y = x w^T (+ b), see Linear) with
// matmul_tex.comp, which reads x and w as uniform texel buffers of four
// floats and writes y as a storage texel buffer of them: on lavapipe a
// texel fetch or store costs about what a storage-buffer load or store of
// one float does. handled is false, with nothing recorded, where the
// kernel does not apply and Linear's other kernels must run: on GPUs and
// devices without subgroup quad operations, for half operands, for invalid
// views (Linear reports them), when the offsets or row strides of x, w or
// y, or y's width, are not multiples of 4 floats, when the last row of x or
// w rounded up to a whole texel leaves its buffer, when a row (or four rows
// of w) does not fit one binding, and when K is too long for lavapipe's
// loop budget. Large operands are cut into row and column pieces whose
// texel bindings hold at most MaxTexelBufferElements texels and, like every
// binding, at most the range limit.
func (o *Ops) linearTexel(seq *vk.Sequence, x, w Mat, b *Mat, y Mat) (handled bool, err error) {
	half := x.Half
	if !o.isCPU() || o.noTexelLinear || w.Half != half || y.Half != half || (b != nil && b.Half != half) {
		return false, nil
	}
	kernel, esize, halfMask := shaders.MatmulTex, int64(4), uint32(0)
	if half {
		kernel, esize, halfMask = shaders.MatmulTexF16, 2, linTexBindings|linTexStores
	}
	if x.check("x") != nil || w.check("w") != nil || y.check("y") != nil {
		return false, nil
	}
	M, K, N := x.Rows, x.Cols, w.Rows
	if w.Cols != K || y.Rows != M || y.Cols != N {
		return false, nil
	}
	if b != nil && (b.check("b") != nil || b.Rows*b.Cols != N || (b.Rows > 1 && b.ld() != b.Cols)) {
		return false, nil
	}
	if (x.Off|x.ld()|w.Off|w.ld()|y.Off|y.ld()|N)%4 != 0 {
		return false, nil
	}
	ldx, ldw, ldy := int64(x.ld()), int64(w.ld()), int64(y.ld())
	k4 := ceilDiv(int64(K), 4) * 4
	if esize*(int64(x.Off)+int64(M-1)*ldx+k4) > x.Buf.Size() || esize*(int64(w.Off)+int64(N-1)*ldw+k4) > w.Buf.Size() {
		return false, nil
	}
	c, ok := o.linTexConfig(M, N, K)
	if !ok {
		return false, nil
	}
	bm, bn := c.block()

	tcap, capacity := o.linTexCapElems(esize), o.capElems()
	// Column pieces: rows of w (and columns of y and b).
	nc := min(maxCount(ldw, k4, tcap, int64(N)), capacity, int64(o.groups[0])*bn)
	// Row pieces: rows of x and y.
	rc := min(maxCount(ldx, k4, tcap, int64(M)), maxCount(ldy, nc, min(tcap, capacity), int64(M)), int64(o.groups[1])*bm)
	if nc < 1 || rc < 1 {
		return false, nil
	}
	if nc < int64(N) && nc >= bn {
		nc -= nc % bn
	}
	nc -= nc % 4 // column pieces keep y's texels whole
	if nc < 1 {
		return false, nil
	}
	if rc < int64(M) && rc >= bm {
		rc -= rc % bm
	}

	spec, err := kernelSpecFor[matmulPush](kernel, c.spec()...)
	if err != nil {
		return true, err
	}
	spec.Texel, spec.StorageTexel, spec.HalfTexel = linTexBindings, linTexStores, halfMask
	spec.SubgroupSize = o.info.SubgroupSize
	k, err := o.kernelSpec(spec)
	if err != nil {
		return true, err
	}
	for n0 := int64(0); n0 < int64(N); n0 += nc {
		n := min(nc, int64(N)-n0)
		wb, woff, err := o.linTexBind(w.Buf, int64(w.Off)+n0*ldw, (n-1)*ldw+k4, esize)
		if err != nil {
			return true, err
		}
		bb, boff := o.dummyBinding(), uint32(0)
		if b != nil {
			if bb, boff, err = o.bindSized(b.Buf, int64(b.Off)+n0, n, esize, false); err != nil {
				return true, err
			}
		}
		for r0 := int64(0); r0 < int64(M); r0 += rc {
			r := min(rc, int64(M)-r0)
			xb, xoff, err := o.linTexBind(x.Buf, int64(x.Off)+r0*ldx, (r-1)*ldx+k4, esize)
			if err != nil {
				return true, err
			}
			yb, yoff, err := o.linTexBind(y.Buf, int64(y.Off)+r0*ldy+n0, (r-1)*ldy+n, esize)
			if err != nil {
				return true, err
			}
			yb.Write = true
			push := matmulPush{M: uint32(r), N: uint32(n), K: uint32(K), LdX: uint32(ldx), LdW: uint32(ldw), LdY: uint32(ldy),
				XOff: xoff, WOff: woff, BOff: boff, YOff: yoff, HasBias: flag(b != nil)}
			groups := [3]uint32{uint32(ceilDiv(n, bn)), uint32(ceilDiv(r, bm)), 1}
			if err := seq.Dispatch(k, groups, vk.PushStruct(&push), xb, wb, bb, yb); err != nil {
				return true, fmt.Errorf("ops: Linear (texel): %w", err)
			}
		}
	}
	return true, nil
}
