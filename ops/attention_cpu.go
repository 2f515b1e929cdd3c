package ops

import "github.com/isab-vk/isab-vk/shaders"

// attnCPUConfig is one configuration of attention_cpu.comp, the attention
// kernel for CPU rasterisers (see that file): WG invocations of QT queries
// each, heads of exactly DH dims, BK keys per block, loads of Vec (see the
// attnVec constants), key and value rows loaded once per subgroup and
// broadcast when Share, rows touched PF blocks ahead (0: not).
type attnCPUConfig struct {
	WG, QT, DH, BK int
	Vec            int
	Share          bool
	PF             int
}

// Load widths of attention_cpu.comp (its spec constant VEC).
const (
	attnVecScalar = 0 // scalar loads, any layout
	attnVec4      = 1 // vec4 loads: offsets and strides multiples of 4
	attnVec8      = 2 // u64vec4 loads of 8 floats: multiples of 8, shaderInt64
)

func (c attnCPUConfig) spec() []uint32 {
	b := func(v bool) uint32 {
		if v {
			return 1
		}
		return 0
	}
	return []uint32{uint32(c.WG), uint32(c.QT), uint32(c.DH), uint32(c.BK), uint32(c.Vec), b(c.Share), uint32(c.PF)}
}

// attnCPUMaxDH is the widest head attention_cpu.comp takes; wider heads go
// to attention.comp. The kernel keeps 2*QT*DH floats per invocation in
// registers, and lavapipe's compile time grows steeply with them.
const attnCPUMaxDH = 128

// attnCPUTuning holds the knobs of attnCPUFor (Ops.tune.attnCPU): queries
// per invocation for heads up to 64 wide and wider, keys per block, whether
// to share the row loads across the subgroup with vec4 or scalar loads
// (Share) and with 8-float loads (Share8), whether to use 8-float loads
// where the layout and device allow (Vec8), and how many blocks ahead to
// touch the rows with 8-float loads (PF). Tests change it per Ops to cover
// other configurations.
type attnCPUTuning struct {
	QT, QTWide, BK int
	Share, Share8  bool
	Vec8           bool
	PF             int
}

// defaultAttnCPUTuning is attnCPUFor's configuration (the measurements
// behind it are in docs/perf-notes.md).
var defaultAttnCPUTuning = attnCPUTuning{QT: 4, QTWide: 2, BK: 1, Share: true, Share8: false, Vec8: true, PF: 2}

// attnCPUFor returns the attnConfig that runs a on attention_cpu.comp, and
// false where attention.comp should run it: on GPUs, with a configuration
// forced by a test, for heads wider than attnCPUMaxDH, and on devices
// without shaderInt64. srcs are a's
// sources with keys.
//
// On lavapipe every buffer load is a loop over the 8 SIMD lanes, one
// iteration per lane per component whatever its width, so the kernel keeps
// the queries in registers and streams each key and value row, each loaded
// element feeding QT queries per invocation. Where every element offset
// and stride of Q and of the key/value rows is a multiple of 8 and the
// device has shaderInt64, it loads 8 floats per u64vec4 component pair
// (Vec8) and each invocation loads whole rows itself, touching the rows PF
// blocks ahead so that their cache misses overlap. Otherwise (vec4 loads
// when those are multiples of 4, scalar loads else) the subgroup loads
// each row once and broadcasts the pieces (Share, when the subgroup is the
// 8-invocation workgroup). Binding starts are o.align bytes apart, which
// keeps those alignments where o.align and 4n bytes divide one another.
func (o *Ops) attnCPUFor(a AttnArgs, srcs []KVSource) (attnConfig, bool) {
	dh := a.DimHead
	// The module declares Int64 (for VEC 2), so it needs shaderInt64 to load.
	if !o.isCPU() || o.tune.attnGeneric != nil || dh > attnCPUMaxDH || o.info.SubgroupSize > 64 || !o.info.Int64 {
		return attnConfig{}, false
	}
	t := o.tune.attnCPU
	// Widest loads the layout allows: every element offset and stride a
	// multiple of n floats, and binding starts (rounded down to o.align
	// bytes) keeping that.
	aligned := func(n int) bool {
		if o.align%int64(4*n) != 0 && int64(4*n)%o.align != 0 {
			return false
		}
		ok := dh%n == 0 && a.Q.Off%n == 0 && a.Q.ld()%n == 0 && a.QBatchStride%n == 0
		for _, s := range srcs {
			ok = ok && s.KV.Off%n == 0 && s.KV.ld()%n == 0 && s.BatchStride%n == 0 && s.KOff%n == 0 && s.VOff%n == 0
		}
		return ok
	}
	vec := attnVecScalar
	switch {
	case t.Vec8 && aligned(8):
		vec = attnVec8
	case aligned(4):
		vec = attnVec4
	}
	c := attnCPUConfig{WG: 8, QT: t.QT, DH: dh, BK: t.BK, Vec: vec, PF: t.PF}
	if dh > 64 {
		c.QT = t.QTWide
	}
	sg := int(o.info.SubgroupSize)
	share := t.Share
	if vec == attnVec8 {
		share = t.Share8
	} else {
		c.PF = 0 // measured with 8-float loads only
	}
	// Sharing needs subgroups of exactly 8, which the pipeline then
	// requires; a device that may run another size shares nothing.
	c.Share = share && sg == 8 && c.BK <= 8 && o.info.SupportsSubgroupSize(8)
	c.WG = max(c.WG, sg)
	cfg := attnConfig{BQ: c.WG * c.QT, MaxDH: dh, WG: c.WG, BK: c.BK, cpu: &c}
	if c.Share {
		cfg.subgroup = 8
	}
	return cfg, true
}

// attnCPUItersPerBlock bounds the loop iterations one invocation of
// attention_cpu.comp runs per block of keys: the key loop is its only loop
// that is not unrolled.
const attnCPUItersPerBlock = 2

// attnCPUMaxKeys caps the keys per split that Attention picks by itself for
// attention_cpu.comp. Shorter splits (more workgroups, more partial results)
// ran faster on lavapipe for long key ranges, as the workgroups then kept
// every core busy and their rows in cache (docs/perf-notes.md).
const attnCPUMaxKeys = 2048

// attnCPU is attention_cpu.comp, the float32 attention kernel for CPU
// rasterisers (see attnCPUFor).
type attnCPU struct{}

func (attnCPU) name() string { return "attention_cpu" }

func (attnCPU) plan(o *Ops, a AttnArgs, srcs []KVSource, half bool) (attnKernel, decline) {
	switch {
	case half:
		return attnKernel{}, "float32 only"
	case !o.isCPU():
		return attnKernel{}, "tuned for CPU rasterisers, not GPUs"
	case a.DimHead > attnCPUMaxDH:
		return attnKernel{}, declinef("head width %d > %d", a.DimHead, attnCPUMaxDH)
	case !o.info.Int64:
		return attnKernel{}, "needs shaderInt64"
	}
	c, ok := o.attnCPUFor(a, srcs)
	if !ok {
		return attnKernel{}, "needs subgroups of at most 64 and no forced configuration"
	}
	return attnKernel{cfg: c, kernel: shaders.AttentionCPU, spec: c.cpu.spec(), iters: attnCPUItersPerBlock, maxKeys: attnCPUMaxKeys}, ""
}
