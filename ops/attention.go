package ops

import (
	"errors"
	"fmt"
	"math"

	"github.com/isab-vk/isab-vk/internal/checked"
	"github.com/isab-vk/isab-vk/shaders"
	"github.com/isab-vk/isab-vk/vk"
)

// KVSource is one set of keys and values that Attention attends over.
// Several sources act as their concatenation along the key axis (as
// isab-pytorch's latent_self_attend context concat(latents, x)) without a
// copy.
type KVSource struct {
	// KV holds one row per key: for batch element b and key j the row
	// starting at element KV.Off + b*BatchStride + j*KV.Ld (Ld 0 means
	// Cols). The key of head h is at columns KOff + h*DimHead, the value
	// at VOff + h*DimHead; KV.Cols must cover both. KV.Rows is not used.
	KV          Mat
	BatchStride int // elements between batch elements; 0 shares the keys by the whole batch
	KOff, VOff  int // columns of head 0's key and value within a row
	NK          int // keys per batch element
	// Mask is nil to keep every key, else a uint32 buffer in which key j
	// of batch element b is kept when element MaskOff + b*MaskBatchStride
	// + j is nonzero. A masked key's logit is -FLT_MAX, so a query whose
	// keys are all masked averages them uniformly.
	Mask            *vk.Buffer
	MaskOff         int
	MaskBatchStride int
}

// AttnArgs describes one multi-head attention:
// Out = concat_h softmax(Q_h K_h^T * Scale, masked) V_h per batch element.
type AttnArgs struct {
	// Q holds the queries: query q of batch element b is the row starting
	// at element Q.Off + b*QBatchStride + q*Q.Ld, head h at columns
	// h*DimHead. Q.Cols must be at least Heads*DimHead; Q.Rows is not used.
	Q            Mat
	QBatchStride int // 0 shares the queries by the whole batch
	// Sources are the key/value sets, concatenated along the key axis.
	Sources                   []KVSource
	Batch, NQ, Heads, DimHead int
	Scale                     float32
	// Out receives the result, [Batch*NQ, Heads*DimHead]: row b*NQ + q,
	// head h at columns h*DimHead. It must not overlap the inputs.
	Out Mat
}

// checkIndices refuses sizes, offsets and strides that the kernels'
// 32-bit indices cannot hold (see index32), the product Heads*DimHead
// included, before newAttnRun computes extents from them.
func (a AttnArgs) checkIndices() error {
	const what = "ops: Attention"
	hd, ok := checked.Mul(a.Heads, a.DimHead)
	if !ok {
		return fmt.Errorf("%s: %d heads of %d overflow", what, a.Heads, a.DimHead)
	}
	if err := index32(what, a.Batch, a.NQ, hd, a.QBatchStride, a.Q.Off, a.Q.ld(), a.Out.Off, a.Out.ld()); err != nil {
		return err
	}
	for _, s := range a.Sources {
		if err := index32(what, s.NK, s.KOff, s.VOff, s.BatchStride, s.MaskOff, s.MaskBatchStride, s.KV.Off, s.KV.ld()); err != nil {
			return err
		}
	}
	return nil
}

// attnConfig is one configuration of attention.comp's specialization
// constants.
type attnConfig struct {
	BQ, MaxDH, WG, BK int
	cpu               *attnCPUConfig  // attention_cpu.comp instead (attention_cpu.go)
	coop              *attnCoopConfig // attention_coop.comp instead (attention_coop.go)
	subgroup          uint32          // the subgroup size the kernel needs (vk.KernelSpec.SubgroupSize), 0: any
}

func (c attnConfig) spec() []uint32 {
	if c.cpu != nil {
		return c.cpu.spec()
	}
	if c.coop != nil {
		return c.coop.spec()
	}
	return []uint32{uint32(c.BQ), uint32(c.MaxDH), uint32(c.WG), uint32(c.BK)}
}

// itersPerBlock overestimates the loop iterations one invocation runs per
// block of BK keys when the compiler unrolls none of the short loops over
// staged elements, keys and threads per query (see lavapipeLoopBudget).
func (c attnConfig) itersPerBlock() int64 {
	if c.cpu != nil {
		return attnCPUItersPerBlock
	}
	if c.coop != nil {
		return c.coop.itersPerBlock()
	}
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
	if o.attnOverride != nil {
		return o.attnOverride(nq, dh), nil
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

// Attention records multi-head attention (see AttnArgs) with the fused
// attention kernel. It picks key splits so that enough workgroups run at
// once, and cuts batch, queries and keys into pieces whose bindings fit the
// device's range limit; every piece of keys yields partial results (a
// running max, sum and unnormalised output per query) that one combine
// dispatch merges. The partial buffers come from scratch, called at most
// twice per call for two distinct buffers (not at all when one piece and one
// split suffice), so the caller owns their lifetime: they must live as long
// as the sequence may run. Later work in the same sequence may reuse them;
// the sequence's barriers order the accesses.
func (o *Ops) Attention(seq *vk.Sequence, a AttnArgs, scratch func(bytes int64) (*vk.Buffer, error)) error {
	r, err := o.newAttnRun(a, scratch, false)
	if err != nil {
		return err
	}
	// Unit by unit, so that every unit reuses the same partial slots.
	for u := range r.units {
		for si := range r.srcs {
			if err := r.dispatch(seq, u, si); err != nil {
				return err
			}
		}
		if err := r.combine(seq, u); err != nil {
			return err
		}
	}
	return nil
}

// AttnSteps is one attention whose key sources are recorded one at a time,
// so that a source's keys and values can be computed into memory that an
// earlier source used: Source(seq, i) records the work on a.Sources[i]
// once its keys and values are in place, and Finish merges the partial
// results into Out. Every source must be recorded exactly once, in any
// order, before Finish. The partial results of every piece of queries are
// kept apart (scratch is asked for all of them at once), so they take
// more memory than Attention's.
type AttnSteps struct {
	r        *attnRun
	index    []int // a.Sources index -> r.srcs index, -1 for sources without keys
	recorded []bool
	finished bool
}

// NewAttentionSteps plans the attention a over all its sources (see
// Attention; the sources' shapes must be final, their contents need not be).
func (o *Ops) NewAttentionSteps(a AttnArgs, scratch func(bytes int64) (*vk.Buffer, error)) (*AttnSteps, error) {
	r, err := o.newAttnRun(a, scratch, true)
	if err != nil {
		return nil, err
	}
	st := &AttnSteps{r: r, index: make([]int, len(a.Sources)), recorded: make([]bool, len(r.srcs))}
	j := 0
	for i, s := range a.Sources {
		st.index[i] = -1
		if s.NK > 0 {
			st.index[i] = j
			j++
		}
	}
	return st, nil
}

// Source records the work on a.Sources[i]; a source without keys records
// nothing.
func (st *AttnSteps) Source(seq *vk.Sequence, i int) error {
	if i < 0 || i >= len(st.index) {
		return fmt.Errorf("ops: Attention: source %d of %d", i, len(st.index))
	}
	si := st.index[i]
	if si < 0 {
		return nil
	}
	if st.recorded[si] || st.finished {
		return fmt.Errorf("ops: Attention: source %d recorded twice or after Finish", i)
	}
	st.recorded[si] = true
	for u := range st.r.units {
		if err := st.r.dispatch(seq, u, si); err != nil {
			return err
		}
	}
	return nil
}

// Finish records the merge of the partial results into Out, after every
// source.
func (st *AttnSteps) Finish(seq *vk.Sequence) error {
	for i, done := range st.recorded {
		if !done {
			return fmt.Errorf("ops: Attention: Finish before source %d was recorded", i)
		}
	}
	if st.finished {
		return errors.New("ops: Attention: Finish called twice")
	}
	st.finished = true
	for u := range st.r.units {
		if err := st.r.combine(seq, u); err != nil {
			return err
		}
	}
	return nil
}

// attnRun is a planned attention: its sources with keys, configuration,
// kernels, partial buffers and pieces of batch and queries (units).
type attnRun struct {
	o                *Ops
	a                AttnArgs
	srcs             []KVSource
	nk, reach        []int64 // keys, and columns a KV row must hold, per source
	cfg              attnConfig
	plan             attnPlan
	attn, comb       *vk.Kernel
	part, ml         *vk.Buffer
	esize            int64
	B, NQ, H, dh     int64
	ldq, qbs, ldo    int64
	units            []attnUnit
	slot0            []int64 // first partial slot of each source within a unit
	partStep, mlStep int64   // offsets between units' regions (0: all share one)
}

// attnUnit is one piece of batch elements and queries.
type attnUnit struct{ b0, bc, q0, qc int64 }

// newAttnRun checks a and plans it; apart keeps every unit's partial
// results in a region of its own.
func (o *Ops) newAttnRun(a AttnArgs, scratch func(bytes int64) (*vk.Buffer, error), apart bool) (*attnRun, error) {
	half, err := o.attnHalf(a)
	if err != nil {
		return nil, err
	}
	// Element size of Q, the sources and Out, and the generic and combine
	// kernels: the fp16 kernels keep their partial results (scratch) in
	// float32.
	esize, kernel, combine := int64(4), shaders.Attention, shaders.AttnCombine
	if half {
		esize, kernel, combine = 2, shaders.AttentionF16, shaders.AttnCombineF16
	}
	if a.Batch < 1 || a.NQ < 1 || a.Heads < 1 || a.DimHead < 1 {
		return nil, fmt.Errorf("ops: Attention: bad shape (batch %d, queries %d, heads %d, head width %d)", a.Batch, a.NQ, a.Heads, a.DimHead)
	}
	if err := a.checkIndices(); err != nil {
		return nil, err
	}
	B, NQ, H, dh := int64(a.Batch), int64(a.NQ), int64(a.Heads), int64(a.DimHead)
	HD := H * dh
	if a.Q.Cols < int(HD) || a.QBatchStride < 0 || a.Q.ld() < a.Q.Cols || a.Q.Off < 0 {
		return nil, fmt.Errorf("ops: Attention: Q view (%d columns, stride %d, batch stride %d) does not hold %d heads of %d", a.Q.Cols, a.Q.ld(), a.QBatchStride, H, dh)
	}
	ldq, qbs := int64(a.Q.ld()), int64(a.QBatchStride)
	if err := fitsSized("ops: Attention Q", a.Q.Buf, int64(a.Q.Off), (B-1)*qbs+(NQ-1)*ldq+HD, esize); err != nil {
		return nil, err
	}
	if err := a.Out.check("ops: Attention Out"); err != nil {
		return nil, err
	}
	if int64(a.Out.Rows) != B*NQ || int64(a.Out.Cols) < HD {
		return nil, fmt.Errorf("ops: Attention: Out is %dx%d, want %d rows of at least %d", a.Out.Rows, a.Out.Cols, B*NQ, HD)
	}
	ldo := int64(a.Out.ld())

	// The sources with keys, and their extents.
	var srcs []KVSource
	var nk, reach []int64 // keys, and columns a KV row must hold
	for i, s := range a.Sources {
		if s.NK < 0 || s.KOff < 0 || s.VOff < 0 || s.BatchStride < 0 || s.MaskOff < 0 || s.MaskBatchStride < 0 {
			return nil, fmt.Errorf("ops: Attention: source %d has a negative size, offset or stride", i)
		}
		if s.NK == 0 {
			continue
		}
		r := int64(max(s.KOff, s.VOff)) + HD
		if int64(s.KV.Cols) < r || s.KV.ld() < s.KV.Cols || s.KV.Off < 0 {
			return nil, fmt.Errorf("ops: Attention: source %d rows (%d columns, stride %d) do not hold keys at %d and values at %d of %d heads of %d",
				i, s.KV.Cols, s.KV.ld(), s.KOff, s.VOff, H, dh)
		}
		what := fmt.Sprintf("ops: Attention source %d", i)
		if err := fitsSized(what+" KV", s.KV.Buf, int64(s.KV.Off), (B-1)*int64(s.BatchStride)+int64(s.NK-1)*int64(s.KV.ld())+r, esize); err != nil {
			return nil, err
		}
		if s.Mask != nil {
			if err := fits(what+" mask", s.Mask, int64(s.MaskOff), (B-1)*int64(s.MaskBatchStride)+int64(s.NK)); err != nil {
				return nil, err
			}
		}
		srcs = append(srcs, s)
		nk = append(nk, int64(s.NK))
		reach = append(reach, r)
	}
	if len(srcs) == 0 {
		return nil, errors.New("ops: Attention: no keys")
	}

	cfg, err := o.attnConfigFor(a.NQ, a.DimHead)
	if err != nil {
		return nil, err
	}
	texel, store := uint32(0), uint32(0)
	if c, ok := o.attnCoopFor(a); ok {
		// fp16 on cooperative matrices (attention_coop.go).
		cfg, kernel = c, shaders.AttentionCoop
	} else if c, k, tm, ok := o.attnTexFor(a, srcs); ok {
		// Texel fetches of Q and KV, texel stores of the output
		// (attention_tex.go).
		cfg, kernel, texel, store = c, k, tm, attnTexStores
	} else if c, ok := o.attnCPUFor(a, srcs); ok && !half {
		cfg, kernel = c, shaders.AttentionCPU
	}
	plan, err := o.planAttention(a, cfg, srcs, nk, reach)
	if err != nil {
		return nil, err
	}
	var halfTexel uint32
	if half && texel != 0 {
		// Half Q and KV; the output binding holds halves when it is Out,
		// floats when it holds the partial results.
		halfTexel = texel
		if plan.direct {
			halfTexel |= store
		}
	}
	r := &attnRun{o: o, a: a, srcs: srcs, nk: nk, reach: reach, cfg: cfg, plan: plan, esize: esize,
		B: B, NQ: NQ, H: H, dh: dh, ldq: ldq, qbs: qbs, ldo: ldo}
	spec, err := kernelSpecFor[attnPush](kernel, cfg.spec()...)
	if err != nil {
		return nil, err
	}
	spec.Texel, spec.StorageTexel, spec.HalfTexel = texel, store, halfTexel
	spec.SubgroupSize = cfg.subgroup
	if r.attn, err = o.kernelSpec(spec); err != nil {
		return nil, err
	}
	for b0 := int64(0); b0 < B; b0 += plan.bc {
		for q0 := int64(0); q0 < NQ; q0 += plan.qc {
			r.units = append(r.units, attnUnit{b0: b0, bc: min(plan.bc, B-b0), q0: q0, qc: min(plan.qc, NQ-q0)})
		}
	}
	slot := int64(0)
	for si := range srcs {
		r.slot0 = append(r.slot0, slot)
		for k0 := int64(0); k0 < nk[si]; k0 += plan.kc[si] {
			slot += ceilDiv(min(plan.kc[si], nk[si]-k0), plan.kps)
		}
	}
	if plan.direct {
		return r, nil
	}
	if r.comb, err = kernelFor[combinePush](o, combine); err != nil {
		return nil, err
	}
	perSlot := plan.bc * H * plan.qc                                        // queries x heads of one slot
	partBytes, mlBytes := 4*plan.nslots*perSlot*dh, 4*plan.nslots*perSlot*2 // one unit's regions
	nreg := int64(1)
	if apart && len(r.units) > 1 {
		// Regions start at offsets aligned for binding.
		r.partStep = ceilDiv(partBytes, o.align) * o.align
		r.mlStep = ceilDiv(mlBytes, o.align) * o.align
		nreg = int64(len(r.units))
	}
	partSize, mlSize := partBytes+(nreg-1)*r.partStep, mlBytes+(nreg-1)*r.mlStep
	if r.part, err = scratch(partSize); err != nil {
		return nil, fmt.Errorf("ops: Attention: scratch: %w", err)
	}
	if r.ml, err = scratch(mlSize); err != nil {
		return nil, fmt.Errorf("ops: Attention: scratch: %w", err)
	}
	if r.part == nil || r.ml == nil || r.part == r.ml || r.part.Size() < partSize || r.ml.Size() < mlSize {
		return nil, errors.New("ops: Attention: scratch returned a missing, short or repeated buffer")
	}
	return r, nil
}

// outBinding binds unit u's rows of Out. Rows b*NQ + q of a unit are
// consecutive: either qc = NQ, or bc = 1.
func (r *attnRun) outBinding(u attnUnit) (vk.Binding, uint32, error) {
	a, HD := r.a, r.H*r.dh
	return r.o.bindSized(a.Out.Buf, int64(a.Out.Off)+(u.b0*r.NQ+u.q0)*r.ldo, (u.bc*u.qc-1)*r.ldo+HD, r.esize, true)
}

// partials returns unit u's partial-result bindings (written).
func (r *attnRun) partials(ui int) (vk.Binding, vk.Binding) {
	u := r.units[ui]
	units := u.bc * r.H * u.qc
	return vk.Binding{Buf: r.part, Offset: int64(ui) * r.partStep, Size: 4 * r.plan.nslots * units * r.dh, Write: true},
		vk.Binding{Buf: r.ml, Offset: int64(ui) * r.mlStep, Size: 4 * r.plan.nslots * units * 2, Write: true}
}

// dispatch records the attention of unit ui over source si.
func (r *attnRun) dispatch(seq *vk.Sequence, ui, si int) error {
	o, a, u, s := r.o, r.a, r.units[ui], r.srcs[si]
	HD := r.H * r.dh
	qb, qoff, err := o.bindSized(a.Q.Buf, int64(a.Q.Off)+u.b0*r.qbs+u.q0*r.ldq, (u.bc-1)*r.qbs+(u.qc-1)*r.ldq+HD, r.esize, false)
	if err != nil {
		return err
	}
	ob, ooff, err := r.outBinding(u)
	if err != nil {
		return err
	}
	var pb, mb vk.Binding
	if !r.plan.direct {
		pb, mb = r.partials(ui)
	}
	ld, bs, mbs := int64(s.KV.ld()), int64(s.BatchStride), int64(s.MaskBatchStride)
	slot := r.slot0[si]
	for k0 := int64(0); k0 < r.nk[si]; k0 += r.plan.kc[si] {
		kc := min(r.plan.kc[si], r.nk[si]-k0)
		kb, kvoff, err := o.bindSized(s.KV.Buf, int64(s.KV.Off)+u.b0*bs+k0*ld, (u.bc-1)*bs+(kc-1)*ld+r.reach[si], r.esize, false)
		if err != nil {
			return err
		}
		maskb, moff := o.dummyBinding(), uint32(0)
		if s.Mask != nil {
			if maskb, moff, err = o.bind(s.Mask, int64(s.MaskOff)+u.b0*mbs+k0, (u.bc-1)*mbs+kc, false); err != nil {
				return err
			}
		}
		splits := ceilDiv(kc, r.plan.kps)
		outb, outb2, outOff := pb, mb, uint32(0)
		if r.plan.direct {
			// The dummy ML binding is not written in direct mode.
			outb, outb2, outOff = ob, o.dummyBinding(), ooff
		}
		push := attnPush{NQ: uint32(u.qc), NK: uint32(kc), Heads: uint32(r.H), DH: uint32(r.dh), Batch: uint32(u.bc),
			LdQ: uint32(r.ldq), LdKV: uint32(ld), KOff: uint32(s.KOff), VOff: uint32(s.VOff),
			QBStride: uint32(r.qbs), KVBStride: uint32(bs), MaskBStride: uint32(mbs),
			QOff: qoff, KVOff: kvoff, MaskOff: moff, OOff: outOff, HasMask: flag(s.Mask != nil),
			KeysPerSplit: uint32(r.plan.kps), SlotBase: uint32(slot), NSlotsTotal: uint32(r.plan.nslots),
			Direct: flag(r.plan.direct), LdO: uint32(r.ldo), Scale: a.Scale}
		groups := [3]uint32{uint32(ceilDiv(u.qc, int64(r.cfg.BQ))), uint32(r.H * u.bc), uint32(splits)}
		if err := seq.Dispatch(r.attn, groups, vk.PushStruct(&push), qb, kb, maskb, outb, outb2); err != nil {
			return fmt.Errorf("ops: Attention: %w", err)
		}
		slot += splits
	}
	return nil
}

// combine records the merge of unit ui's partial results into Out (nothing
// in direct mode, where the one dispatch wrote Out).
func (r *attnRun) combine(seq *vk.Sequence, ui int) error {
	if r.plan.direct {
		return nil
	}
	u := r.units[ui]
	ob, ooff, err := r.outBinding(u)
	if err != nil {
		return err
	}
	pb, mb := r.partials(ui)
	pb.Write, mb.Write = false, false
	units := u.bc * r.H * u.qc
	push := combinePush{NQ: uint32(u.qc), Heads: uint32(r.H), DH: uint32(r.dh), Batch: uint32(u.bc),
		NSlots: uint32(r.plan.nslots), LdO: uint32(r.ldo), OutOff: ooff}
	groups := grid2D(ceilDiv(units*r.dh, 64), r.o.groups[0])
	if err := seq.Dispatch(r.comb, groups, vk.PushStruct(&push), pb, mb, ob); err != nil {
		return fmt.Errorf("ops: Attention combine: %w", err)
	}
	return nil
}

// planAttention chooses the pieces and splits of an attention (see
// attnPlan) for the sources with keys srcs, their key counts nk and the
// columns reach their rows must hold.
func (o *Ops) planAttention(a AttnArgs, cfg attnConfig, srcs []KVSource, nk, reach []int64) (attnPlan, error) {
	B, NQ, H, dh := int64(a.Batch), int64(a.NQ), int64(a.Heads), int64(a.DimHead)
	HD := H * dh
	capacity := o.capElems()
	ldq, qbs, ldo := int64(a.Q.ld()), int64(a.QBatchStride), int64(a.Out.ld())
	maxX, maxY, maxZ := int64(o.groups[0]), int64(o.groups[1]), int64(o.groups[2])
	if H > maxY {
		return attnPlan{}, fmt.Errorf("ops: Attention: %d heads exceed the device's %d workgroups in y", H, maxY)
	}
	tooWide := fmt.Errorf("ops: Attention: one row of %d heads of %d does not fit one binding of at most %d bytes", H, dh, o.maxRange)

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
	// All queries per unit if the grid and bindings allow, else one batch
	// element and as many queries as fit.
	if ceilDiv(NQ, int64(cfg.BQ)) <= maxX {
		bc := min(B, maxY/H, maxCount(qbs, (NQ-1)*ldq+HD, capacity, B), maxCount(ldo, HD, capacity, B*NQ)/NQ)
		p.bc, p.qc = batchFit(bc), NQ
	}
	if p.bc < 1 {
		p.bc = 1
		p.qc = min(maxCount(ldq, HD, capacity, NQ), maxCount(ldo, HD, capacity, NQ), maxX*int64(cfg.BQ))
	}
	if p.qc < 1 || batchFit(1) < 1 {
		return attnPlan{}, tooWide
	}

	// Under a loop budget (see lavapipeLoopBudget) a workgroup may only
	// take so many key blocks, and the combine so many slots.
	bk := int64(cfg.BK)
	maxKps, budgetSlots := int64(math.MaxInt64), int64(math.MaxInt64)
	if o.loopBudget > 0 {
		maxKps = max((o.loopBudget-64)/cfg.itersPerBlock(), 1) * bk
		budgetSlots = (o.loopBudget - 8) / 2
	}

	for {
		// Key chunks per source.
		p.kc = make([]int64, len(srcs))
		chunks := int64(0)
		total := int64(0)
		for i, s := range srcs {
			kc := maxCount(int64(s.KV.ld()), (p.bc-1)*int64(s.BatchStride)+reach[i], capacity, nk[i])
			if s.Mask != nil {
				kc = min(kc, maxCount(1, (p.bc-1)*int64(s.MaskBatchStride)+1, capacity, nk[i]))
			}
			if kc < 1 {
				return attnPlan{}, tooWide
			}
			if o.loopBudget > 0 {
				kc = min(kc, maxKps*maxZ) // so that one grid's splits cover it
			}
			if kc < nk[i] && kc >= int64(cfg.BK) {
				kc -= kc % int64(cfg.BK)
			}
			p.kc[i] = kc
			chunks += ceilDiv(nk[i], kc)
			total += nk[i]
		}
		maxKC := int64(0)
		for _, kc := range p.kc {
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
			p.kps = min(ceilDiv(total, splits), cfg.cpuMaxKeys())
		}
		p.kps = min(max(ceilDiv(p.kps, bk)*bk, ceilDiv(maxKC, maxZ)), maxKps)

		// The partial results of a unit must fit one binding each, and
		// the combine's loop budget.
		perSlot := p.bc * H * p.qc * max(dh, 2)
		maxSlots := min(capacity/perSlot, budgetSlots)
		for p.nslots = slotsFor(nk, p.kc, p.kps); p.nslots > 1 && p.nslots > maxSlots && p.kps < maxKC && p.kps < maxKps; p.nslots = slotsFor(nk, p.kc, p.kps) {
			p.kps = min(2*p.kps, maxKps)
		}
		p.direct = p.nslots == 1
		if p.direct || p.nslots <= maxSlots {
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
				chunks, H, dh, o.maxRange)
		}
	}
}
