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
// whose kernel compiles in a fraction of the time. lavapipe calls a
// function for each texel fetch, so what counts is fetches per
// multiply-add, and a quad broadcast costs far less than a fetch; 32 x 16
// ran fastest on the ISAB's projections of the tiles tried, as fast as
// 64 x 16, which compiles twice as long (the measurements and the history
// are in docs/perf-notes.md).
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

// linearTex is matmul_tex.comp, which reads x and w as uniform texel
// buffers of four elements and writes y as a storage texel buffer of them:
// on lavapipe a texel fetch or store costs about what a storage-buffer
// load or store of one float does. It declines on GPUs and devices without
// subgroup quad operations, when the offsets or row strides of x, w or y,
// or y's width, are not multiples of 4 elements, when the last row of x or
// w rounded up to a whole texel leaves its buffer, when a row (or four
// rows of w) does not fit one binding, and when K is too long for
// lavapipe's loop budget. Large operands are cut into row and column
// pieces whose texel bindings hold at most MaxTexelBufferElements texels
// and, like every binding, at most the range limit.
type linearTex struct{}

func (linearTex) name() string { return "matmul_tex" }

func (linearTex) plan(o *Ops, l *linArgs) (linPlan, decline) {
	x, w, y := l.x, l.w, l.y
	if !o.isCPU() {
		return linPlan{}, "tuned for CPU rasterisers, not GPUs"
	}
	kernel, esize, halfMask := shaders.MatmulTex, l.esize, uint32(0)
	if l.half {
		kernel, halfMask = shaders.MatmulTexF16, linTexBindings|linTexStores
	}
	if (x.Off|x.ld()|w.Off|w.ld()|y.Off|y.ld()|l.N)%4 != 0 {
		return linPlan{}, "offsets, row strides or the output width are not multiples of 4 elements"
	}
	ldx, ldw := int64(x.ld()), int64(w.ld())
	k4 := ceilDiv(int64(l.K), 4) * 4
	if esize*(int64(x.Off)+int64(l.M-1)*ldx+k4) > bufBytes(x) || esize*(int64(w.Off)+int64(l.N-1)*ldw+k4) > bufBytes(w) {
		return linPlan{}, "the last row of x or w rounded up to a whole texel leaves its buffer"
	}
	c, ok := o.linTexConfig(l.M, l.N, l.K)
	if !ok {
		return linPlan{}, "needs subgroup quads in subgroups of at most 64 of a size the pipeline can require, and an inner size within the loop budget"
	}
	p := linPlan{texel: true, vecAlign: 1}
	p.bm, p.bn = c.block()
	tcap := o.linTexCapElems(esize)
	if p.nc, p.rc = o.linearPieces(l, k4, tcap, min(tcap, o.capElems()), p.bm, p.bn, 4); p.nc < 1 {
		return linPlan{}, "a row (or four rows of w) does not fit one texel binding"
	}
	spec, err := kernelSpecFor[matmulPush](kernel, c.spec()...)
	if err != nil {
		return linPlan{}, decline(err.Error())
	}
	spec.Texel, spec.StorageTexel, spec.HalfTexel = linTexBindings, linTexStores, halfMask
	spec.SubgroupSize = o.info.SubgroupSize
	p.spec = spec
	return p, ""
}
