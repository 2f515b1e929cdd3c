package settransformer

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/isab-vk/isab-vk/isab"
	"github.com/isab-vk/isab-vk/ops"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

// Model is a Set Transformer block or model whose weights live on a device.
// Forward is safe to call from several goroutines at once.
type Model struct {
	dev    *vk.Device
	ops    *ops.Ops
	cfg    Config
	blocks []block
	bufs   []*vk.Buffer
}

// Load reads a state_dict saved with safetensors, or with torch.save when the
// file is a zip (see safetensors.ReadAnyFile), and uploads it to dev. The
// kind and configuration come from opts, else the file's __metadata__, else
// the weights' shapes (see Options).
func Load(dev *vk.Device, path string, opts Options) (*Model, error) {
	f, err := safetensors.ReadAnyFile(path)
	if err != nil {
		return nil, fmt.Errorf("settransformer: loading weights: %w", err)
	}
	m, err := LoadFile(dev, f, opts)
	if err != nil {
		return nil, fmt.Errorf("%w (weights %s)", err, path)
	}
	return m, nil
}

// LoadFile is Load for an already parsed safetensors file. A missing,
// unexpected or mis-shaped key is an error that names it.
func LoadFile(dev *vk.Device, f *safetensors.File, opts Options) (*Model, error) {
	if dev == nil {
		return nil, errors.New("settransformer: nil device")
	}
	cfg, err := resolve(f, opts)
	if err != nil {
		return nil, err
	}
	l := &loader{f: f, dev: dev, used: map[string]bool{}}
	blocks, err := l.blocks(cfg)
	if err == nil {
		err = l.unused()
	}
	if err != nil {
		l.free()
		return nil, err
	}
	o, err := ops.New(dev)
	if err != nil {
		l.free()
		return nil, fmt.Errorf("settransformer: %w", err)
	}
	return &Model{dev: dev, ops: o, cfg: cfg, blocks: blocks, bufs: l.bufs}, nil
}

// blocks loads the modules of cfg.Kind.
func (l *loader) blocks(cfg Config) ([]block, error) {
	h, ln := cfg.Heads, cfg.LN
	switch cfg.Kind {
	case KindISAB:
		b, err := l.isab("", cfg.DimIn, cfg.Dim, h, ln)
		return []block{b}, err
	case KindSAB:
		b, err := l.sab("", cfg.DimIn, cfg.Dim, h, ln)
		return []block{b}, err
	case KindPMA:
		if cfg.DimIn != cfg.Dim {
			return nil, fmt.Errorf("settransformer: a PMA maps dim to dim, but mab.fc_q.weight is [%d, %d]", cfg.Dim, cfg.DimIn)
		}
		b, err := l.pma("", cfg.Dim, h, ln)
		return []block{b}, err
	case KindModel:
		e0, err := l.isab("enc.0.", cfg.DimIn, cfg.Dim, h, ln)
		if err != nil {
			return nil, err
		}
		e1, err := l.isab("enc.1.", cfg.Dim, cfg.Dim, h, ln)
		if err != nil {
			return nil, err
		}
		if e1.m != e0.m {
			return nil, fmt.Errorf("settransformer: enc.0.I holds %d inducing points but enc.1.I %d", e0.m, e1.m)
		}
		d0, err := l.pma("dec.0.", cfg.Dim, h, ln)
		if err != nil {
			return nil, err
		}
		d1, err := l.sab("dec.1.", cfg.Dim, cfg.Dim, h, ln)
		if err != nil {
			return nil, err
		}
		d2, err := l.sab("dec.2.", cfg.Dim, cfg.Dim, h, ln)
		if err != nil {
			return nil, err
		}
		d3, err := l.linear("dec.3.", cfg.Dim, cfg.DimOut)
		if err != nil {
			return nil, err
		}
		return []block{e0, e1, d0, d1, d2, &d3}, nil
	}
	return nil, fmt.Errorf("settransformer: unknown kind %q", cfg.Kind)
}

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// Device is the device the model runs on.
func (m *Model) Device() *vk.Device { return m.dev }

// Close frees the model's device memory.
func (m *Model) Close() {
	for _, b := range m.bufs {
		b.Free()
	}
	m.bufs = nil
	if m.ops != nil {
		m.ops.Close()
		m.ops = nil
	}
}

// act is an activation of a forward pass: batch sets of n rows of d
// features, dense in buf; shared means one set used by every batch element
// (a learned I or S).
type act struct {
	buf    *vk.Buffer
	n, d   int
	shared bool
}

// recorder collects one forward pass into a sequence, with the temporary
// buffers it needs.
type recorder struct {
	o     *ops.Ops
	dev   *vk.Device
	seq   *vk.Sequence
	batch int
	temps []*vk.Buffer
}

func (r *recorder) alloc(elems int) (*vk.Buffer, error) {
	b, err := r.dev.NewBuffer(int64(elems) * 4)
	if err != nil {
		return nil, fmt.Errorf("settransformer: batch %d: %w", r.batch, err)
	}
	r.temps = append(r.temps, b)
	return b, nil
}

func (r *recorder) scratch(bytes int64) (*vk.Buffer, error) { return r.alloc(int((bytes + 3) / 4)) }

// rows is the number of rows an activation spans.
func (r *recorder) rows(a act) int {
	if a.shared {
		return a.n
	}
	return r.batch * a.n
}

// mat is the dense matrix of an activation.
func (r *recorder) mat(a act) ops.Mat { return ops.Dense(a.buf, 0, r.rows(a), a.d) }

// block is one module of a model.
type block interface {
	record(r *recorder, x act) (act, error)
}

// apply records y = x W^T + b for an activation.
func (l *linear) apply(r *recorder, x act, y ops.Mat) error {
	return r.o.Linear(r.seq, r.mat(x), ops.Dense(l.w, 0, l.out, l.in), &ops.Mat{Buf: l.b, Rows: 1, Cols: l.out}, y)
}

func (l *linear) record(r *recorder, x act) (act, error) {
	y := act{n: x.n, d: l.out, shared: x.shared}
	var err error
	if y.buf, err = r.alloc(r.rows(x) * l.out); err != nil {
		return act{}, err
	}
	return y, l.apply(r, x, r.mat(y))
}

// mab is the multihead attention block MAB(Q, K).
type mab struct {
	fcQ, fcK, fcV, fcO linear
	ln0, ln1           *layerNorm
	dim, heads         int
}

// record records MAB(q, k); q may be shared by the batch, k may not.
func (m *mab) record(r *recorder, q, k act) (act, error) {
	D, B := m.dim, r.batch
	out := act{n: q.n, d: D}
	rows := B * q.n
	newAct := func() (act, error) {
		a := out
		var err error
		a.buf, err = r.alloc(rows * D)
		return a, err
	}
	// Q' = fc_q(Q), computed once when Q is shared.
	qp := act{n: q.n, d: D, shared: q.shared}
	var err error
	if qp.buf, err = r.alloc(r.rows(q) * D); err != nil {
		return act{}, err
	}
	if err := m.fcQ.apply(r, q, r.mat(qp)); err != nil {
		return act{}, err
	}
	// K' and V' side by side in one [B*nk, 2*dim] buffer, as Attention reads
	// a key and its value from one row.
	kvRows := B * k.n
	kv, err := r.alloc(kvRows * 2 * D)
	if err != nil {
		return act{}, err
	}
	if err := m.fcK.apply(r, k, ops.Mat{Buf: kv, Off: 0, Rows: kvRows, Cols: D, Ld: 2 * D}); err != nil {
		return act{}, err
	}
	if err := m.fcV.apply(r, k, ops.Mat{Buf: kv, Off: D, Rows: kvRows, Cols: D, Ld: 2 * D}); err != nil {
		return act{}, err
	}
	// A V' per head, scaled by the full width.
	av, err := newAct()
	if err != nil {
		return act{}, err
	}
	qStride := q.n * D
	if qp.shared {
		qStride = 0
	}
	err = r.o.Attention(r.seq, ops.AttnArgs{
		Q: r.mat(qp), QBatchStride: qStride,
		Sources: []ops.KVSource{{KV: ops.Dense(kv, 0, kvRows, 2*D), BatchStride: k.n * 2 * D, KOff: 0, VOff: D, NK: k.n}},
		Batch:   B, NQ: q.n, Heads: m.heads, DimHead: D / m.heads,
		Scale: float32(1 / math.Sqrt(float64(D))),
		Out:   r.mat(av),
	}, r.scratch)
	if err != nil {
		return act{}, err
	}
	// O = Q' + A V' (Q' repeated over the batch when shared).
	o, err := newAct()
	if err != nil {
		return act{}, err
	}
	if err := r.o.Add(r.seq, r.mat(qp), r.mat(av), r.mat(o), false); err != nil {
		return act{}, err
	}
	if o, err = m.norm(r, m.ln0, o); err != nil {
		return act{}, err
	}
	// O = O + relu(fc_o(O)).
	f, err := newAct()
	if err != nil {
		return act{}, err
	}
	if err := m.fcO.apply(r, o, r.mat(f)); err != nil {
		return act{}, err
	}
	o2, err := newAct()
	if err != nil {
		return act{}, err
	}
	if err := r.o.Add(r.seq, r.mat(o), r.mat(f), r.mat(o2), true); err != nil {
		return act{}, err
	}
	return m.norm(r, m.ln1, o2)
}

// norm applies ln when the block has it.
func (m *mab) norm(r *recorder, ln *layerNorm, x act) (act, error) {
	if ln == nil {
		return x, nil
	}
	y := x
	var err error
	if y.buf, err = r.alloc(r.rows(x) * x.d); err != nil {
		return act{}, err
	}
	w, b := ops.Dense(ln.w, 0, 1, x.d), ops.Dense(ln.b, 0, 1, x.d)
	return y, r.o.LayerNorm(r.seq, r.mat(x), r.mat(y), w, b, LayerNormEps)
}

// isabBlock is ISAB(X) = mab1(X, mab0(I, X)).
type isabBlock struct {
	inds       *vk.Buffer
	m          int
	mab0, mab1 *mab
}

func (b *isabBlock) record(r *recorder, x act) (act, error) {
	h, err := b.mab0.record(r, act{buf: b.inds, n: b.m, d: b.mab0.dim, shared: true}, x)
	if err != nil {
		return act{}, err
	}
	return b.mab1.record(r, x, h)
}

// sabBlock is SAB(X) = mab(X, X).
type sabBlock struct{ mab *mab }

func (b *sabBlock) record(r *recorder, x act) (act, error) { return b.mab.record(r, x, x) }

// pmaBlock is PMA(X) = mab(S, X).
type pmaBlock struct {
	seeds *vk.Buffer
	k     int
	mab   *mab
}

func (b *pmaBlock) record(r *recorder, x act) (act, error) {
	return b.mab.record(r, act{buf: b.seeds, n: b.k, d: b.mab.dim, shared: true}, x)
}

// Forward runs the model on x [batch, n, DimIn] and returns its output
// [batch, OutRows(n), DimOut] on the device; the caller frees it.
func (m *Model) Forward(ctx context.Context, x *isab.Tensor) (*isab.Tensor, error) {
	cfg := m.cfg
	if x == nil {
		return nil, errors.New("settransformer: x is nil")
	}
	if x.Device() != m.dev {
		return nil, errors.New("settransformer: x lives on another device than the model")
	}
	if x.Kind() != isab.Float32 {
		return nil, errors.New("settransformer: x must be a float32 tensor, not a mask")
	}
	s := x.Shape()
	if len(s) != 3 || s[2] != cfg.DimIn {
		return nil, fmt.Errorf("settransformer: x has shape %s, want [batch, n, %d]", shapeString(s), cfg.DimIn)
	}
	B, N := s[0], s[1]
	widest := max(N, cfg.NumInds, cfg.NumSeeds)
	if int64(B)*int64(widest)*int64(2*max(cfg.Dim, cfg.DimIn)) > math.MaxInt32 {
		return nil, fmt.Errorf("settransformer: batch %d x n %d is too large for one pass; split the batch", B, N)
	}
	seq := m.dev.NewSequence()
	defer seq.Close()
	r := &recorder{o: m.ops, dev: m.dev, seq: seq, batch: B}
	defer func() {
		for _, t := range r.temps {
			t.Free()
		}
	}()
	a := act{buf: x.Buffer(), n: N, d: cfg.DimIn}
	for i, b := range m.blocks {
		var err error
		if a, err = b.record(r, a); err != nil {
			return nil, fmt.Errorf("settransformer: recording block %d of the forward pass: %w", i, err)
		}
	}
	if err := seq.Run(ctx); err != nil {
		return nil, fmt.Errorf("settransformer: running the forward pass: %w", err)
	}
	// The last activation becomes the result instead of a temporary.
	for i, t := range r.temps {
		if t == a.buf {
			r.temps = append(r.temps[:i], r.temps[i+1:]...)
			break
		}
	}
	out, err := isab.WrapBuffer(m.dev, a.buf, B, a.n, a.d)
	if err != nil {
		a.buf.Free()
		return nil, err
	}
	return out, nil
}

// ForwardHost uploads x [batch, n, DimIn] (shape holds those three
// numbers), runs Forward and reads the output back, with its shape.
func (m *Model) ForwardHost(ctx context.Context, x []float32, shape []int) ([]float32, []int, error) {
	xt, err := isab.NewTensor(m.dev, x, shape...)
	if err != nil {
		return nil, nil, fmt.Errorf("settransformer: x: %w", err)
	}
	defer xt.Free()
	out, err := m.Forward(ctx, xt)
	if err != nil {
		return nil, nil, err
	}
	defer out.Free()
	v, err := out.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("settransformer: reading the output: %w", err)
	}
	return v, out.Shape(), nil
}
