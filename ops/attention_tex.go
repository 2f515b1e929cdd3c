package ops

import "github.com/isab-vk/isab-vk/shaders"

// attention_tex.comp is the attention kernel for CPU rasterisers that reads
// Q and the key/value rows through uniform texel buffers (see that file):
// on lavapipe a texelFetch is one vectorised gather, while a storage-buffer
// load is a loop over the 8 SIMD lanes, so each invocation fetches whole
// rows itself and no subgroup sharing is needed.

// Texel-buffer bindings of attention_tex.comp (vk.KernelSpec): Q
// (binding 0) and KV (binding 1) are read as uniform texel buffers, the
// output (binding 3: Out, or the partial results) is written as a storage
// texel buffer.
const (
	attnTexBindings = 1<<0 | 1<<1
	attnTexStores   = 1 << 3
)

// attnTexMaxDH is the widest head attention_tex.comp takes. The kernel keeps
// 2*QT*DH floats per invocation in registers, and lavapipe's compile time
// grows steeply with them.
const attnTexMaxDH = 128

// attnTexTuning holds the knobs of attnTexFor (Ops.tune.attnTex): queries
// per invocation for heads up to 64 wide and wider, and keys per block.
// Tests change it per Ops.
type attnTexTuning struct {
	QT, QTWide, BK int
}

// defaultAttnTexTuning is attnTexFor's configuration (see
// docs/perf-notes.md).
var defaultAttnTexTuning = attnTexTuning{QT: 8, QTWide: 2, BK: 4}

// attnTexFor returns the configuration, shader name and texel-binding mask
// that run a on attention_tex.comp, and false where another kernel should
// run it. srcs are a's sources with keys. It takes float32 attentions on CPU
// devices (not with a configuration forced by a test) whose heads are at
// most attnTexMaxDH wide, when every texel binding that Attention makes is
// whole aligned texels:
//   - dh, and every element offset and stride of Q, of the key/value rows
//     (Off, Ld, batch strides, KOff, VOff) and of Out are multiples of 4,
//     so each
//     row starts on a texel and every bound range (from an element offset
//     that is a multiple of 4 to one past a row end, also a multiple of 4)
//     spans whole texels;
//   - binding starts, rounded down to o.align bytes (a multiple of 16, and
//     of the device's texel offset alignment), stay texel-aligned and keep
//     the element offsets inside the binding multiples of 4;
//   - the device's texel-buffer size limit is at least o.maxRange, so
//     planAttention's binding sizes need no other cap.
//
// The kernel's spec constants 0-3 have attention_cpu.comp's ids and
// meanings, so the configuration rides in attnConfig.cpu (BK 1, Vec and
// Share unused): planAttention's loop-budget estimate
// (attnCPUItersPerBlock) and keys-per-split cap (attnCPUMaxKeys) hold for
// this kernel too, whose key loop runs one iteration per key.
func (o *Ops) attnTexFor(a AttnArgs, srcs []KVSource) (cfg attnConfig, kernel shaders.Kernel, texel uint32, ok bool) {
	dh := a.DimHead
	t := o.tune.attnTex
	if !o.isCPU() || o.tune.attnGeneric != nil || (a.half() && !o.info.WriteWithoutFormat) || dh < 4 || dh > attnTexMaxDH || dh%4 != 0 ||
		!o.info.SubgroupQuad || o.info.SubgroupSize%4 != 0 || o.info.SubgroupSize > 64 || !o.info.SupportsSubgroupSize(o.info.SubgroupSize) || !o.texelAligned() {
		return attnConfig{}, 0, 0, false
	}
	if a.Q.Off%4 != 0 || a.Q.ld()%4 != 0 || a.QBatchStride%4 != 0 || a.Out.Off%4 != 0 || a.Out.ld()%4 != 0 {
		return attnConfig{}, 0, 0, false
	}
	for _, s := range srcs {
		if s.KV.Off%4 != 0 || s.KV.ld()%4 != 0 || s.BatchStride%4 != 0 || s.KOff%4 != 0 || s.VOff%4 != 0 {
			return attnConfig{}, 0, 0, false
		}
	}
	c := attnCPUConfig{WG: max(8, int(o.info.SubgroupSize)), QT: t.QT, DH: dh, BK: max(t.BK, 1)}
	if dh > 64 {
		c.QT = t.QTWide
	}
	if !o.fast(attnFLOPs(a, srcs)) {
		// Quick to compile (see defaultFastFLOPs).
		c.QT, c.BK = min(c.QT, attnTexQuickQT), 1
	}
	c.QT = max(c.QT, 1)
	kernel = shaders.AttentionTex
	if a.half() {
		kernel = shaders.AttentionTexF16
	}
	// Quads and whole subgroups: the pipeline requires the size WG was
	// chosen for.
	return attnConfig{BQ: c.WG * c.QT, MaxDH: dh, WG: c.WG, BK: c.BK, cpu: &c, subgroup: o.info.SubgroupSize}, kernel, attnTexBindings, true
}

// attnTex is attention_tex.comp (see attnTexFor). Its configuration rides
// in attnConfig.cpu, as its spec constants have attention_cpu.comp's ids
// and meanings, and so do the loop-budget estimate and the keys-per-split
// cap.
type attnTex struct{}

func (attnTex) name() string { return "attention_tex" }

func (attnTex) plan(o *Ops, a AttnArgs, srcs []KVSource, half bool) (attnKernel, decline) {
	dh := a.DimHead
	switch {
	case !o.isCPU():
		return attnKernel{}, "tuned for CPU rasterisers, not GPUs"
	case dh < 4 || dh > attnTexMaxDH || dh%4 != 0:
		return attnKernel{}, declinef("head width %d is not a multiple of 4 in [4, %d]", dh, attnTexMaxDH)
	case half && !o.info.WriteWithoutFormat:
		return attnKernel{}, "fp16 needs storage texel writes without format"
	case !o.info.SubgroupQuad || o.info.SubgroupSize%4 != 0 || o.info.SubgroupSize > 64 || !o.info.SupportsSubgroupSize(o.info.SubgroupSize):
		return attnKernel{}, declinef("needs subgroup quads in subgroups of 4 to 64 lanes of a size the pipeline can require (the device reports %d)", o.info.SubgroupSize)
	case !o.texelAligned():
		return attnKernel{}, declinef("texel bindings must cover a whole storage binding: %d texel elements for a binding range of %d bytes, offsets aligned to %d", o.info.MaxTexelBufferElements, o.maxRange, o.info.MinTexelBufferOffsetAlignment)
	}
	c, kernel, texel, ok := o.attnTexFor(a, srcs)
	if !ok {
		return attnKernel{}, "needs offsets and strides that are multiples of 4 elements, and no forced configuration"
	}
	return attnKernel{cfg: c, kernel: kernel, spec: c.cpu.spec(), texel: texel, store: attnTexStores,
		iters: attnCPUItersPerBlock, maxKeys: attnCPUMaxKeys}, ""
}

// attnTexQuickQT is attention_tex's queries per invocation for small
// attentions, which run in blocks of one key (see defaultFastFLOPs).
const attnTexQuickQT = 2

// attnFLOPs counts the floating-point operations of a with keys srcs:
// q k^T and the weighted sum of values, a multiply-add counting as two.
func attnFLOPs(a AttnArgs, srcs []KVSource) float64 {
	nk := 0.0
	for _, s := range srcs {
		nk += float64(s.NK)
	}
	return 4 * float64(a.Batch) * float64(a.NQ) * nk * float64(a.Heads) * float64(a.DimHead)
}

// texelAligned reports whether o's storage-binding starts (rounded down to
// o.align bytes) are valid texel-binding starts whose element remainders
// keep a multiple of 4 floats, and whether a texel binding may be as large
// as any binding o makes.
func (o *Ops) texelAligned() bool {
	ta := int64(max(o.info.MinTexelBufferOffsetAlignment, 1))
	return o.align%16 == 0 && o.align%ta == 0 && o.maxRange/16 <= int64(min(o.info.MaxTexelBufferElements, 1<<58))
}
