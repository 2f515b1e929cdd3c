package view

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/isab-vk/isab-vk/mixture"
	"github.com/isab-vk/isab-vk/ops"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/settransformer"
	"github.com/isab-vk/isab-vk/vk"
)

// Model is the clustering Set Transformer of examples/clustering (two ISABs,
// a PMA, two SABs and a Linear head) on a Vulkan device: the engine's own
// modules (package settransformer) and kernels (package ops) compute both
// the predicted mixture and the attention maps that the viewer draws.
//
// The fused attention kernel never stores the attention probabilities, so
// the model runs as five settransformer modules loaded from the state_dict's
// prefixes (enc.0, enc.1, dec.0, dec.1, dec.2), which gives it the PMA's
// input, and records the rest itself: the head Linear (dec.3), and for the
// first ISAB's inducing points and the PMA's seeds the probabilities
// softmax(Q'_h K'_h^T / sqrt(dim)) of every head, with Linear for the
// projections and the scores and Softmax for the rows.
type Model struct {
	Heads   int
	Dim     int
	NumInds int
	Seeds   int

	dev      *vk.Device
	ops      *ops.Ops
	stages   []*settransformer.Model // enc.0, enc.1, dec.0, dec.1, dec.2
	isab     queryAttn               // enc.0.mab0: I over the points
	pma      queryAttn               // dec.0.mab: S over the encoded points
	head     linear                  // dec.3
	weights  []*vk.Buffer
	scaleInv float32
}

// linear is a Linear layer's weight [out, in] and bias [out] on the device.
type linear struct {
	w, b    *vk.Buffer
	in, out int
}

// queryAttn is what one MAB with learned queries (an ISAB's inducing points
// or a PMA's seeds) needs for its attention probabilities.
type queryAttn struct {
	q        *vk.Buffer // the queries [nq, dim]
	nq       int
	fcQ, fcK linear
}

// Mixture is a predicted (or true) 2-D diagonal Gaussian mixture.
type Mixture = mixture.Mixture

// Prediction is one forward pass on the device: the mixture, and the
// attention probabilities of the first ISAB's inducing points over the
// points (ISAB[h][i][j] for head h, inducing point i, point j) and of the
// PMA's seeds over the points (PMA[h][s][j]).
type Prediction struct {
	Mixture Mixture
	ISAB    [][][]float64
	PMA     [][][]float64
}

// stagePrefixes are the settransformer modules the model runs as, in
// order, with their kinds.
var stagePrefixes = []struct{ prefix, kind string }{
	{"enc.0.", settransformer.KindISAB},
	{"enc.1.", settransformer.KindISAB},
	{"dec.0.", settransformer.KindPMA},
	{"dec.1.", settransformer.KindSAB},
	{"dec.2.", settransformer.KindSAB},
}

// LoadModel reads the clustering model's weights
// (examples/clustering/weights.safetensors) and uploads them to dev. The
// number of heads comes from the file's metadata "heads", else 4. Close
// frees the model's device memory.
func LoadModel(dev *vk.Device, path string) (*Model, error) {
	if dev == nil {
		return nil, errors.New("view: nil device")
	}
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("view: %w", err)
	}
	m := &Model{Heads: 4, dev: dev}
	if err := m.load(f); err != nil {
		m.Close()
		return nil, fmt.Errorf("view: %s: %w", path, err)
	}
	return m, nil
}

// load fills m from the parsed weights.
func (m *Model) load(f *safetensors.File) error {
	if h, ok, err := safetensors.MetaInt(f.Metadata, "heads"); err != nil || (ok && h < 1) {
		return fmt.Errorf("bad heads metadata %q", f.Metadata["heads"])
	} else if ok {
		m.Heads = h
	}
	for _, k := range []string{"enc.0.I", "dec.0.S"} {
		if t, ok := f.Get(k); !ok || len(t.Shape) != 3 || t.Shape[0] != 1 || t.Shape[1] < 1 || t.Shape[2] < 1 {
			return fmt.Errorf("%s missing or not [1, n, dim]", k)
		}
	}
	I, S := f.Tensors["enc.0.I"].Shape, f.Tensors["dec.0.S"].Shape
	m.Dim, m.NumInds, m.Seeds = I[2], I[1], S[1]
	if m.Dim%m.Heads != 0 {
		return fmt.Errorf("dim %d not divisible by %d heads", m.Dim, m.Heads)
	}
	m.scaleInv = float32(1 / math.Sqrt(float64(m.Dim)))
	if err := checkKeys(f); err != nil {
		return err
	}
	for _, s := range stagePrefixes {
		st, err := settransformer.LoadFile(m.dev, subFile(f, s.prefix), settransformer.Options{Kind: s.kind, Heads: m.Heads})
		if err != nil {
			return fmt.Errorf("%s*: %w", s.prefix, err)
		}
		m.stages = append(m.stages, st)
	}
	var err error
	if m.isab, err = m.queryAttn(f, "enc.0.I", "enc.0.mab0.", 2); err != nil {
		return err
	}
	if m.pma, err = m.queryAttn(f, "dec.0.S", "dec.0.mab.", m.Dim); err != nil {
		return err
	}
	if m.head, err = m.linear(f, headPrefix, m.Dim, mixture.Params); err != nil {
		return err
	}
	if m.ops, err = ops.New(m.dev); err != nil {
		return err
	}
	return nil
}

// headPrefix is the key prefix of the model's head, the Linear dec.3.
const headPrefix = "dec.3."

// checkKeys refuses a key that belongs to none of the model's modules, as
// settransformer.Load does for the whole model.
func checkKeys(f *safetensors.File) error {
	for _, name := range f.Names() {
		ok := strings.HasPrefix(name, headPrefix)
		for _, s := range stagePrefixes {
			ok = ok || strings.HasPrefix(name, s.prefix)
		}
		if !ok {
			return fmt.Errorf("unexpected key %q (not a key of the clustering model)", name)
		}
	}
	return nil
}

// subFile is the part of f under prefix, with the prefix taken off the
// keys: the state_dict of one of the model's modules. Only the metadata
// that holds for every module (heads, ln) goes with it.
func subFile(f *safetensors.File, prefix string) *safetensors.File {
	sub := &safetensors.File{Metadata: map[string]string{}, Tensors: map[string]*safetensors.Tensor{}}
	for _, k := range []string{"heads", "ln"} {
		if v, ok := f.Metadata[k]; ok {
			sub.Metadata[k] = v
		}
	}
	for name, t := range f.Tensors {
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			sub.Tensors[rest] = t
		}
	}
	return sub
}

// upload copies the tensor name, which must have the given shape, to the
// device as float32.
func (m *Model) upload(f *safetensors.File, name string, shape ...int) (*vk.Buffer, error) {
	t, ok := f.Get(name)
	if !ok {
		return nil, fmt.Errorf("%s missing", name)
	}
	if !slices.Equal(t.Shape, shape) {
		return nil, fmt.Errorf("%s has shape %v, want %v", name, t.Shape, shape)
	}
	v, err := t.Float32()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	b, err := vk.BufferFrom(m.dev, v)
	if err != nil {
		return nil, fmt.Errorf("uploading %s: %w", name, err)
	}
	m.weights = append(m.weights, b)
	return b, nil
}

// linear uploads the Linear layer prefix+weight [out, in] and prefix+bias.
func (m *Model) linear(f *safetensors.File, prefix string, in, out int) (linear, error) {
	l := linear{in: in, out: out}
	var err error
	if l.w, err = m.upload(f, prefix+"weight", out, in); err != nil {
		return l, err
	}
	l.b, err = m.upload(f, prefix+"bias", out)
	return l, err
}

// queryAttn uploads the queries (I or S) and fc_q, fc_k of the MAB mab,
// whose keys have dimK features.
func (m *Model) queryAttn(f *safetensors.File, queries, mab string, dimK int) (queryAttn, error) {
	a := queryAttn{nq: f.Tensors[queries].Shape[1]}
	var err error
	if a.q, err = m.upload(f, queries, 1, a.nq, m.Dim); err != nil {
		return a, err
	}
	if a.fcQ, err = m.linear(f, mab+"fc_q.", m.Dim, m.Dim); err != nil {
		return a, err
	}
	a.fcK, err = m.linear(f, mab+"fc_k.", dimK, m.Dim)
	return a, err
}

// Close frees the model's device memory.
func (m *Model) Close() {
	for _, s := range m.stages {
		s.Close()
	}
	m.stages = nil
	for _, b := range m.weights {
		b.Free()
	}
	m.weights = nil
	if m.ops != nil {
		m.ops.Close()
		m.ops = nil
	}
}
