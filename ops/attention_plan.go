package ops

import (
	"fmt"
	"math"

	"github.com/isab-vk/isab-vk/shaders"
)

// attnImpls are Attention's implementations, most specialised first (see
// choice.go): cooperative matrices for fp16 where the device has them, the
// texel-buffer and the float32 kernels for CPU rasterisers, and
// attention.comp (and its fp16 variant) everywhere else.
var attnImpls = []attnImpl{attnCoop{}, attnTex{}, attnCPU{}, attnGeneric{}}

// attnImpl is one implementation of Attention: plan says whether it
// supports the device and the operands (a reason when it does not) and,
// when it does, its kernel and configuration. srcs are a's sources with
// keys; half says whether the operands are half views. planAttention cuts
// the work and attnRun binds and dispatches, the same for every kernel,
// as all share one interface (attnPush).
type attnImpl interface {
	name() string
	plan(o *Ops, a AttnArgs, srcs []KVSource, half bool) (attnKernel, decline)
}

// attnKernel is the kernel an attnImpl chose and what planAttention needs
// to know of it: BQ queries per workgroup and key blocks of BK (in cfg),
// its specialization constants, the texel-buffer bindings it reads (texel)
// and writes (store), the loop iterations one invocation runs per key
// block when nothing is unrolled (see lavapipeLoopBudget), and the most keys
// per split of the automatic choice.
type attnKernel struct {
	cfg          attnConfig
	kernel       shaders.Kernel
	spec         []uint32
	texel, store uint32
	iters        int64
	maxKeys      int64
}

// chooseAttention picks the implementation of a (see attnImpls); with all
// every candidate is asked (for ExplainAttention).
func (o *Ops) chooseAttention(a AttnArgs, srcs []KVSource, half, all bool) (attnKernel, Choice, error) {
	names := make([]string, len(attnImpls))
	for i, im := range attnImpls {
		names[i] = im.name()
	}
	ks := make([]attnKernel, len(attnImpls))
	c, i := o.choose("Attention", names, all, func(i int) (string, decline) {
		k, why := attnImpls[i].plan(o, a, srcs, half)
		ks[i] = k
		return k.kernel.Name(), why
	})
	if i < 0 {
		return attnKernel{}, c, c.noImpl()
	}
	return ks[i], c, nil
}

// ExplainAttention says which implementation Attention would choose on o's
// device for batch elements of nq queries over sources of nk[i] keys each
// (dense rows holding keys then values), heads of dimHead, float32 or
// (half) fp16, and why every other candidate declines or ranks below it.
// Nothing is allocated or recorded.
func (o *Ops) ExplainAttention(batch, nq int, nk []int, heads, dimHead int, half bool) Choice {
	hd := heads * dimHead
	a := AttnArgs{
		Q:     Mat{Rows: batch * nq, Cols: hd, Ld: hd, Half: half},
		Batch: batch, NQ: nq, Heads: heads, DimHead: dimHead, QBatchStride: nq * hd,
		Out: Mat{Rows: batch * nq, Cols: hd, Ld: hd, Half: half},
	}
	var srcs []KVSource
	for _, n := range nk {
		s := KVSource{KV: Mat{Rows: batch * n, Cols: 2 * hd, Ld: 2 * hd, Half: half}, BatchStride: n * 2 * hd, VOff: hd, NK: n}
		a.Sources = append(a.Sources, s)
		if n > 0 {
			srcs = append(srcs, s)
		}
	}
	_, c, _ := o.chooseAttention(a, srcs, half, true)
	return c
}

// attnPlan is how Attention cuts its work: units of bc batch elements by qc
// queries, each source's keys in chunks of kc[s], and kps keys per split.
type attnPlan struct {
	bc, qc int64
	kc     []int64
	kps    int64
	nslots int64 // partial slots per unit
	direct bool
}

// slotsFor counts the partial slots of one unit for a split of kps keys.
func slotsFor(nk, kc []int64, kps int64) int64 {
	n := int64(0)
	for s := range nk {
		for k0 := int64(0); k0 < nk[s]; k0 += kc[s] {
			n += ceilDiv(min(kc[s], nk[s]-k0), kps)
		}
	}
	return n
}

// planAttention chooses the pieces and splits of an attention (see
// attnPlan) on kernel k, for the sources with keys srcs, their key counts
// nk and the columns reach their rows must hold.
func (o *Ops) planAttention(a AttnArgs, k attnKernel, srcs []KVSource, nk, reach []int64) (attnPlan, error) {
	if H, maxY := int64(a.Heads), int64(o.groups[1]); H > maxY {
		return attnPlan{}, fmt.Errorf("ops: Attention: %d heads exceed the device's %d workgroups in y", H, maxY)
	}
	p, err := o.attnUnitSize(a, k.cfg, srcs, reach)
	if err != nil {
		return attnPlan{}, err
	}
	for {
		chunks, err := o.attnSplits(a, k, srcs, nk, reach, &p)
		if err != nil || p.direct {
			return p, err
		}
		// The partial results of a unit must fit one binding each, and
		// the combine's loop budget.
		if p.nslots <= o.attnMaxSlots(a, p) {
			return p, nil
		}
		// Too many partials: shrink the unit and plan again.
		switch {
		case p.bc > 1:
			p.bc = (p.bc + 1) / 2
		case p.qc > 1:
			p.qc = (p.qc + 1) / 2
		default:
			return attnPlan{}, fmt.Errorf("ops: Attention: %d key pieces of %d heads of %d need more partial results than one binding of %d bytes holds",
				chunks, a.Heads, a.DimHead, o.maxRange)
		}
	}
}

// attnTooWide is the error of a row of heads that no binding holds.
func (o *Ops) attnTooWide(a AttnArgs) error {
	return fmt.Errorf("ops: Attention: one row of %d heads of %d does not fit one binding of at most %d bytes", a.Heads, a.DimHead, o.maxRange)
}

// attnMaxSlots is the most partial slots one unit of p may have: each of
// its partial buffers fits one binding, and the combine's loop budget.
func (o *Ops) attnMaxSlots(a AttnArgs, p attnPlan) int64 {
	budgetSlots := int64(math.MaxInt64)
	if o.loopBudget > 0 {
		budgetSlots = (o.loopBudget - 8) / 2
	}
	perSlot := p.bc * int64(a.Heads) * p.qc * max(int64(a.DimHead), 2)
	return min(o.capElems()/perSlot, budgetSlots)
}

// attnUnitSize returns the first plan's units: all queries of as many batch
// elements as the grid and bindings allow, else one batch element and as
// many queries as fit.
func (o *Ops) attnUnitSize(a AttnArgs, cfg attnConfig, srcs []KVSource, reach []int64) (attnPlan, error) {
	B, NQ, H := int64(a.Batch), int64(a.NQ), int64(a.Heads)
	HD := H * int64(a.DimHead)
	capacity := o.capElems()
	ldq, qbs, ldo := int64(a.Q.ld()), int64(a.QBatchStride), int64(a.Out.ld())
	maxX, maxY := int64(o.groups[0]), int64(o.groups[1])

	// batchFit is the most batch elements per unit (up to limit) whose
	// key/value rows and masks fit one binding with a single key each.
	batchFit := func(limit int64) int64 {
		bc := limit
		for i, s := range srcs {
			bc = min(bc, maxCount(int64(s.BatchStride), reach[i], capacity, limit))
			if s.Mask != nil {
				bc = min(bc, maxCount(int64(s.MaskBatchStride), 1, capacity, limit))
			}
		}
		return bc
	}

	p := attnPlan{}
	if ceilDiv(NQ, int64(cfg.BQ)) <= maxX {
		bc := min(B, maxY/H, maxCount(qbs, (NQ-1)*ldq+HD, capacity, B), maxCount(ldo, HD, capacity, B*NQ)/NQ)
		p.bc, p.qc = batchFit(bc), NQ
	}
	if p.bc < 1 {
		p.bc = 1
		p.qc = min(maxCount(ldq, HD, capacity, NQ), maxCount(ldo, HD, capacity, NQ), maxX*int64(cfg.BQ))
	}
	if p.qc < 1 || batchFit(1) < 1 {
		return attnPlan{}, o.attnTooWide(a)
	}
	return p, nil
}

// attnSplits fills in p's key chunks per source and keys per split for
// its units, doubling the keys per split while a unit has more partial
// slots than attnMaxSlots allows and longer splits are possible; it
// returns the number of key chunks.
func (o *Ops) attnSplits(a AttnArgs, k attnKernel, srcs []KVSource, nk, reach []int64, p *attnPlan) (int64, error) {
	cfg, H := k.cfg, int64(a.Heads)
	capacity, maxZ := o.capElems(), int64(o.groups[2])
	// Under a loop budget (see lavapipeLoopBudget) a workgroup may only
	// take so many key blocks.
	bk := int64(cfg.BK)
	maxKps := int64(math.MaxInt64)
	if o.loopBudget > 0 {
		maxKps = max((o.loopBudget-64)/k.iters, 1) * bk
	}

	// Key chunks per source.
	p.kc = make([]int64, len(srcs))
	chunks, total, maxKC := int64(0), int64(0), int64(0)
	for i, s := range srcs {
		kc := maxCount(int64(s.KV.ld()), (p.bc-1)*int64(s.BatchStride)+reach[i], capacity, nk[i])
		if s.Mask != nil {
			kc = min(kc, maxCount(1, (p.bc-1)*int64(s.MaskBatchStride)+1, capacity, nk[i]))
		}
		if kc < 1 {
			return 0, o.attnTooWide(a)
		}
		if o.loopBudget > 0 {
			kc = min(kc, maxKps*maxZ) // so that one grid's splits cover it
		}
		if kc < nk[i] && kc >= bk {
			kc -= kc % bk
		}
		p.kc[i] = kc
		chunks += ceilDiv(nk[i], kc)
		total += nk[i]
		maxKC = max(maxKC, kc)
	}

	// Keys per split.
	if o.keysPerSplit > 0 {
		p.kps = int64(o.keysPerSplit)
	} else {
		base := ceilDiv(p.qc, int64(cfg.BQ)) * H * p.bc
		want := ceilDiv(int64(o.target), base)
		minKeys := int64(64)
		if o.isCPU() {
			minKeys = 256
		}
		splits := min(max(want, 1), max(total/minKeys, 1))
		p.kps = min(ceilDiv(total, splits), k.maxKeys)
	}
	p.kps = min(max(ceilDiv(p.kps, bk)*bk, ceilDiv(maxKC, maxZ)), maxKps)

	maxSlots := o.attnMaxSlots(a, *p)
	for p.nslots = slotsFor(nk, p.kc, p.kps); p.nslots > 1 && p.nslots > maxSlots && p.kps < maxKC && p.kps < maxKps; p.nslots = slotsFor(nk, p.kc, p.kps) {
		p.kps = min(2*p.kps, maxKps)
	}
	p.direct = p.nslots == 1
	return chunks, nil
}
