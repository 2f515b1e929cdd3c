package isab

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/isab-vk/isab-vk/internal/checked"
	"github.com/isab-vk/isab-vk/internal/record"
	"github.com/isab-vk/isab-vk/vk"
)

// inputs holds the checked inputs and shapes of one forward pass.
type inputs struct {
	x, mask   *Tensor
	latents   *vk.Buffer
	b, n, m   int
	dim       int
	latShared bool // one set of latents for every batch element
	learned   bool // the latents are the model's own
}

// inputs checks x and the options' mask and latents against the model and
// returns them with their shapes.
func (m *Model) inputs(x *Tensor, a forwardArgs) (*inputs, error) {
	cfg := m.cfg
	if x == nil {
		return nil, errors.New("isab: x is nil")
	}
	if x.dev != m.dev {
		return nil, errors.New("isab: x lives on another device than the model")
	}
	if x.kind != Float32 {
		return nil, errors.New("isab: x must be a float32 tensor, not a mask")
	}
	if len(x.shape) != 3 || x.shape[2] != cfg.Dim {
		return nil, fmt.Errorf("isab: x has shape %s, want [batch, n, %d]", shapeString(x.shape), cfg.Dim)
	}
	p := &inputs{x: x, b: x.shape[0], n: x.shape[1], dim: cfg.Dim}
	if a.mask != nil {
		if a.mask.dev != m.dev {
			return nil, errors.New("isab: the mask lives on another device than the model")
		}
		if a.mask.kind != Mask {
			return nil, errors.New("isab: the mask must be a mask tensor (see NewMask)")
		}
		if !slices.Equal(a.mask.shape, []int{p.b, p.n}) {
			return nil, fmt.Errorf("isab: mask has shape %s, want [%d, %d] to match x", shapeString(a.mask.shape), p.b, p.n)
		}
		p.mask = a.mask
	}
	switch {
	case a.latents != nil && cfg.NumLatents > 0:
		return nil, errors.New("isab: this model learns its latents; pass latents only to a model without them")
	case a.latents == nil && cfg.NumLatents == 0:
		return nil, errors.New("isab: this model has no learned latents; pass them with WithLatents")
	case a.latents == nil:
		p.latents, p.m, p.latShared, p.learned = m.latents, cfg.NumLatents, true, true
	default:
		l := a.latents
		if l.dev != m.dev || l.kind != Float32 {
			return nil, errors.New("isab: latents must be a float32 tensor on the model's device")
		}
		switch {
		case len(l.shape) == 2 && l.shape[1] == cfg.Dim:
			p.latents, p.m, p.latShared = l.buf, l.shape[0], true
		case len(l.shape) == 3 && l.shape[0] == p.b && l.shape[2] == cfg.Dim:
			p.latents, p.m = l.buf, l.shape[1]
		default:
			return nil, fmt.Errorf("isab: latents have shape %s, want [m, %d] or [%d, m, %d]", shapeString(l.shape), cfg.Dim, p.b, cfg.Dim)
		}
	}
	return p, nil
}

// latentsAct is the activation of the latents: the model's learned ones
// (in the model's precision, half when half is set) or the external ones
// (float32), shared by the batch or one set per batch element.
func (p *inputs) latentsAct(half bool) record.Act {
	if p.learned {
		return record.Shared(p.latents, p.m, p.dim, half)
	}
	if p.latShared {
		return record.Shared(p.latents, p.m, p.dim, false)
	}
	return record.Batched(p.latents, p.m, p.dim, false)
}

// chunkBytes bounds the buffer that holds one chunk of rows of x's keys
// and values (then of q2 and attn2's output): with larger inputs the pass
// goes through x in chunks rather than growing that buffer.
const chunkBytes = 256 << 20

// chunkRows returns how many rows of each of b batch elements of n rows go
// into one chunk, for inner width i and elements of esize bytes.
func chunkRows(b, n, i int, esize int64) int {
	per, ok := checked.Product(int64(b), int64(2*i), esize)
	if !ok {
		return min(n, 64)
	}
	c := chunkBytes / per
	if c >= int64(n) {
		return n
	}
	return int(min(max(c-c%64, 64), int64(n)))
}

// fits refuses a pass over b x n rows with m latents whose indices the
// kernels cannot hold or whose outputs and temporaries do not fit the
// device memory left, before anything is allocated.
func (m *Model) fits(b, n, lat int) error {
	I := m.cfg.Inner()
	for _, rows := range []int{n, lat} {
		if e, ok := checked.Product(int64(b), int64(rows), int64(2*I)); !ok || e > math.MaxInt32 {
			return fmt.Errorf("isab: batch %d x n %d is too large for one pass (the kernels index with 32-bit integers); split the batch", b, n)
		}
	}
	cfg := m.cfg
	f, err := cfg.Footprint(b, n, lat, m.half)
	if err != nil {
		return err
	}
	return fitsDevice(m.dev, fmt.Sprintf("a pass over x [%d, %d, %d] with %d latents", b, n, cfg.Dim, lat), f.Pass)
}

// chunks is how a pass walks the rows of x: c rows of every batch element
// at a time. The keys and values of a chunk (attn1), later its queries and
// attention output (attn2), live in one buffer of batch*c*2*inner
// elements, so that the pass holds x, out and that buffer at its peak
// (plus small ones), however large n is.
type chunks struct {
	buf         *vk.Buffer
	batch, n, c int // batch elements, rows of x in each, rows per chunk
	inner       int
	half        bool
}

// newChunks allocates the chunk buffer of a pass over in, with chunks of
// at most limit rows when limit is positive.
func (m *Model) newChunks(r *record.Recorder, in *inputs, limit int) chunks {
	esize := int64(4)
	if m.half {
		esize = 2
	}
	I := m.cfg.Inner()
	c := chunkRows(in.b, in.n, I, esize)
	if limit > 0 {
		c = min(limit, in.n)
	}
	return chunks{buf: r.AllocBuffer(in.b * c * 2 * I), batch: in.b, n: in.n, c: c, inner: I, half: m.half}
}

// count is the number of chunks.
func (ch chunks) count() int { return (ch.n + ch.c - 1) / ch.c }

// rows returns the first row of x in chunk k and the chunk's length.
func (ch chunks) rows(k int) (first, n int) { return k * ch.c, min(ch.c, ch.n-k*ch.c) }

// view is rows of d features of chunk k in the buffer from element off,
// batch elements stride rows apart.
func (ch chunks) view(k, off, d, stride int) record.Act {
	_, n := ch.rows(k)
	return record.Act{Buf: ch.buf, Off: off, N: n, D: d, Stride: stride, Half: ch.half}
}

// kv is chunk k's keys and values: [batch, c, 2*inner], of which the
// chunk's rows of every batch element are used.
func (ch chunks) kv(k int) record.Act { return ch.view(k, 0, 2*ch.inner, ch.c) }

// q is chunk k's queries, in the buffer's first half: [batch, c, inner].
func (ch chunks) q(k int) record.Act { return ch.view(k, 0, ch.inner, ch.c) }

// out is chunk k's attention output, dense in the buffer's second half.
func (ch chunks) out(k int) record.Act {
	_, n := ch.rows(k)
	return ch.view(k, ch.batch*ch.c*ch.inner, ch.inner, n)
}

// newPlan allocates the outputs of a pass over in and starts recording.
func (m *Model) newPlan(in *inputs, stages *[]StageTime) (*Plan, error) {
	pl := &Plan{stages: stages}
	var err error
	if pl.lat, err = newEmpty(m.dev, in.b, in.m, m.cfg.Dim); err == nil {
		pl.out, err = newEmpty(m.dev, in.b, in.n, m.cfg.Dim)
	}
	if err != nil {
		pl.Close()
		return nil, err
	}
	pl.rec = record.New(m.ops, in.b, m.half)
	if stages != nil {
		pl.rec.Seq().EnableTimestamps()
	}
	return pl, nil
}

// dense is the activation of a float32 tensor [batch, n, d].
func dense(t *Tensor) record.Act { return record.Batched(t.buf, t.shape[1], t.shape[2], false) }

// record records one forward pass into a new plan. It reads as
// isab-pytorch's ISAB.forward:
//
//	latents = attn1(latents, x, mask)
//	out     = attn2(x, latents)
//
// In FP16, x and external latents are converted to half floats first and
// the results back to float32 at the end. attn1 takes x's keys and values,
// and attn2 x's queries, chunk by chunk (see chunks).
func (m *Model) record(in *inputs, a forwardArgs) (*Plan, error) {
	if err := m.fits(in.b, in.n, in.m); err != nil {
		return nil, err
	}
	pl, err := m.newPlan(in, a.stages)
	if err != nil {
		return nil, err
	}
	r := pl.rec
	r.Step("convert")
	x := r.Input(dense(in.x))
	latents := r.Input(in.latentsAct(m.half))
	ch := m.newChunks(r, in, a.chunkRows)

	latents = m.attn1(r, ch, latents, x, in.mask, r.Target(dense(pl.lat)))
	out := m.attn2(r, ch, x, latents, r.Target(dense(pl.out)))

	r.Step("convert")
	r.Store(latents, dense(pl.lat))
	r.Store(out, dense(pl.out))
	if err := r.Err(); err != nil {
		pl.Close()
		return nil, fmt.Errorf("isab: recording the forward pass over x [%d, %d, %d] with %d latents: %w", in.b, in.n, m.cfg.Dim, in.m, err)
	}
	return pl, nil
}

// heads is the shape of both attentions: scale dim_head^-0.5.
func (m *Model) heads() record.Heads {
	return record.Heads{Heads: m.cfg.Heads, DimHead: m.cfg.DimHead, Scale: float32(1 / math.Sqrt(float64(m.cfg.DimHead)))}
}

// attn1 records isab-pytorch's first Attention, the latents attending to
// x, into dst and returns it:
//
//	q = to_q(latents)
//	k, v = to_kv(context).chunk(2)   context = concat(latents, x) with latent_self_attend, else x
//	dst = to_out(softmax(q k^T * scale, mask padded with true for the latents) v)
//
// The context's sources are the latents' keys and values, then x's chunk
// by chunk: each chunk's keys and values are computed into the chunk
// buffer once the attention over the previous chunk is recorded.
func (m *Model) attn1(r *record.Recorder, ch chunks, latents, x record.Act, mask *Tensor, dst record.Act) record.Act {
	w := m.attn[0]
	r.Step("q1")
	q := r.Linear(latents, w.toQ)
	var context []record.KV // concat(latents, x) along the keys
	if m.cfg.LatentSelfAttend {
		r.Step("kv1")
		context = append(context, record.Keys(r.Linear(latents, w.toKV)))
	}
	xFrom := len(context) // the source of x's first chunk
	for k := range ch.count() {
		kv := record.Keys(ch.kv(k))
		if mask != nil {
			first, _ := ch.rows(k)
			kv = kv.Masked(mask.buf, first, ch.n)
		}
		context = append(context, kv)
	}
	r.Step("attn1")
	o := r.Alloc(q.N, m.cfg.Inner(), false)
	att := r.AttentionSteps(q, m.heads(), o, context...)
	if xFrom > 0 {
		att.Source(0) // the latents' keys and values are in place
	}
	for k := range ch.count() {
		first, n := ch.rows(k)
		r.Step("kv1")
		r.LinearInto(x.Rows(first, n), w.toKV, ch.kv(k))
		r.Step("attn1")
		att.Source(xFrom + k)
	}
	att.Finish()
	r.Step("out1")
	r.LinearInto(o, w.toOut, dst)
	return dst
}

// attn2 records isab-pytorch's second Attention, x attending to the
// updated latents (no mask), into dst and returns it:
//
//	k, v = to_kv(latents).chunk(2)
//	dst = to_out(softmax(to_q(x) k^T * scale) v)
//
// chunk by chunk of x: its queries in the chunk buffer's first half, their
// attention output in its second half.
func (m *Model) attn2(r *record.Recorder, ch chunks, x, latents, dst record.Act) record.Act {
	w := m.attn[1]
	r.Step("kv2")
	kv := record.Keys(r.Linear(latents, w.toKV))
	for k := range ch.count() {
		first, n := ch.rows(k)
		r.Step("q2")
		r.LinearInto(x.Rows(first, n), w.toQ, ch.q(k))
		r.Step("attn2")
		r.AttentionInto(ch.q(k), m.heads(), ch.out(k), kv)
		r.Step("out2")
		r.LinearInto(ch.out(k), w.toOut, dst.Rows(first, n))
	}
	return dst
}
