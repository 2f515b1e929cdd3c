package ops

import (
	"fmt"
	"math"
	"strings"

	"github.com/isab-vk/isab-vk/shaders"
)

// attnConfig is one configuration of attention.comp's specialization
// constants: BQ queries per workgroup of WG invocations, heads up to MaxDH
// wide, BK keys per block. The other kernels' configuration functions
// (attnCPUFor, attnTexFor, attnCoopFor) return theirs in cpu or coop, with
// BQ and BK set for planAttention.
type attnConfig struct {
	BQ, MaxDH, WG, BK int
	cpu               *attnCPUConfig  // attention_cpu.comp and attention_tex.comp (attention_cpu.go)
	coop              *attnCoopConfig // attention_coop.comp (attention_coop.go)
	subgroup          uint32          // the subgroup size the kernel needs (vk.KernelSpec.SubgroupSize), 0: any
}

func (c attnConfig) spec() []uint32 {
	return []uint32{uint32(c.BQ), uint32(c.MaxDH), uint32(c.WG), uint32(c.BK)}
}

// itersPerBlock overestimates the loop iterations one invocation runs per
// block of BK keys when the compiler unrolls none of the short loops over
// staged elements, keys and threads per query (see lavapipeLoopBudget).
func (c attnConfig) itersPerBlock() int64 {
	tpq := c.WG / c.BQ
	sl := ceilDivInt(c.BK*c.MaxDH, c.WG) // staging loads per thread
	fl := ceilDivInt(c.BK, c.WG)         // keep flags per thread
	return int64(sl + fl + c.BK*(2+tpq) + 8)
}

func (c attnConfig) shared() int {
	return 4 * (2*c.BK*(c.MaxDH+1) + c.BK*c.WG + c.BK)
}

// attnConfigFor picks the kernel configuration for nq queries of width dh.
//
// TPQ threads share a query, each owning dh/TPQ of its dims (NJ = MaxDH/TPQ
// components of q and of the accumulator, kept in registers): on GPUs 4 up to
// dh 128, doubling with dh; on CPU rasterisers 1 up to dh 32, doubling with
// dh. Either way NJ stays <= 32, which is what lavapipe fully unrolls: its
// longer loops keep such arrays in memory that does not survive the kernel's
// barriers intact (wrong results seen with NJ = 33 and above). BQ queries
// share a workgroup of up to 64 threads on GPUs and 32 queries on CPUs, but
// the workgroup never has fewer threads than a subgroup (32 on GPUs, 8 on
// CPUs at least): lavapipe gave wrong results for workgroups narrower than
// its 8 lanes, and for BQ = 1 (which makes the softmax state uniform across
// the workgroup), so BQ is at least 2. The key block BK is the largest power of two <= 16 whose
// shared memory stays within 16 KiB (or the device's limit for very wide
// heads).
func (o *Ops) attnConfigFor(nq, dh int) (attnConfig, error) {
	if o.tune.attnGeneric != nil {
		return o.tune.attnGeneric(nq, dh), nil
	}
	tpq, wg, minWG := 4, 64, 32
	if o.isCPU() {
		tpq, wg, minWG = 1, 32, 8
	}
	minWG = max(minWG, int(o.info.SubgroupSize))
	for tpq < 64 && dh > 32*tpq {
		tpq *= 2
	}
	wg = max(wg, minWG, tpq)
	bq := max(min(max(nextPow2(nq), ceilDivInt(minWG, tpq)), wg/tpq), 2)
	c := attnConfig{BQ: bq, WG: bq * tpq, MaxDH: (dh + tpq - 1) / tpq * tpq}
	for _, budget := range []int{16 << 10, int(o.info.SharedMemory)} {
		for bk := 16; bk >= 1; bk /= 2 {
			c.BK = bk
			if c.shared() <= budget {
				return c, nil
			}
		}
	}
	return c, fmt.Errorf("ops: Attention: a head width of %d needs more shared memory than the device's %d bytes", dh, o.info.SharedMemory)
}

// attnGeneric is attention.comp (attention_f16 for fp16 operands), which
// runs on every device (see attnConfigFor).
type attnGeneric struct{}

func (attnGeneric) name() string { return "attention" }

func (attnGeneric) plan(o *Ops, a AttnArgs, _ []KVSource, half bool) (attnKernel, decline) {
	c, err := o.attnConfigFor(a.NQ, a.DimHead)
	if err != nil {
		return attnKernel{}, decline(strings.TrimPrefix(err.Error(), "ops: Attention: "))
	}
	k := attnKernel{cfg: c, kernel: shaders.Attention, spec: c.spec(), iters: c.itersPerBlock(), maxKeys: math.MaxInt64}
	if half {
		k.kernel = shaders.AttentionF16
	}
	return k, ""
}
