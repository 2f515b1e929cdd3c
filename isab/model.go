package isab

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/isab-vk/isab-vk/internal/checked"
	"github.com/isab-vk/isab-vk/ops"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

// Model is an ISAB block whose weights live on a device. Forward is safe to
// call from several goroutines at once.
type Model struct {
	dev     *vk.Device
	ops     *ops.Ops
	cfg     Config
	latents *vk.Buffer // learned latents, nil when they are passed in
	attn    [2]attnBuffers
	half    bool // weights and intermediates are IEEE half floats (FP16)
	// forceChunk, when positive, sets the rows per chunk (tests).
	forceChunk int
}

type attnBuffers struct{ q, kv, out *vk.Buffer }

// Load reads an ISAB state_dict saved with safetensors, or with torch.save
// when the file is a zip (see safetensors.ReadAnyFile), and uploads it to dev.
// The configuration comes from opts, else the file's __metadata__ (heads,
// dim_head, latent_self_attend), else the defaults.
func Load(dev *vk.Device, path string, opts Options) (*Model, error) {
	f, err := safetensors.ReadAnyFile(path)
	if err != nil {
		return nil, fmt.Errorf("isab: loading weights: %w", err)
	}
	m, err := LoadFile(dev, f, opts)
	if err != nil {
		return nil, fmt.Errorf("%w (weights %s)", err, path)
	}
	return m, nil
}

// LoadFile is Load for an already parsed safetensors file.
func LoadFile(dev *vk.Device, f *safetensors.File, opts Options) (*Model, error) {
	cfg, w, err := weightsFromFile(f, opts)
	if err != nil {
		return nil, err
	}
	return NewWithPrecision(dev, cfg, w, opts.Precision)
}

// New uploads host weights of the given configuration to dev, in FP32 (see
// NewWithPrecision).
func New(dev *vk.Device, cfg Config, w *Weights) (*Model, error) {
	return newModel(dev, cfg, w, false)
}

// newModel uploads the weights, as half floats when half is set.
func newModel(dev *vk.Device, cfg Config, w *Weights, half bool) (*Model, error) {
	if err := w.check(cfg); err != nil {
		return nil, err
	}
	o, err := ops.New(dev)
	if err != nil {
		return nil, fmt.Errorf("isab: %w", err)
	}
	m := &Model{dev: dev, ops: o, cfg: cfg, half: half}
	upload := func(v []float32) (*vk.Buffer, error) {
		if half {
			return uploadHalf(dev, o, v)
		}
		return vk.BufferFrom(dev, v)
	}
	if cfg.NumLatents > 0 {
		if m.latents, err = upload(w.Latents); err != nil {
			m.Close()
			return nil, fmt.Errorf("isab: uploading latents: %w", err)
		}
	}
	for i, a := range []AttentionWeights{w.Attn1, w.Attn2} {
		var err error
		b := &m.attn[i]
		if b.q, err = upload(a.Q); err == nil {
			if b.kv, err = upload(a.KV); err == nil {
				b.out, err = upload(a.Out)
			}
		}
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("isab: uploading attn%d weights: %w", i+1, err)
		}
	}
	return m, nil
}

// Config returns the block's configuration.
func (m *Model) Config() Config { return m.cfg }

// Device is the device the model runs on.
func (m *Model) Device() *vk.Device { return m.dev }

// Close frees the model's device memory.
func (m *Model) Close() {
	m.latents.Free()
	for _, a := range m.attn {
		a.q.Free()
		a.kv.Free()
		a.out.Free()
	}
	if m.ops != nil {
		m.ops.Close()
	}
}

// ForwardOption adds an optional input to Forward.
type ForwardOption func(*forwardArgs)

type forwardArgs struct {
	mask    *Tensor
	latents *Tensor
	stages  *[]StageTime
}

// StageTime is the GPU time of one dispatch of a forward pass.
type StageTime struct {
	Kernel string // the shader
	// Stage is the step of the pass the dispatch belongs to: q1, kv1
	// (attn1's keys and values: the latents' and x's), attn1, out1, kv2,
	// q2, attn2, out2, or convert (fp16 only).
	Stage string
	Time  time.Duration
}

// WithStageTimes asks Forward to record a GPU timestamp after every dispatch
// and store the per-dispatch times in *dst. It costs a little time, and
// leaves *dst empty on devices without timestamps.
func WithStageTimes(dst *[]StageTime) ForwardOption { return func(a *forwardArgs) { a.stages = dst } }

// WithMask passes a key mask [batch, n] (true = keep) for attn1: masked
// positions of x are not attended to by the latents. A row with every
// position masked gives the uniform average over all keys, as in PyTorch.
func WithMask(mask *Tensor) ForwardOption { return func(a *forwardArgs) { a.mask = mask } }

// WithLatents passes the latents for a model built without learned ones:
// [m, dim], shared across the batch, or [batch, m, dim].
func WithLatents(l *Tensor) ForwardOption { return func(a *forwardArgs) { a.latents = l } }

// Forward runs the block on x [batch, n, dim] and returns out [batch, n, dim]
// and the updated latents [batch, m, dim], both on the device; the caller
// frees them. The whole pass is one submission with no host round trip.
// To run the same shapes again and again without recording the pass and
// allocating its temporaries each time, use Prepare.
func (m *Model) Forward(ctx context.Context, x *Tensor, opts ...ForwardOption) (out, lat *Tensor, err error) {
	pl, err := m.Prepare(x, opts...)
	if err != nil {
		return nil, nil, err
	}
	defer pl.Close()
	if err := pl.Run(ctx); err != nil {
		return nil, nil, err
	}
	out, lat = pl.out, pl.lat
	pl.out, pl.lat = nil, nil // handed to the caller
	return out, lat, nil
}

// Plan is one forward pass recorded for fixed input tensors, with its
// temporaries and outputs allocated: Run replays the recorded command
// buffer, reading whatever x (and the mask and latents) hold at that time.
// A Plan is not safe for concurrent use; Close frees it.
type Plan struct {
	seq      *vk.Sequence
	labels   []string // the step of each dispatch
	temps    []*vk.Buffer
	out, lat *Tensor
	stages   *[]StageTime
}

// Prepare records the forward pass over x and the options' mask and latents
// (see Forward) without running it. The plan keeps references to those
// tensors: they must stay alive, unchanged in shape, until the plan is
// closed. With WithStageTimes, every Run stores its per-dispatch times.
func (m *Model) Prepare(x *Tensor, opts ...ForwardOption) (*Plan, error) {
	var a forwardArgs
	for _, o := range opts {
		o(&a)
	}
	in, err := m.inputs(x, a)
	if err != nil {
		return nil, err
	}
	return m.record(in, a.stages)
}

// Run runs the recorded pass once; its results are in Out and Latents.
func (p *Plan) Run(ctx context.Context) error {
	if p.seq == nil {
		return errors.New("isab: Run on a closed plan")
	}
	if err := p.seq.Run(ctx); err != nil {
		return fmt.Errorf("isab: running the forward pass: %w", err)
	}
	if p.stages != nil {
		*p.stages = (*p.stages)[:0]
		if ts, err := p.seq.Timings(); err == nil {
			for i, name := range p.seq.Names() {
				*p.stages = append(*p.stages, StageTime{Kernel: name, Stage: p.labels[i], Time: ts[i]})
			}
		}
	}
	return nil
}

// Kernels maps each step of the recorded pass ("q1", "attn1", ...) to the
// names of the kernels that the step dispatches, in order of first use,
// each name once. It is nil after Close.
func (p *Plan) Kernels() map[string][]string {
	if p.seq == nil {
		return nil
	}
	out := map[string][]string{}
	for i, name := range p.seq.Names() {
		step := p.labels[i]
		if !slices.Contains(out[step], name) {
			out[step] = append(out[step], name)
		}
	}
	return out
}

// Out is the plan's output [batch, n, dim], owned by the plan and
// overwritten by every Run.
func (p *Plan) Out() *Tensor { return p.out }

// Latents is the plan's updated latents [batch, m, dim], owned by the plan
// and overwritten by every Run.
func (p *Plan) Latents() *Tensor { return p.lat }

// Close frees the plan's sequence, temporaries and outputs. It is safe to
// call more than once.
func (p *Plan) Close() {
	if p.seq != nil {
		p.seq.Close()
		p.seq = nil
	}
	for _, t := range p.temps {
		t.Free()
	}
	p.temps = nil
	p.out.Free()
	p.lat.Free()
	p.out, p.lat = nil, nil
}

// step is one step of recording a forward pass; name labels its
// dispatches in StageTime.Stage.
type step struct {
	name string
	run  func() error
}

// toHalf allocates a half temporary for the n float32 values of src and
// appends the step that converts them.
func (m *Model) toHalf(seq *vk.Sequence, steps *[]step, alloc func(int) (*vk.Buffer, error), src *vk.Buffer, n int) (*vk.Buffer, error) {
	h, err := alloc(n)
	if err != nil {
		return nil, err
	}
	*steps = append(*steps, step{"convert", func() error { return m.ops.Convert(seq, ops.Dense(src, 0, 1, n), ops.DenseHalf(h, 0, 1, n)) }})
	return h, nil
}

// inputs holds the checked inputs and shapes of one forward pass.
type inputs struct {
	x, mask   *Tensor
	latents   *vk.Buffer
	b, n, m   int
	latShared bool // one set of latents for every batch element
}

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
	p := &inputs{x: x, b: x.shape[0], n: x.shape[1]}
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
		p.latents, p.m, p.latShared = m.latents, cfg.NumLatents, true
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

// chunkBytes bounds the buffer that holds one chunk of rows of x's keys
// and values (then of q2 and attn2's output): with larger inputs the pass
// goes through x in chunks rather than growing that buffer.
const chunkBytes = 256 << 20

// chunkRows returns how many rows of each of b batch elements of n rows go
// into one chunk, for inner width i and elements of esize bytes.
func (m *Model) chunkRows(b, n, i int, esize int64) int {
	if m.forceChunk > 0 {
		return min(m.forceChunk, n)
	}
	return chunkRowsFor(b, n, i, esize)
}

// chunkRowsFor is chunkRows without the tests' override.
func chunkRowsFor(b, n, i int, esize int64) int {
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

// record records one forward pass into a new plan:
//
//	q1 = to_q(latents)            [kvl = to_kv(latents)]
//	for each chunk of rows of x:  kv1 = to_kv(x chunk); attn1 partials over it
//	latents' = to_out(combined attn1)
//	kv2 = to_kv(latents')
//	for each chunk of rows of x:  q2 = to_q(x chunk); out chunk = to_out(attend(q2, kv2))
//
// kv1, q2 and attn2's output of a chunk share one buffer (see chunkRows).
func (m *Model) record(p *inputs, stages *[]StageTime) (*Plan, error) {
	cfg := m.cfg
	D, I := cfg.Dim, cfg.Inner()
	B, N, M := p.b, p.n, p.m
	if err := m.fits(B, N, M); err != nil {
		return nil, err
	}
	seq := m.dev.NewSequence()
	if stages != nil {
		seq.EnableTimestamps()
	}
	// pl is freed on every error return below (they return a nil plan, so
	// the deferred Close must not read the result).
	pl := &Plan{seq: seq, stages: stages}
	done := false
	defer func() {
		if !done {
			pl.Close()
		}
	}()
	allocBytes := func(bytes int64) (*vk.Buffer, error) {
		b, err := m.dev.NewBuffer(bytes)
		if err != nil {
			return nil, fmt.Errorf("isab: batch %d, n %d: %w", B, N, err)
		}
		pl.temps = append(pl.temps, b)
		return b, nil
	}
	// alloc allocates an intermediate of elems elements of the model's
	// precision; the attention partials (scratch) are float32 either way.
	alloc := func(elems int) (*vk.Buffer, error) {
		if m.half {
			return allocBytes(halfBytes(elems))
		}
		return allocBytes(int64(elems) * 4)
	}
	scratch := allocBytes
	mat := func(b *vk.Buffer, rows, cols int) ops.Mat {
		return ops.Mat{Buf: b, Rows: rows, Cols: cols, Ld: cols, Half: m.half}
	}
	var steps []step
	// In FP16, x and external latents are converted to half temporaries
	// first, and the results are converted back to float32 at the end.
	xbuf, latbuf := p.x.buf, p.latents
	if m.half {
		var err error
		if xbuf, err = m.toHalf(seq, &steps, alloc, p.x.buf, p.b*p.n*D); err != nil {
			return nil, err
		}
		if latbuf != m.latents {
			rows := M
			if !p.latShared {
				rows = B * M
			}
			if latbuf, err = m.toHalf(seq, &steps, alloc, p.latents, rows*D); err != nil {
				return nil, err
			}
		}
	}

	latRows := B * M
	latStride := M // rows between batch elements of the latents; 0 when shared
	if p.latShared {
		latRows, latStride = M, 0
	}
	x := mat(xbuf, B*N, D)
	L := mat(latbuf, latRows, D)
	w1, w2 := m.attn[0], m.attn[1]
	esize := int64(4)
	if m.half {
		esize = 2
	}
	// The rows of x are taken in chunks of C per batch element: kv1 of a
	// chunk, then later q2 and attn2's output of a chunk, live in one
	// buffer of B*C*2I elements, so the pass holds x, out and that buffer
	// at its peak (plus small ones), however large n is.
	C := m.chunkRows(B, N, I, esize)
	chunk, err := alloc(B * C * 2 * I)
	if err != nil {
		return nil, err
	}
	// rows records y = x w^T for cc rows of every batch element: rows
	// b*xBatch + x0 + i of x into rows b*yBatch + y0 + i of y (dense
	// views), in one Linear when the rows of all batch elements are
	// adjacent.
	rows := func(x ops.Mat, xBatch, x0 int, w, y ops.Mat, yBatch, y0, cc int) error {
		sub := func(v ops.Mat, r0, n int) ops.Mat {
			v.Off += r0 * v.Cols
			v.Rows = n
			return v
		}
		if xBatch == cc && yBatch == cc {
			return m.ops.Linear(seq, sub(x, x0, B*cc), w, nil, sub(y, y0, B*cc))
		}
		for b := 0; b < B; b++ {
			if err := m.ops.Linear(seq, sub(x, b*xBatch+x0, cc), w, nil, sub(y, b*yBatch+y0, cc)); err != nil {
				return err
			}
		}
		return nil
	}
	nchunks := (N + C - 1) / C
	chunkLen := func(c int) int { return min(C, N-c*C) }

	q1b, err := alloc(latRows * I)
	if err != nil {
		return nil, err
	}
	steps = append(steps, step{"q1", func() error { return m.ops.Linear(seq, L, mat(w1.q, I, D), nil, mat(q1b, latRows, I)) }})
	var sources []ops.KVSource
	if cfg.LatentSelfAttend {
		kvl, err := alloc(latRows * 2 * I)
		if err != nil {
			return nil, err
		}
		steps = append(steps, step{"kv1", func() error { return m.ops.Linear(seq, L, mat(w1.kv, 2*I, D), nil, mat(kvl, latRows, 2*I)) }})
		sources = append(sources, ops.KVSource{KV: mat(kvl, latRows, 2*I), BatchStride: latStride * 2 * I, KOff: 0, VOff: I, NK: M})
	}
	for c := 0; c < nchunks; c++ {
		src := ops.KVSource{KV: mat(chunk, B*C, 2*I), BatchStride: C * 2 * I, KOff: 0, VOff: I, NK: chunkLen(c)}
		if p.mask != nil {
			src.Mask, src.MaskOff, src.MaskBatchStride = p.mask.buf, c*C, N
		}
		sources = append(sources, src)
	}

	o1, err := alloc(B * M * I)
	if err != nil {
		return nil, err
	}
	scale := float32(1 / math.Sqrt(float64(cfg.DimHead)))
	latT, err := newEmpty(m.dev, B, M, D)
	if err != nil {
		return nil, err
	}
	pl.lat = latT
	var outT *Tensor
	kv2, err := alloc(B * M * 2 * I)
	if err != nil {
		return nil, err
	}
	if outT, err = newEmpty(m.dev, B, N, D); err != nil {
		return nil, err
	}
	pl.out = outT
	// Where the latents and out are computed: the output tensors, or half
	// temporaries in FP16.
	latBuf, outBuf := latT.buf, outT.buf
	if m.half {
		if latBuf, err = alloc(B * M * D); err != nil {
			return nil, err
		}
		if outBuf, err = alloc(B * N * D); err != nil {
			return nil, err
		}
	}

	// attn1, source by source: the latents' keys, then each chunk of x's
	// keys computed into the chunk buffer once the previous chunk is used.
	var attn1 *ops.AttnSteps
	steps = append(steps, step{"attn1", func() error {
		var err error
		attn1, err = m.ops.NewAttentionSteps(ops.AttnArgs{
			Q: mat(q1b, latRows, I), QBatchStride: latStride * I, NQ: M, Batch: B,
			Heads: cfg.Heads, DimHead: cfg.DimHead, Scale: scale,
			Sources: sources, Out: mat(o1, B*M, I),
		}, scratch)
		return err
	}})
	first := 0
	if cfg.LatentSelfAttend {
		steps = append(steps, step{"attn1", func() error { return attn1.Source(seq, 0) }})
		first = 1
	}
	for c := 0; c < nchunks; c++ {
		steps = append(steps,
			step{"kv1", func() error { return rows(x, N, c*C, mat(w1.kv, 2*I, D), mat(chunk, B*C, 2*I), C, 0, chunkLen(c)) }},
			step{"attn1", func() error { return attn1.Source(seq, first+c) }},
		)
	}
	steps = append(steps,
		step{"attn1", func() error { return attn1.Finish(seq) }},
		step{"out1", func() error { return m.ops.Linear(seq, mat(o1, B*M, I), mat(w1.out, D, I), nil, mat(latBuf, B*M, D)) }},
		step{"kv2", func() error {
			return m.ops.Linear(seq, mat(latBuf, B*M, D), mat(w2.kv, 2*I, D), nil, mat(kv2, B*M, 2*I))
		}},
	)
	// attn2 and the output projection, chunk by chunk: q2 in the chunk
	// buffer's first half, attn2's output in its second half. Its partial
	// buffers, if any, are reused from chunk to chunk.
	var reuse []*vk.Buffer
	calls := 0
	scratch2 := func(bytes int64) (*vk.Buffer, error) {
		i := calls % 2
		calls++
		if i < len(reuse) && reuse[i].Size() >= bytes {
			return reuse[i], nil
		}
		b, err := allocBytes(bytes)
		if err == nil {
			if i < len(reuse) {
				reuse[i] = b
			} else {
				reuse = append(reuse, b)
			}
		}
		return b, err
	}
	for c := 0; c < nchunks; c++ {
		cc := chunkLen(c)
		q2 := ops.Mat{Buf: chunk, Rows: B * C, Cols: I, Ld: I, Half: m.half}
		o2 := ops.Mat{Buf: chunk, Off: B * C * I, Rows: B * cc, Cols: I, Ld: I, Half: m.half}
		steps = append(steps,
			step{"q2", func() error { return rows(x, N, c*C, mat(w2.q, I, D), q2, C, 0, cc) }},
			step{"attn2", func() error {
				return m.ops.Attention(seq, ops.AttnArgs{
					Q: q2, QBatchStride: C * I, NQ: cc, Batch: B,
					Heads: cfg.Heads, DimHead: cfg.DimHead, Scale: scale,
					Sources: []ops.KVSource{{KV: mat(kv2, B*M, 2*I), BatchStride: M * 2 * I, KOff: 0, VOff: I, NK: M}},
					Out:     o2,
				}, scratch2)
			}},
			step{"out2", func() error { return rows(o2, cc, 0, mat(w2.out, D, I), mat(outBuf, B*N, D), N, c*C, cc) }},
		)
	}
	if m.half {
		steps = append(steps,
			step{"convert", func() error {
				return m.ops.Convert(seq, ops.DenseHalf(latBuf, 0, B*M, D), ops.Dense(latT.buf, 0, B*M, D))
			}},
			step{"convert", func() error {
				return m.ops.Convert(seq, ops.DenseHalf(outBuf, 0, B*N, D), ops.Dense(outT.buf, 0, B*N, D))
			}},
		)
	}
	for _, st := range steps {
		n0 := seq.Len()
		if err := st.run(); err != nil {
			return nil, fmt.Errorf("isab: recording the forward pass (%s): %w", st.name, err)
		}
		for i := n0; i < seq.Len(); i++ {
			pl.labels = append(pl.labels, st.name)
		}
	}
	done = true
	return pl, nil
}
