package ops

import (
	"math"

	"github.com/isab-vk/isab-vk/shaders"
	"github.com/isab-vk/isab-vk/vk"
)

// attnCoopConfig configures attention_coop.comp: the cooperative-matrix
// shape, BQ queries per workgroup, keys in blocks of BK, the head width
// rounded up to DH, and WG invocations.
type attnCoopConfig struct {
	shape          vk.CoopMatrixShape
	BQ, BK, DH, WG int
}

func (c attnCoopConfig) spec() []uint32 {
	return []uint32{c.shape.M, c.shape.N, c.shape.K, uint32(c.BQ), uint32(c.BK), uint32(c.DH), uint32(c.WG)}
}

// shared is the kernel's shared memory in bytes (see attention_coop.comp).
func (c attnCoopConfig) shared() int {
	return 2*(c.BQ+2*c.BK)*(c.DH+8) + 2*c.BQ*(c.BK+8) + 4*(c.BQ*(c.BK+4)+c.BQ*(c.DH+4)+3*c.BQ+c.BK)
}

// itersPerBlock overestimates the loop iterations one invocation runs per
// key block when no loop is unrolled (see lavapipeLoopBudget): staging,
// flags, both products' tile loops, the softmax rows and the rescale.
func (c attnCoopConfig) itersPerBlock() int64 {
	m, n, k := int(c.shape.M), int(c.shape.N), int(c.shape.K)
	stage := ceilDivInt(c.BK*c.DH, c.WG) + ceilDivInt(c.BK, c.WG)
	st := (c.BQ / m) * (c.BK / n) * (1 + c.DH/k)
	pv := (c.BQ / m) * (c.DH / n) * (1 + c.BK/k)
	soft := ceilDivInt(c.BQ, c.WG) * (2*c.BK + 2)
	return int64(stage + st + pv + soft + ceilDivInt(c.BQ*c.DH, c.WG) + 8)
}

// attnCoopMaxDH is the widest head attention_coop.comp takes; wider heads
// run on attention.comp.
const attnCoopMaxDH = 256

// lcm returns the least common multiple of two positive ints.
func lcm(a, b int) int {
	x, y := a, b
	for y != 0 {
		x, y = y, x%y
	}
	return a / x * b
}

// attnCoopFor returns attention_coop.comp's configuration for a, when
// Attention may run it: fp16 operands (Q, KV and Out half), a device where
// Linear uses cooperative matrices too (Ops.useCoop), a head width of at
// most attnCoopMaxDH, and a configuration that fits the device's shared
// memory and workgroup size. It tries 64 queries and 32 keys per
// workgroup first (16 queries only where there are at most 16), halving
// keys and then queries down to one shape side.
func (o *Ops) attnCoopFor(a AttnArgs) (attnConfig, bool) {
	if !a.half() || o.tune.attnGeneric != nil || a.DimHead > attnCoopMaxDH {
		return attnConfig{}, false
	}
	shape, ok := o.useCoop()
	if !ok {
		return attnConfig{}, false
	}
	// Keys and head dims are both the K side of one product and the N side
	// of the other, so BK and DH are multiples of lcm(N, K).
	m, step := int(shape.M), lcm(int(shape.N), int(shape.K))
	c := attnCoopConfig{shape: shape, DH: ceilDivInt(a.DimHead, step) * step}
	c.WG = 4 * int(o.info.SubgroupSize)
	for c.WG > int(o.info.MaxWorkgroup) && c.WG > int(o.info.SubgroupSize) {
		c.WG /= 2
	}
	if c.WG > int(o.info.MaxWorkgroup) {
		return attnConfig{}, false
	}
	bq0 := ceilDivInt(64, m) * m
	if a.NQ <= 16 {
		bq0 = ceilDivInt(16, m) * m
	}
	for bq := bq0; bq >= m; bq = max(bq/2/m*m, m) {
		for bk := ceilDivInt(32, step) * step; bk >= step; bk = max(bk/2/step*step, step) {
			c.BQ, c.BK = bq, bk
			if c.shared() <= int(o.info.SharedMemory) {
				return attnConfig{BQ: c.BQ, BK: c.BK, coop: &c, subgroup: o.info.SubgroupSize}, true
			}
			if bk == step {
				break
			}
		}
		if bq == m {
			break
		}
	}
	return attnConfig{}, false
}

// attnCoop is attention_coop.comp: fp16 attention on cooperative matrices
// (see attnCoopFor).
type attnCoop struct{}

func (attnCoop) name() string { return "attention_coop" }

func (attnCoop) plan(o *Ops, a AttnArgs, _ []KVSource, half bool) (attnKernel, decline) {
	switch {
	case !half:
		return attnKernel{}, "fp16 only"
	case a.DimHead > attnCoopMaxDH:
		return attnKernel{}, declinef("head width %d > %d", a.DimHead, attnCoopMaxDH)
	}
	if _, ok := o.useCoop(); !ok {
		return attnKernel{}, o.coopDecline()
	}
	c, ok := o.attnCoopFor(a)
	if !ok {
		return attnKernel{}, "no configuration fits the shared memory and workgroup size (or one is forced)"
	}
	return attnKernel{cfg: c, kernel: shaders.AttentionCoop, spec: c.coop.spec(), iters: c.coop.itersPerBlock(), maxKeys: math.MaxInt64}, ""
}
