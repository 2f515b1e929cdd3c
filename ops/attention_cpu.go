package ops

import "math"

// attnCPUConfig is one configuration of attention_cpu.comp, the attention
// kernel for CPU rasterisers (see that file): WG invocations of QT queries
// each, heads of exactly DH dims, BK keys per block, vec4 loads when Vec,
// key and value rows loaded once per subgroup and broadcast when Share.
type attnCPUConfig struct {
	WG, QT, DH, BK int
	Vec, Share     bool
}

func (c attnCPUConfig) spec() []uint32 {
	b := func(v bool) uint32 {
		if v {
			return 1
		}
		return 0
	}
	return []uint32{uint32(c.WG), uint32(c.QT), uint32(c.DH), uint32(c.BK), b(c.Vec), b(c.Share)}
}

// attnCPUMaxDH is the widest head attention_cpu.comp takes; wider heads go
// to attention.comp. The kernel keeps 2*QT*DH floats per invocation in
// registers, and lavapipe's compile time grows steeply with them.
const attnCPUMaxDH = 128

// attnCPUTune holds the knobs of attnCPUFor: queries per invocation for
// heads up to 64 wide and wider, keys per block, and whether to share the
// row loads across the subgroup. Tests change it to cover other
// configurations (they do not run in parallel).
var attnCPUTune = struct {
	QT, QTWide, BK int
	Share          bool
}{QT: 4, QTWide: 2, BK: 1, Share: true}

// attnCPUFor returns the attnConfig that runs a on attention_cpu.comp, and
// false where attention.comp should run it: on GPUs, with a configuration
// forced by a test, and for heads wider than attnCPUMaxDH. srcs are a's
// sources with keys.
//
// On lavapipe every buffer load is a loop over the 8 SIMD lanes, so the
// kernel keeps the queries in registers and streams each key and value row
// once per subgroup (Share, when the subgroup is the 8-invocation
// workgroup), each loaded element feeding QT queries per invocation. vec4
// loads need every element offset and stride of Q and of the key/value rows
// to be a multiple of 4 (binding starts are aligned to o.align bytes, a
// multiple of 16, which keeps that).
func (o *Ops) attnCPUFor(a AttnArgs, srcs []KVSource) (attnConfig, bool) {
	dh := a.DimHead
	if !o.isCPU() || o.attnOverride != nil || dh > attnCPUMaxDH || o.info.SubgroupSize > 64 {
		return attnConfig{}, false
	}
	vec := o.align%16 == 0 && dh%4 == 0 && a.Q.Off%4 == 0 && a.Q.ld()%4 == 0 && a.QBatchStride%4 == 0
	for _, s := range srcs {
		if s.KV.Off%4 != 0 || s.KV.ld()%4 != 0 || s.BatchStride%4 != 0 || s.KOff%4 != 0 || s.VOff%4 != 0 {
			vec = false
		}
	}
	t := attnCPUTune
	c := attnCPUConfig{WG: 8, QT: t.QT, DH: dh, BK: t.BK, Vec: vec}
	if dh > 64 {
		c.QT = t.QTWide
	}
	sg := int(o.info.SubgroupSize)
	c.Share = t.Share && sg == 8 && c.BK <= 8
	c.WG = max(c.WG, sg)
	return attnConfig{BQ: c.WG * c.QT, MaxDH: dh, WG: c.WG, BK: c.BK, cpu: &c}, true
}

// attnCPUItersPerBlock bounds the loop iterations one invocation of
// attention_cpu.comp runs per block of keys: the key loop is its only loop
// that is not unrolled.
const attnCPUItersPerBlock = 2

// attnCPUMaxKeys caps the keys per split that Attention picks by itself for
// attention_cpu.comp. Shorter splits (more workgroups, more partial results)
// ran faster on lavapipe for long key ranges: 128 queries over 16512 keys
// took about 0.53 s in one split and 0.18-0.2 s in splits of 1024-4096 keys,
// as the workgroups then kept both cores busy and their rows in cache.
const attnCPUMaxKeys = 2048

// cpuMaxKeys is the most keys per split that Attention's automatic choice
// gives one workgroup of c: attnCPUMaxKeys for attention_cpu.comp, no cap
// for attention.comp.
func (c attnConfig) cpuMaxKeys() int64 {
	if c.cpu != nil {
		return attnCPUMaxKeys
	}
	return math.MaxInt64
}
