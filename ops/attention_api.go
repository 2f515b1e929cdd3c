package ops

import (
	"errors"
	"fmt"

	"github.com/isab-vk/isab-vk/internal/checked"
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
