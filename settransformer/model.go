package settransformer

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/isab-vk/isab-vk/internal/record"
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
		return []block{e0, e1, d0, d1, d2, &linearBlock{d3}}, nil
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

// block is one module of a model.
type block interface {
	// forward records the module on x and returns its output.
	forward(r *record.Recorder, x record.Act) record.Act
}

// linearBlock is a Linear module (the model's last).
type linearBlock struct{ l record.Linear }

func (b *linearBlock) forward(r *record.Recorder, x record.Act) record.Act { return r.Linear(x, b.l) }

// mab is the multihead attention block MAB(Q, K).
type mab struct {
	fcQ, fcK, fcV, fcO record.Linear
	ln0, ln1           *record.LayerNorm
	dim, heads         int
}

// forward records MAB(q, k), as the authors' MAB.forward; q may be shared
// by the batch, k may not.
func (m *mab) forward(r *record.Recorder, q, k record.Act) record.Act {
	D := m.dim
	qp := r.Linear(q, m.fcQ) // Q' = fc_q(Q), computed once when Q is shared
	// K' = fc_k(K) and V' = fc_v(K) side by side, as Attention reads a key
	// and its value from one row.
	kv := r.Alloc(k.N, 2*D, false)
	r.LinearInto(k, m.fcK, kv.Cols(0, D))
	r.LinearInto(k, m.fcV, kv.Cols(D, D))
	// A V' per head, scaled by the full width.
	av := r.Attention(qp, record.Heads{Heads: m.heads, DimHead: D / m.heads, Scale: float32(1 / math.Sqrt(float64(D)))}, record.Keys(kv))
	o := m.norm(r, m.ln0, r.Add(qp, av, false))                 // O = ln0(Q' + A V'), Q' repeated over the batch when shared
	return m.norm(r, m.ln1, r.Add(o, r.Linear(o, m.fcO), true)) // O = ln1(O + relu(fc_o(O)))
}

// norm applies ln when the block has it.
func (m *mab) norm(r *record.Recorder, ln *record.LayerNorm, x record.Act) record.Act {
	if ln == nil {
		return x
	}
	return r.LayerNorm(x, *ln)
}

// isabBlock is ISAB(X) = mab1(X, mab0(I, X)).
type isabBlock struct {
	inds       *vk.Buffer
	m          int
	mab0, mab1 *mab
}

func (b *isabBlock) forward(r *record.Recorder, x record.Act) record.Act {
	h := b.mab0.forward(r, record.Shared(b.inds, b.m, b.mab0.dim, false), x)
	return b.mab1.forward(r, x, h)
}

// sabBlock is SAB(X) = mab(X, X).
type sabBlock struct{ mab *mab }

func (b *sabBlock) forward(r *record.Recorder, x record.Act) record.Act {
	return b.mab.forward(r, x, x)
}

// pmaBlock is PMA(X) = mab(S, X).
type pmaBlock struct {
	seeds *vk.Buffer
	k     int
	mab   *mab
}

func (b *pmaBlock) forward(r *record.Recorder, x record.Act) record.Act {
	return b.mab.forward(r, record.Shared(b.seeds, b.k, b.mab.dim, false), x)
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
	r := record.New(m.ops, B, false)
	defer r.Close()
	a := record.Batched(x.Buffer(), N, cfg.DimIn, false)
	for i, b := range m.blocks {
		a = b.forward(r, a)
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("settransformer: recording block %d of the forward pass: %w", i, err)
		}
	}
	if err := r.Seq().Run(ctx); err != nil {
		return nil, fmt.Errorf("settransformer: running the forward pass: %w", err)
	}
	// The last activation becomes the result instead of a temporary.
	r.Release(a)
	out, err := isab.WrapBuffer(m.dev, a.Buf, B, a.N, a.D)
	if err != nil {
		a.Buf.Free()
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
