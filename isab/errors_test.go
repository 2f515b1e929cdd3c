package isab

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

// smallConfig is a tiny block for error and stress tests.
var smallConfig = Config{Dim: 8, Heads: 2, DimHead: 4, NumLatents: 3}

func weightTensors(cfg Config, w *Weights) []*safetensors.Tensor {
	d, i := cfg.Dim, cfg.Inner()
	var ts []*safetensors.Tensor
	if w.Latents != nil {
		ts = append(ts, safetensors.NewF32("latents", []int{cfg.NumLatents, d}, w.Latents))
	}
	for li, a := range []AttentionWeights{w.Attn1, w.Attn2} {
		q, kv, out := attnKeys([]string{"attn1", "attn2"}[li])
		ts = append(ts,
			safetensors.NewF32(q, []int{i, d}, a.Q),
			safetensors.NewF32(kv, []int{2 * i, d}, a.KV),
			safetensors.NewF32(out, []int{d, i}, a.Out))
	}
	return ts
}

func writeWeights(t *testing.T, ts []*safetensors.Tensor, meta map[string]string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "w.safetensors")
	if err := safetensors.WriteFile(p, ts, meta); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadErrors(t *testing.T) {
	dev := testutil.Device(t)
	cfg := smallConfig
	w := RandomWeights(cfg, 3)
	meta := map[string]string{"heads": "2", "dim_head": "4"}
	good := weightTensors(cfg, w)
	drop := func(name string) []*safetensors.Tensor {
		var out []*safetensors.Tensor
		for _, t := range good {
			if t.Name != name {
				out = append(out, t)
			}
		}
		return out
	}
	reshaped := func(name string, shape []int) []*safetensors.Tensor {
		out := drop(name)
		for _, t := range good {
			if t.Name == name {
				c := *t
				c.Shape = shape
				out = append(out, &c)
			}
		}
		return out
	}
	extra := append(drop(""), safetensors.NewF32("attn3.to_q.weight", []int{1}, []float32{1}))
	cases := []struct {
		name  string
		ts    []*safetensors.Tensor
		meta  map[string]string
		opts  Options
		wants string
	}{
		{"missing key", drop("attn2.to_kv.weight"), meta, Options{}, `"attn2.to_kv.weight"`},
		{"unexpected key", extra, meta, Options{}, "attn3.to_q.weight"},
		{"mis-shaped key", reshaped("attn1.to_out.weight", []int{8, 4, 2}), meta, Options{}, "attn1.to_out.weight"},
		{"mis-shaped latents", reshaped("latents", []int{4, 6}), meta, Options{}, "latents"},
		{"heads do not divide", good, map[string]string{"heads": "3"}, Options{}, "heads 3"},
		{"bad metadata", good, map[string]string{"heads": "two"}, Options{}, "heads"},
		{"negative option", good, meta, Options{Heads: -1}, "positive"},
		{"metadata dim disagrees", good, map[string]string{"heads": "2", "dim": "9"}, Options{}, "dim"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(dev, writeWeights(t, c.ts, c.meta), c.opts)
			if err == nil || !strings.Contains(err.Error(), c.wants) {
				t.Fatalf("got %v, want an error naming %s", err, c.wants)
			}
		})
	}
	t.Run("options win over metadata", func(t *testing.T) {
		m, err := Load(dev, writeWeights(t, good, map[string]string{"heads": "1", "latent_self_attend": "true"}),
			Options{Heads: 2, LatentSelfAttend: Bool(false)})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if c := m.Config(); c.Heads != 2 || c.DimHead != 4 || c.LatentSelfAttend {
			t.Fatalf("config %v", c)
		}
	})
	for _, bad := range []struct{ name, content string }{
		{"empty", ""},
		{"truncated", "\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":"},
		{"header past end", "\xff\x00\x00\x00\x00\x00\x00\x00{}"},
		{"not json", "\x04\x00\x00\x00\x00\x00\x00\x00abcd"},
		{"unknown dtype", "\x40\x00\x00\x00\x00\x00\x00\x00{\"x\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}    \x00\x00\x00\x00"},
		{"offsets outside data", "\x40\x00\x00\x00\x00\x00\x00\x00{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}    \x00\x00\x00\x00"},
	} {
		t.Run("file "+bad.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad.safetensors")
			os.WriteFile(p, []byte(bad.content), 0o644)
			if _, err := Load(dev, p, Options{}); err == nil {
				t.Fatal("loaded a bad file")
			}
			if _, err := ReadInput(p); err == nil {
				t.Fatal("read a bad input file")
			}
		})
	}
	if _, err := Load(dev, filepath.Join(t.TempDir(), "absent.safetensors"), Options{}); err == nil {
		t.Fatal("loaded a missing file")
	}
}

func TestForwardErrors(t *testing.T) {
	dev := testutil.Device(t)
	cfg := smallConfig
	m, err := New(dev, cfg, RandomWeights(cfg, 4))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	extCfg := cfg
	extCfg.NumLatents = 0
	ext, err := New(dev, extCfg, RandomWeights(extCfg, 4))
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()
	mk := func(shape ...int) *Tensor {
		x, err := NewTensor(dev, make([]float32, numel(shape)), shape...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(x.Free)
		return x
	}
	mask := func(shape ...int) *Tensor {
		x, err := NewMask(dev, make([]bool, numel(shape)), shape...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(x.Free)
		return x
	}
	x := mk(2, 5, 8)
	ctx := context.Background()
	cases := []struct {
		name  string
		model *Model
		x     *Tensor
		opts  []ForwardOption
		wants string
	}{
		{"x rank", m, mk(5, 8), nil, "x has shape [5, 8]"},
		{"x dim", m, mk(2, 5, 7), nil, "x has shape [2, 5, 7]"},
		{"x is a mask", m, mask(2, 5, 8), nil, "float32"},
		{"mask shape", m, x, []ForwardOption{WithMask(mask(2, 4))}, "mask has shape [2, 4]"},
		{"mask kind", m, x, []ForwardOption{WithMask(mk(2, 5))}, "mask tensor"},
		{"latents to a learned model", m, x, []ForwardOption{WithLatents(mk(3, 8))}, "learns its latents"},
		{"no latents", ext, x, nil, "WithLatents"},
		{"latents shape", ext, x, []ForwardOption{WithLatents(mk(3, 7))}, "latents have shape [3, 7]"},
		{"latents batch", ext, x, []ForwardOption{WithLatents(mk(3, 3, 8))}, "latents have shape [3, 3, 8]"},
		{"nil x", m, nil, nil, "nil"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := c.model.Forward(ctx, c.x, c.opts...)
			if err == nil || !strings.Contains(err.Error(), c.wants) {
				t.Fatalf("got %v, want an error containing %q", err, c.wants)
			}
		})
	}
	t.Run("zero-size dimension", func(t *testing.T) {
		if _, err := NewTensor(dev, nil, 1, 0, 8); err == nil || !strings.Contains(err.Error(), "at least 1") {
			t.Fatalf("got %v", err)
		}
		if _, err := NewTensor(dev, make([]float32, 3), 1, 2, 2); err == nil {
			t.Fatal("length mismatch accepted")
		}
	})
}

func TestInputErrors(t *testing.T) {
	write := func(t *testing.T, ts ...*safetensors.Tensor) string {
		p := filepath.Join(t.TempDir(), "in.safetensors")
		if err := safetensors.WriteFile(p, ts, nil); err != nil {
			t.Fatal(err)
		}
		return p
	}
	x := safetensors.NewF32("x", []int{1, 2, 3}, make([]float32, 6))
	i32 := &safetensors.Tensor{Name: "x", DType: safetensors.I32, Shape: []int{1, 2, 3}, Data: make([]byte, 24)}
	cases := []struct {
		name  string
		ts    []*safetensors.Tensor
		wants string
	}{
		{"no x", []*safetensors.Tensor{safetensors.NewF32("y", []int{1}, []float32{1})}, "unexpected"},
		{"missing x", []*safetensors.Tensor{safetensors.NewBool("mask", []int{1, 2}, []bool{true, true})}, `no tensor "x"`},
		{"x rank", []*safetensors.Tensor{safetensors.NewF32("x", []int{2, 3}, make([]float32, 6))}, "[batch, n, dim]"},
		{"x zero dim", []*safetensors.Tensor{safetensors.NewF32("x", []int{1, 0, 3}, nil)}, "at least 1"},
		{"x dtype", []*safetensors.Tensor{i32}, "dtype I32"},
		{"mask shape", []*safetensors.Tensor{x, safetensors.NewBool("mask", []int{1, 3}, make([]bool, 3))}, "mask has shape [1, 3]"},
		{"mask dtype", []*safetensors.Tensor{x, safetensors.NewF32("mask", []int{1, 2}, make([]float32, 2))}, "mask has dtype F32"},
		{"latents rank", []*safetensors.Tensor{x, safetensors.NewF32("latents", []int{6}, make([]float32, 6))}, "latents have shape [6]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadInput(write(t, c.ts...))
			if err == nil || !strings.Contains(err.Error(), c.wants) {
				t.Fatalf("got %v, want an error containing %q", err, c.wants)
			}
		})
	}
}

func TestTooLargeForDevice(t *testing.T) {
	dev := testutil.Device(t)
	cfg := Config{Dim: 64, Heads: 1, DimHead: 64, NumLatents: 2}
	m, err := New(dev, cfg, RandomWeights(cfg, 5))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// A tensor bigger than the device's memory fails cleanly on upload...
	n := int(dev.Info().DeviceMemory/4/64) + 1024
	if n > 1<<31/64 {
		t.Skipf("device memory %d too large to exceed in a test", dev.Info().DeviceMemory)
	}
	_, err = NewTensor(dev, make([]float32, n*64), 1, n, 64)
	if !errors.Is(err, vk.ErrOutOfMemory) {
		t.Fatalf("got %v, want ErrOutOfMemory", err)
	}
}
