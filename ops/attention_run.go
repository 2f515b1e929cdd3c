package ops

import (
	"errors"
	"fmt"

	"github.com/isab-vk/isab-vk/shaders"
	"github.com/isab-vk/isab-vk/vk"
)

// attnRun is a planned attention: its sources with keys, configuration,
// kernels, partial buffers and pieces of batch and queries (units).
type attnRun struct {
	o                *Ops
	a                AttnArgs
	srcs             []KVSource
	nk, reach        []int64 // keys, and columns a KV row must hold, per source
	k                attnKernel
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

// newAttnRun checks a, chooses its kernel and plans it; apart keeps every
// unit's partial results in a region of its own.
func (o *Ops) newAttnRun(a AttnArgs, scratch func(bytes int64) (*vk.Buffer, error), apart bool) (*attnRun, error) {
	r, half, err := o.checkAttn(a)
	if err != nil {
		return nil, err
	}
	if r.k, _, err = o.chooseAttention(a, r.srcs, half, false); err != nil {
		return nil, err
	}
	if r.plan, err = o.planAttention(a, r.k, r.srcs, r.nk, r.reach); err != nil {
		return nil, err
	}
	var halfTexel uint32
	if half && r.k.texel != 0 {
		// Half Q and KV; the output binding holds halves when it is Out,
		// floats when it holds the partial results.
		halfTexel = r.k.texel
		if r.plan.direct {
			halfTexel |= r.k.store
		}
	}
	spec, err := kernelSpecFor[attnPush](r.k.kernel, r.k.spec...)
	if err != nil {
		return nil, err
	}
	spec.Texel, spec.StorageTexel, spec.HalfTexel = r.k.texel, r.k.store, halfTexel
	spec.SubgroupSize = r.k.cfg.subgroup
	if r.attn, err = o.kernelSpec(spec); err != nil {
		return nil, err
	}
	plan := r.plan
	for b0 := int64(0); b0 < r.B; b0 += plan.bc {
		for q0 := int64(0); q0 < r.NQ; q0 += plan.qc {
			r.units = append(r.units, attnUnit{b0: b0, bc: min(plan.bc, r.B-b0), q0: q0, qc: min(plan.qc, r.NQ-q0)})
		}
	}
	slot := int64(0)
	for si := range r.srcs {
		r.slot0 = append(r.slot0, slot)
		for k0 := int64(0); k0 < r.nk[si]; k0 += plan.kc[si] {
			slot += ceilDiv(min(plan.kc[si], r.nk[si]-k0), plan.kps)
		}
	}
	if plan.direct {
		return r, nil
	}
	combine := shaders.AttnCombine
	if half {
		combine = shaders.AttnCombineF16
	}
	if r.comb, err = kernelFor[combinePush](o, combine); err != nil {
		return nil, err
	}
	return r, r.allocPartials(scratch, apart)
}

// checkAttn checks a's shape, views and sources and returns the run's
// operands (without kernels or plan) and whether they are half.
func (o *Ops) checkAttn(a AttnArgs) (*attnRun, bool, error) {
	half, err := o.attnHalf(a)
	if err != nil {
		return nil, false, err
	}
	// Element size of Q, the sources and Out: the fp16 kernels keep their
	// partial results (scratch) in float32.
	esize := int64(4)
	if half {
		esize = 2
	}
	if a.Batch < 1 || a.NQ < 1 || a.Heads < 1 || a.DimHead < 1 {
		return nil, false, fmt.Errorf("ops: Attention: bad shape (batch %d, queries %d, heads %d, head width %d)", a.Batch, a.NQ, a.Heads, a.DimHead)
	}
	if err := a.checkIndices(); err != nil {
		return nil, false, err
	}
	B, NQ, H, dh := int64(a.Batch), int64(a.NQ), int64(a.Heads), int64(a.DimHead)
	HD := H * dh
	if a.Q.Cols < int(HD) || a.QBatchStride < 0 || a.Q.ld() < a.Q.Cols || a.Q.Off < 0 {
		return nil, false, fmt.Errorf("ops: Attention: Q view (%d columns, stride %d, batch stride %d) does not hold %d heads of %d", a.Q.Cols, a.Q.ld(), a.QBatchStride, H, dh)
	}
	ldq, qbs := int64(a.Q.ld()), int64(a.QBatchStride)
	if err := fitsSized("ops: Attention Q", a.Q.Buf, int64(a.Q.Off), (B-1)*qbs+(NQ-1)*ldq+HD, esize); err != nil {
		return nil, false, err
	}
	if err := a.Out.check("ops: Attention Out"); err != nil {
		return nil, false, err
	}
	if int64(a.Out.Rows) != B*NQ || int64(a.Out.Cols) < HD {
		return nil, false, fmt.Errorf("ops: Attention: Out is %dx%d, want %d rows of at least %d", a.Out.Rows, a.Out.Cols, B*NQ, HD)
	}
	r := &attnRun{o: o, a: a, esize: esize, B: B, NQ: NQ, H: H, dh: dh, ldq: ldq, qbs: qbs, ldo: int64(a.Out.ld())}
	if err := r.checkSources(); err != nil {
		return nil, false, err
	}
	return r, half, nil
}

// checkSources checks r.a's sources and keeps those with keys, their key
// counts and the columns their rows must hold.
func (r *attnRun) checkSources() error {
	a, B, HD, esize := r.a, r.B, r.H*r.dh, r.esize
	for i, s := range a.Sources {
		if s.NK < 0 || s.KOff < 0 || s.VOff < 0 || s.BatchStride < 0 || s.MaskOff < 0 || s.MaskBatchStride < 0 {
			return fmt.Errorf("ops: Attention: source %d has a negative size, offset or stride", i)
		}
		if s.NK == 0 {
			continue
		}
		reach := int64(max(s.KOff, s.VOff)) + HD
		if int64(s.KV.Cols) < reach || s.KV.ld() < s.KV.Cols || s.KV.Off < 0 {
			return fmt.Errorf("ops: Attention: source %d rows (%d columns, stride %d) do not hold keys at %d and values at %d of %d heads of %d",
				i, s.KV.Cols, s.KV.ld(), s.KOff, s.VOff, r.H, r.dh)
		}
		what := fmt.Sprintf("ops: Attention source %d", i)
		if err := fitsSized(what+" KV", s.KV.Buf, int64(s.KV.Off), (B-1)*int64(s.BatchStride)+int64(s.NK-1)*int64(s.KV.ld())+reach, esize); err != nil {
			return err
		}
		if s.Mask != nil {
			if err := fits(what+" mask", s.Mask, int64(s.MaskOff), (B-1)*int64(s.MaskBatchStride)+int64(s.NK)); err != nil {
				return err
			}
		}
		r.srcs = append(r.srcs, s)
		r.nk = append(r.nk, int64(s.NK))
		r.reach = append(r.reach, reach)
	}
	if len(r.srcs) == 0 {
		return errors.New("ops: Attention: no keys")
	}
	return nil
}

// allocPartials asks scratch for the partial-result buffers of r's units:
// one region shared by all units, or (apart) one region per unit.
func (r *attnRun) allocPartials(scratch func(bytes int64) (*vk.Buffer, error), apart bool) error {
	o, plan := r.o, r.plan
	perSlot := plan.bc * r.H * plan.qc                                        // queries x heads of one slot
	partBytes, mlBytes := 4*plan.nslots*perSlot*r.dh, 4*plan.nslots*perSlot*2 // one unit's regions
	nreg := int64(1)
	if apart && len(r.units) > 1 {
		// Regions start at offsets aligned for binding.
		r.partStep = ceilDiv(partBytes, o.align) * o.align
		r.mlStep = ceilDiv(mlBytes, o.align) * o.align
		nreg = int64(len(r.units))
	}
	partSize, mlSize := partBytes+(nreg-1)*r.partStep, mlBytes+(nreg-1)*r.mlStep
	var err error
	if r.part, err = scratch(partSize); err != nil {
		return fmt.Errorf("ops: Attention: scratch: %w", err)
	}
	if r.ml, err = scratch(mlSize); err != nil {
		return fmt.Errorf("ops: Attention: scratch: %w", err)
	}
	if r.part == nil || r.ml == nil || r.part == r.ml || r.part.Size() < partSize || r.ml.Size() < mlSize {
		return errors.New("ops: Attention: scratch returned a missing, short or repeated buffer")
	}
	return nil
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
		groups := [3]uint32{uint32(ceilDiv(u.qc, int64(r.k.cfg.BQ))), uint32(r.H * u.bc), uint32(splits)}
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
