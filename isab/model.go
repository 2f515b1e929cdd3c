package isab

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

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
}

type attnBuffers struct{ q, kv, out *vk.Buffer }

// Load reads an ISAB state_dict saved with safetensors and uploads it to dev.
// The configuration comes from opts, else the file's __metadata__ (heads,
// dim_head, latent_self_attend), else the defaults.
func Load(dev *vk.Device, path string, opts Options) (*Model, error) {
	f, err := safetensors.ReadFile(path)
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
	return New(dev, cfg, w)
}

// New uploads host weights of the given configuration to dev.
func New(dev *vk.Device, cfg Config, w *Weights) (*Model, error) {
	if err := w.check(cfg); err != nil {
		return nil, err
	}
	o, err := ops.New(dev)
	if err != nil {
		return nil, fmt.Errorf("isab: %w", err)
	}
	m := &Model{dev: dev, ops: o, cfg: cfg}
	upload := func(v []float32) (*vk.Buffer, error) { return vk.BufferFrom(dev, v) }
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
	Kernel string
	Time   time.Duration
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
// frees them.
func (m *Model) Forward(ctx context.Context, x *Tensor, opts ...ForwardOption) (out, lat *Tensor, err error) {
	var a forwardArgs
	for _, o := range opts {
		o(&a)
	}
	p, err := m.plan(x, a)
	if err != nil {
		return nil, nil, err
	}
	return m.run(ctx, p, a.stages)
}

// shapes of one forward pass.
type plan struct {
	x, mask   *Tensor
	latents   *vk.Buffer
	b, n, m   int
	latShared bool // one set of latents for every batch element
}

func (m *Model) plan(x *Tensor, a forwardArgs) (*plan, error) {
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
	p := &plan{x: x, b: x.shape[0], n: x.shape[1]}
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

// run records and runs one forward pass:
//
//	q1 = to_q(latents)            kv1 = to_kv(x) [and to_kv(latents)]
//	q2 = to_q(x)                  (independent, so no barriers between)
//	latents' = to_out(attend(q1, kv1, mask))
//	kv2 = to_kv(latents')
//	out = to_out(attend(q2, kv2))
func (m *Model) run(ctx context.Context, p *plan, stages *[]StageTime) (out, lat *Tensor, err error) {
	cfg := m.cfg
	D, I := cfg.Dim, cfg.Inner()
	B, N, M := p.b, p.n, p.m
	if int64(B)*int64(N)*int64(2*I) > math.MaxInt32 || int64(B)*int64(M)*int64(2*I) > math.MaxInt32 {
		return nil, nil, fmt.Errorf("isab: batch %d x n %d is too large for one pass; split the batch", B, N)
	}
	seq := m.dev.NewSequence()
	defer seq.Close()
	if stages != nil {
		seq.EnableTimestamps()
	}
	var temps []*vk.Buffer
	defer func() {
		for _, t := range temps {
			t.Free()
		}
	}()
	alloc := func(elems int) (*vk.Buffer, error) {
		b, err := m.dev.NewBuffer(int64(elems) * 4)
		if err != nil {
			return nil, fmt.Errorf("isab: batch %d, n %d: %w", B, N, err)
		}
		temps = append(temps, b)
		return b, nil
	}
	scratch := func(bytes int64) (*vk.Buffer, error) { return alloc(int(bytes / 4)) }
	mat := func(b *vk.Buffer, rows, cols int) ops.Mat { return ops.Mat{Buf: b, Rows: rows, Cols: cols, Ld: cols} }

	latRows := B * M
	latStride := M // rows between batch elements of the latents; 0 when shared
	if p.latShared {
		latRows, latStride = M, 0
	}
	x := mat(p.x.buf, B*N, D)
	L := mat(p.latents, latRows, D)
	w1, w2 := m.attn[0], m.attn[1]

	q1b, err := alloc(latRows * I)
	if err != nil {
		return nil, nil, err
	}
	kvx, err := alloc(B * N * 2 * I)
	if err != nil {
		return nil, nil, err
	}
	q2b, err := alloc(B * N * I)
	if err != nil {
		return nil, nil, err
	}
	steps := []func() error{
		func() error { return m.ops.Linear(seq, L, mat(w1.q, I, D), nil, mat(q1b, latRows, I)) },
		func() error { return m.ops.Linear(seq, x, mat(w1.kv, 2*I, D), nil, mat(kvx, B*N, 2*I)) },
		func() error { return m.ops.Linear(seq, x, mat(w2.q, I, D), nil, mat(q2b, B*N, I)) },
	}
	sources := []ops.KVSource{}
	if cfg.LatentSelfAttend {
		kvl, err := alloc(latRows * 2 * I)
		if err != nil {
			return nil, nil, err
		}
		steps = append(steps, func() error { return m.ops.Linear(seq, L, mat(w1.kv, 2*I, D), nil, mat(kvl, latRows, 2*I)) })
		sources = append(sources, ops.KVSource{KV: mat(kvl, latRows, 2*I), BatchStride: latStride * 2 * I, KOff: 0, VOff: I, NK: M})
	}
	src := ops.KVSource{KV: mat(kvx, B*N, 2*I), BatchStride: N * 2 * I, KOff: 0, VOff: I, NK: N}
	if p.mask != nil {
		src.Mask, src.MaskBatchStride = p.mask.buf, N
	}
	sources = append(sources, src)

	o1, err := alloc(B * M * I)
	if err != nil {
		return nil, nil, err
	}
	scale := float32(1 / math.Sqrt(float64(cfg.DimHead)))
	latT, err := newEmpty(m.dev, B, M, D)
	if err != nil {
		return nil, nil, err
	}
	var outT *Tensor
	defer func() {
		if err != nil {
			latT.Free()
			outT.Free()
		}
	}()
	kv2, err := alloc(B * M * 2 * I)
	if err != nil {
		return nil, nil, err
	}
	o2, err := alloc(B * N * I)
	if err != nil {
		return nil, nil, err
	}
	if outT, err = newEmpty(m.dev, B, N, D); err != nil {
		return nil, nil, err
	}
	steps = append(steps,
		func() error {
			return m.ops.Attention(seq, ops.AttnArgs{
				Q: mat(q1b, latRows, I), QBatchStride: latStride * I, NQ: M, Batch: B,
				Heads: cfg.Heads, DimHead: cfg.DimHead, Scale: scale,
				Sources: sources, Out: mat(o1, B*M, I),
			}, scratch)
		},
		func() error { return m.ops.Linear(seq, mat(o1, B*M, I), mat(w1.out, D, I), nil, mat(latT.buf, B*M, D)) },
		func() error {
			return m.ops.Linear(seq, mat(latT.buf, B*M, D), mat(w2.kv, 2*I, D), nil, mat(kv2, B*M, 2*I))
		},
		func() error {
			return m.ops.Attention(seq, ops.AttnArgs{
				Q: mat(q2b, B*N, I), QBatchStride: N * I, NQ: N, Batch: B,
				Heads: cfg.Heads, DimHead: cfg.DimHead, Scale: scale,
				Sources: []ops.KVSource{{KV: mat(kv2, B*M, 2*I), BatchStride: M * 2 * I, KOff: 0, VOff: I, NK: M}},
				Out:     mat(o2, B*N, I),
			}, scratch)
		},
		func() error { return m.ops.Linear(seq, mat(o2, B*N, I), mat(w2.out, D, I), nil, mat(outT.buf, B*N, D)) },
	)
	for _, step := range steps {
		if err = step(); err != nil {
			return nil, nil, fmt.Errorf("isab: recording the forward pass: %w", err)
		}
	}
	if err = seq.Run(ctx); err != nil {
		return nil, nil, fmt.Errorf("isab: running the forward pass: %w", err)
	}
	if stages != nil {
		*stages = (*stages)[:0]
		if ts, terr := seq.Timings(); terr == nil {
			for i, name := range seq.Names() {
				*stages = append(*stages, StageTime{Kernel: name, Time: ts[i]})
			}
		}
	}
	return outT, latT, nil
}
