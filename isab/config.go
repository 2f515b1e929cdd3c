// Package isab runs the Induced Set Attention Block (ISAB) of the Set
// Transformer with the exact semantics of the isab-pytorch package, on any
// Vulkan device through package vk.
//
//	latents' = Attention1(query = latents, context = x [or concat(latents, x)], key mask)
//	out      = Attention2(query = x, context = latents')
//
// Weights come from a safetensors file holding the PyTorch state_dict()
// under its own keys; tensors stay on the device between calls, so the
// latents of one block can feed the next without a round trip.
package isab

import (
	"fmt"
	"math"
	"strconv"

	"github.com/isab-vk/isab-vk/internal/checked"
	"github.com/isab-vk/isab-vk/safetensors"
)

// DefaultDimHead is isab-pytorch's default width of one attention head.
const DefaultDimHead = 64

// Config is the shape of an ISAB block.
type Config struct {
	Dim              int  // model width
	Heads            int  // attention heads
	DimHead          int  // width of one head; inner width is Heads*DimHead
	NumLatents       int  // learned latents (inducing points); 0 when they are passed in
	LatentSelfAttend bool // attn1's context is concat(latents, x)
}

// Inner is the attention width Heads*DimHead. It is meaningful only for a
// configuration that Validate accepts.
func (c Config) Inner() int { return c.Heads * c.DimHead }

// maxIndex bounds every width and weight matrix: the kernels index with
// 32-bit integers.
const maxIndex = math.MaxInt32

// Validate checks that every field is positive (NumLatents may be 0) and
// that the widths and weight matrices they make fit the kernels' 32-bit
// indices, with no product overflowing on the way.
func (c Config) Validate() error {
	if c.Dim <= 0 || c.Heads <= 0 || c.DimHead <= 0 || c.NumLatents < 0 {
		return fmt.Errorf("isab: invalid configuration %v: dim, heads and dim_head must be positive", c)
	}
	inner, ok := checked.Mul(c.Heads, c.DimHead)
	if !ok || inner > maxIndex {
		return fmt.Errorf("isab: heads %d x dim_head %d overflows the largest supported inner width %d", c.Heads, c.DimHead, maxIndex)
	}
	for _, w := range []struct {
		name       string
		rows, cols int
	}{{"to_kv.weight", 2 * inner, c.Dim}, {"latents", c.NumLatents, c.Dim}} {
		if n, ok := checked.Mul(w.rows, w.cols); !ok || n > maxIndex {
			return fmt.Errorf("isab: %v: %s would be [%d, %d], more than %d elements", c, w.name, w.rows, w.cols, maxIndex)
		}
	}
	return nil
}

// String formats the configuration for messages.
func (c Config) String() string {
	lat := "external"
	if c.NumLatents > 0 {
		lat = strconv.Itoa(c.NumLatents)
	}
	return fmt.Sprintf("dim=%d heads=%d dim_head=%d latents=%s latent_self_attend=%v",
		c.Dim, c.Heads, c.DimHead, lat, c.LatentSelfAttend)
}

// Options supply the configuration that weights cannot show. A zero field
// means "from the weights' __metadata__, else the default"; a set field wins
// over the metadata.
type Options struct {
	Heads   int // number of heads
	DimHead int // width of one head (isab-pytorch's default is 64)
	// LatentSelfAttend, when non-nil, says whether attn1 attends over
	// concat(latents, x). Without it and without metadata it is false.
	LatentSelfAttend *bool
	// Precision is the number format on the device; "" means FP32. Load
	// and LoadFile honour it (see NewWithPrecision and Model.Precision).
	Precision Precision
}

// Precision is the number format of a model's weights and intermediate
// results on the device. Inputs and outputs are float32 either way.
type Precision string

// The precisions. FP16 stores weights and activations as IEEE half floats
// and accumulates in float32; Auto picks FP16 where the device is expected
// to run it faster, else FP32.
const (
	FP32 Precision = "fp32"
	FP16 Precision = "fp16"
	Auto Precision = "auto"
)

// ParsePrecision parses "fp32", "fp16" or "auto".
func ParsePrecision(s string) (Precision, error) {
	switch p := Precision(s); p {
	case FP32, FP16, Auto:
		return p, nil
	}
	return "", fmt.Errorf("isab: unknown precision %q (want fp32, fp16 or auto)", s)
}

// Bool returns a pointer to v, for Options.LatentSelfAttend.
func Bool(v bool) *bool { return &v }

// metaInt reads a positive integer metadata entry; ok is false when it is
// absent or "none".
func metaInt(meta map[string]string, key string) (int, bool, error) {
	v, ok, err := safetensors.MetaInt(meta, key)
	if err == nil && ok && v == 0 {
		err = fmt.Errorf("metadata %s=0 is not a positive integer", key)
	}
	if err != nil {
		return 0, false, fmt.Errorf("isab: %w", err)
	}
	return v, ok, nil
}

func metaBool(meta map[string]string, key string) (bool, bool, error) {
	v, ok, err := safetensors.MetaBool(meta, key)
	if err != nil {
		return false, false, fmt.Errorf("isab: %w", err)
	}
	return v, ok, nil
}

// resolveConfig works out heads and dim_head from options, metadata and the
// inner width that the weights show, in that order of precedence.
func resolveConfig(meta map[string]string, opts Options, dim, inner, numLatents int) (Config, error) {
	cfg := Config{Dim: dim, NumLatents: numLatents}
	if opts.Heads < 0 || opts.DimHead < 0 {
		return cfg, fmt.Errorf("isab: heads (%d) and dim_head (%d) must be positive", opts.Heads, opts.DimHead)
	}
	heads, dh := opts.Heads, opts.DimHead
	if heads == 0 {
		v, ok, err := metaInt(meta, "heads")
		if err != nil {
			return cfg, err
		}
		if ok {
			heads = v
		}
	}
	if dh == 0 {
		v, ok, err := metaInt(meta, "dim_head")
		if err != nil {
			return cfg, err
		}
		if ok {
			dh = v
		}
	}
	switch {
	case heads == 0 && dh == 0:
		dh = DefaultDimHead
		if inner%dh != 0 {
			return cfg, fmt.Errorf("isab: the weights' inner width %d is not a multiple of the default dim_head %d; give heads or dim_head", inner, dh)
		}
		heads = inner / dh
	case heads == 0:
		if inner%dh != 0 {
			return cfg, fmt.Errorf("isab: the weights' inner width %d is not a multiple of dim_head %d", inner, dh)
		}
		heads = inner / dh
	case dh == 0:
		if inner%heads != 0 {
			return cfg, fmt.Errorf("isab: the weights' inner width %d is not a multiple of heads %d", inner, heads)
		}
		dh = inner / heads
	}
	if p, ok := checked.Mul(heads, dh); !ok {
		return cfg, fmt.Errorf("isab: heads %d x dim_head %d overflows; the weights' inner width is %d", heads, dh, inner)
	} else if p != inner {
		return cfg, fmt.Errorf("isab: heads %d x dim_head %d = %d, but the weights' inner width is %d", heads, dh, p, inner)
	}
	cfg.Heads, cfg.DimHead = heads, dh
	if opts.LatentSelfAttend != nil {
		cfg.LatentSelfAttend = *opts.LatentSelfAttend
	} else {
		v, _, err := metaBool(meta, "latent_self_attend")
		if err != nil {
			return cfg, err
		}
		cfg.LatentSelfAttend = v
	}
	if v, ok, err := metaInt(meta, "dim"); err != nil {
		return cfg, err
	} else if ok && v != dim {
		return cfg, fmt.Errorf("isab: metadata dim=%d, but the weights have dim %d", v, dim)
	}
	if v, ok, err := metaInt(meta, "num_latents"); err != nil {
		return cfg, err
	} else if ok && v != numLatents {
		return cfg, fmt.Errorf("isab: metadata num_latents=%d, but the weights hold %d latents", v, numLatents)
	}
	return cfg, cfg.Validate()
}

// FLOPs counts the floating-point operations of one forward pass over x
// [batch, n, dim] with m latents, as the PyTorch module performs them
// (latents expanded over the batch; a multiply-add counts as two).
func (c Config) FLOPs(batch, n, m int) float64 {
	b, nf, mf := float64(batch), float64(n), float64(m)
	d, i := float64(c.Dim), float64(c.Inner())
	ctx := nf
	if c.LatentSelfAttend {
		ctx += mf
	}
	return 2 * b * (mf*d*i + // q1
		ctx*d*2*i + // kv1
		2*mf*ctx*i + // attn1: q k^T and attention x v
		mf*i*d + // out1
		nf*d*i + // q2
		mf*d*2*i + // kv2
		2*nf*mf*i + // attn2
		nf*i*d) // out2
}
