package record

import (
	"errors"
	"fmt"

	"github.com/isab-vk/isab-vk/ops"
)

// Linear records y = l(x) into a new activation of l.Out features, shared
// when x is.
func (r *Recorder) Linear(x Act, l Linear) Act {
	y := r.Alloc(x.N, l.Out, x.IsShared())
	r.LinearInto(x, l, y)
	return y
}

// LinearInto records y = l(x) into the view y, which has x's rows. When
// the rows of every batch element are adjacent in both x and y, it is one
// Linear over all rows, else one per batch element.
func (r *Recorder) LinearInto(x Act, l Linear, y Act) {
	r.do(func() error {
		if x.N != y.N || x.IsShared() != y.IsShared() || x.D != l.In || y.D != l.Out {
			return fmt.Errorf("linear [%d, %d] from %d rows of %d features (shared %v) to %d rows of %d (shared %v)",
				l.Out, l.In, x.N, x.D, x.IsShared(), y.N, y.D, y.IsShared())
		}
		w, b := l.weight(r.half), l.bias(r.half)
		if x.adjacent() && y.adjacent() {
			return r.ops.Linear(r.seq, x.all(r.batch), w, b, y.all(r.batch))
		}
		for i := 0; i < r.batch; i++ {
			if err := r.ops.Linear(r.seq, x.elem(i), w, b, y.elem(i)); err != nil {
				return err
			}
		}
		return nil
	})
}

// attnArgs describes the attention of queries q over the key sources kv
// into out.
func (r *Recorder) attnArgs(q Act, h Heads, out Act, kv []KV) (ops.AttnArgs, error) {
	if out.IsShared() || !out.adjacent() || out.N != q.N {
		return ops.AttnArgs{}, fmt.Errorf("attention output of %d rows (stride %d) for %d queries: want dense batch rows", out.N, out.Stride, q.N)
	}
	a := ops.AttnArgs{
		Q: q.span(r.batch), QBatchStride: q.batchStride(), NQ: q.N, Batch: r.batch,
		Heads: h.Heads, DimHead: h.DimHead, Scale: h.Scale, Out: out.all(r.batch),
	}
	for _, s := range kv {
		src, err := s.source(r.batch)
		if err != nil {
			return ops.AttnArgs{}, err
		}
		a.Sources = append(a.Sources, src)
	}
	return a, nil
}

// Attention records multi-head attention of the queries q over the
// concatenation of the key sources kv, into a new activation [batch,
// q.N, h.Inner()].
func (r *Recorder) Attention(q Act, h Heads, kv ...KV) Act {
	out := r.Alloc(q.N, h.Inner(), false)
	r.AttentionInto(q, h, out, kv...)
	return out
}

// AttentionInto is Attention into the view out, whose batch elements'
// rows must be adjacent. Its partial results live in two buffers that
// every AttentionInto of the pass shares.
func (r *Recorder) AttentionInto(q Act, h Heads, out Act, kv ...KV) {
	r.do(func() error {
		a, err := r.attnArgs(q, h, out, kv)
		if err != nil {
			return err
		}
		return r.ops.Attention(r.seq, a, r.reused)
	})
}

// Steps is an attention whose key sources are recorded one at a time
// (see ops.AttnSteps), so that a source's keys and values can be computed
// into memory that an earlier source used.
type Steps struct {
	r  *Recorder
	st *ops.AttnSteps
}

// AttentionSteps plans the attention of q over the sources kv into out
// (see AttentionInto; the sources' shapes are final, their contents need
// not be yet). Record each source with Source once it is in place, then
// Finish. Its partial results are its own.
func (r *Recorder) AttentionSteps(q Act, h Heads, out Act, kv ...KV) *Steps {
	s := &Steps{r: r}
	r.do(func() error {
		a, err := r.attnArgs(q, h, out, kv)
		if err != nil {
			return err
		}
		s.st, err = r.ops.NewAttentionSteps(a, r.scratch)
		return err
	})
	return s
}

// Source records the attention over source i.
func (s *Steps) Source(i int) {
	s.r.do(func() error {
		if s.st == nil {
			return errors.New("attention steps were not planned")
		}
		return s.st.Source(s.r.seq, i)
	})
}

// Finish records the merge of the sources' partial results into the
// output.
func (s *Steps) Finish() {
	s.r.do(func() error {
		if s.st == nil {
			return errors.New("attention steps were not planned")
		}
		return s.st.Finish(s.r.seq)
	})
}

// Add records a + b, or a + relu(b) when relu is set, into a new
// activation of b's shape; a has b's shape or is shared, and then repeats
// over the batch.
func (r *Recorder) Add(a, b Act, relu bool) Act {
	y := r.Alloc(b.N, b.D, b.IsShared())
	r.do(func() error {
		if !a.adjacent() || !b.adjacent() {
			return errors.New("add of views whose batch rows are not adjacent")
		}
		return r.ops.Add(r.seq, a.all(r.batch), b.all(r.batch), y.all(r.batch), relu)
	})
	return y
}

// LayerNorm records ln(x) into a new activation of x's shape.
func (r *Recorder) LayerNorm(x Act, ln LayerNorm) Act {
	y := r.Alloc(x.N, x.D, x.IsShared())
	r.do(func() error {
		if !x.adjacent() || ln.Dim != x.D {
			return fmt.Errorf("layer norm of %d features over %d features (adjacent rows %v)", ln.Dim, x.D, x.adjacent())
		}
		w := ops.Mat{Buf: ln.W, Rows: 1, Cols: ln.Dim, Ld: ln.Dim, Half: r.half}
		bias := ops.Mat{Buf: ln.B, Rows: 1, Cols: ln.Dim, Ld: ln.Dim, Half: r.half}
		return r.ops.LayerNorm(r.seq, x.all(r.batch), y.all(r.batch), w, bias, ln.Eps)
	})
	return y
}

// Input returns the dense input a in the pass's precision: a itself, or,
// when the pass runs in half floats and a is float32, a half copy.
func (r *Recorder) Input(a Act) Act {
	if r.err != nil || a.Half == r.half {
		return a
	}
	h := r.Alloc(a.N, a.D, a.IsShared())
	r.convert(a, h)
	return h
}

// Target returns where the pass computes the dense float32 output dst:
// dst itself, or a half temporary when the pass runs in half floats (Store
// then converts it into dst).
func (r *Recorder) Target(dst Act) Act {
	if r.err != nil || dst.Half == r.half {
		return dst
	}
	return r.Alloc(dst.N, dst.D, dst.IsShared())
}

// Store records the copy of the result src, from Target(dst), into dst:
// nothing when src is dst, else a conversion.
func (r *Recorder) Store(src, dst Act) {
	if src == dst {
		return
	}
	r.convert(src, dst)
}

// convert records dst = src between float32 and half, both dense and of
// one shape.
func (r *Recorder) convert(src, dst Act) {
	r.do(func() error {
		if !src.adjacent() || !dst.adjacent() {
			return errors.New("conversion of views whose batch rows are not adjacent")
		}
		return r.ops.Convert(r.seq, src.all(r.batch), dst.all(r.batch))
	})
}
