package isab

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/isab-vk/isab-vk/safetensors"
)

// Input is one forward pass's inputs on the host, as an input safetensors
// file holds them: x [batch, n, dim], an optional mask [batch, n] and
// optional latents [m, dim] or [batch, m, dim].
type Input struct {
	X            []float32
	XShape       []int
	Mask         []bool // nil when absent
	Latents      []float32
	LatentsShape []int // nil when absent
}

// ReadInput reads an input file. x may be stored as F32, F16, BF16 or F64;
// the mask as BOOL or U8 (nonzero = keep). Any other tensor is an error.
func ReadInput(path string) (*Input, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("isab: reading input: %w", err)
	}
	in, err := InputFromFile(f)
	if err != nil {
		return nil, fmt.Errorf("%w (input %s)", err, path)
	}
	return in, nil
}

// InputFromFile is ReadInput for a parsed file.
func InputFromFile(f *safetensors.File) (*Input, error) {
	var extra []string
	for _, name := range f.Names() {
		if name != "x" && name != "mask" && name != "latents" {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return nil, fmt.Errorf("isab: unexpected tensor(s) in the input: %q (want x, and optionally mask and latents)", extra)
	}
	xt, ok := f.Get("x")
	if !ok {
		return nil, fmt.Errorf("isab: the input has no tensor \"x\"")
	}
	if len(xt.Shape) != 3 {
		return nil, fmt.Errorf("isab: x has shape %s, want [batch, n, dim]", shapeString(xt.Shape))
	}
	if err := checkShape("x", xt.Shape, -1); err != nil {
		return nil, err
	}
	if !xt.DType.IsFloat() {
		return nil, fmt.Errorf("isab: x has dtype %s, want F32, F16, BF16 or F64", xt.DType)
	}
	x, err := xt.Float32()
	if err != nil {
		return nil, fmt.Errorf("isab: x: %w", err)
	}
	in := &Input{X: x, XShape: append([]int(nil), xt.Shape...)}
	if mt, ok := f.Get("mask"); ok {
		if mt.DType != safetensors.BOOL && mt.DType != safetensors.U8 {
			return nil, fmt.Errorf("isab: mask has dtype %s, want BOOL or U8", mt.DType)
		}
		if !slices.Equal(mt.Shape, xt.Shape[:2]) {
			return nil, fmt.Errorf("isab: mask has shape %s, want %s to match x", shapeString(mt.Shape), shapeString(xt.Shape[:2]))
		}
		if in.Mask, err = mt.Bool(); err != nil {
			return nil, fmt.Errorf("isab: mask: %w", err)
		}
	}
	if lt, ok := f.Get("latents"); ok {
		if len(lt.Shape) != 2 && len(lt.Shape) != 3 {
			return nil, fmt.Errorf("isab: latents have shape %s, want [m, dim] or [batch, m, dim]", shapeString(lt.Shape))
		}
		if err := checkShape("latents", lt.Shape, -1); err != nil {
			return nil, err
		}
		if !lt.DType.IsFloat() {
			return nil, fmt.Errorf("isab: latents have dtype %s, want F32, F16, BF16 or F64", lt.DType)
		}
		if in.Latents, err = lt.Float32(); err != nil {
			return nil, fmt.Errorf("isab: latents: %w", err)
		}
		in.LatentsShape = append([]int(nil), lt.Shape...)
	}
	return in, nil
}

// ForwardHost uploads in, runs Forward and reads the results back:
// out [batch, n, dim] and latents [batch, m, dim].
func (m *Model) ForwardHost(ctx context.Context, in *Input) (out, lat []float32, err error) {
	x, err := NewTensor(m.dev, in.X, in.XShape...)
	if err != nil {
		return nil, nil, fmt.Errorf("isab: x: %w", err)
	}
	defer x.Free()
	var opts []ForwardOption
	if in.Mask != nil {
		mask, err := NewMask(m.dev, in.Mask, in.XShape[:2]...)
		if err != nil {
			return nil, nil, err
		}
		defer mask.Free()
		opts = append(opts, WithMask(mask))
	}
	if in.LatentsShape != nil {
		l, err := NewTensor(m.dev, in.Latents, in.LatentsShape...)
		if err != nil {
			return nil, nil, fmt.Errorf("isab: latents: %w", err)
		}
		defer l.Free()
		opts = append(opts, WithLatents(l))
	}
	ot, lt, err := m.Forward(ctx, x, opts...)
	if err != nil {
		return nil, nil, err
	}
	defer ot.Free()
	defer lt.Free()
	if out, err = ot.Read(); err != nil {
		return nil, nil, fmt.Errorf("isab: reading out: %w", err)
	}
	if lat, err = lt.Read(); err != nil {
		return nil, nil, fmt.Errorf("isab: reading latents: %w", err)
	}
	return out, lat, nil
}

// WriteOutput writes out [batch, n, dim] and latents [batch, m, dim] as F32
// tensors named "out" and "latents", the layout of the golden expected files.
func WriteOutput(path string, out []float32, outShape []int, lat []float32, latShape []int) error {
	ts := []*safetensors.Tensor{
		safetensors.NewF32("out", outShape, out),
		safetensors.NewF32("latents", latShape, lat),
	}
	if err := safetensors.WriteFile(path, ts, nil); err != nil {
		return fmt.Errorf("isab: writing output: %w", err)
	}
	return nil
}
