package isab

import (
	"fmt"

	"github.com/isab-vk/isab-vk/internal/record"
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
	attn    [2]attention
	half    bool // weights and intermediates are IEEE half floats (FP16)
}

// attention is the weights of one of isab-pytorch's Attention modules:
// to_q [inner, dim], to_kv [2*inner, dim] and to_out [dim, inner], none
// with a bias.
type attention struct{ toQ, toKV, toOut record.Linear }

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
	D, I := cfg.Dim, cfg.Inner()
	for i, a := range []AttentionWeights{w.Attn1, w.Attn2} {
		var err error
		b := &m.attn[i]
		b.toQ = record.Linear{In: D, Out: I}
		b.toKV = record.Linear{In: D, Out: 2 * I}
		b.toOut = record.Linear{In: I, Out: D}
		if b.toQ.W, err = upload(a.Q); err == nil {
			if b.toKV.W, err = upload(a.KV); err == nil {
				b.toOut.W, err = upload(a.Out)
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
		a.toQ.W.Free()
		a.toKV.W.Free()
		a.toOut.W.Free()
	}
	if m.ops != nil {
		m.ops.Close()
	}
}
