package isab

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/isab-vk/isab-vk/safetensors"
)

// AttentionWeights are one attention layer's matrices in PyTorch's Linear
// layout [out, in], flattened row-major. There are no biases.
type AttentionWeights struct {
	Q   []float32 // to_q.weight [inner, dim]
	KV  []float32 // to_kv.weight [2*inner, dim]: keys are the first inner rows
	Out []float32 // to_out.weight [dim, inner]
}

// Weights are an ISAB block's parameters on the host.
type Weights struct {
	Latents []float32 // [NumLatents, Dim], nil when latents are passed in
	Attn1   AttentionWeights
	Attn2   AttentionWeights
}

// Weight keys as PyTorch names them in ISAB.state_dict().
const (
	keyLatents = "latents"
)

func attnKeys(layer string) (q, kv, out string) {
	return layer + ".to_q.weight", layer + ".to_kv.weight", layer + ".to_out.weight"
}

// check validates the weights' sizes against cfg.
func (w *Weights) check(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if w == nil {
		return fmt.Errorf("isab: no weights for %v", cfg)
	}
	inner := cfg.Inner()
	if want := cfg.NumLatents * cfg.Dim; len(w.Latents) != want {
		return fmt.Errorf("isab: latents hold %d values, want %d (%d x %d)", len(w.Latents), want, cfg.NumLatents, cfg.Dim)
	}
	for i, a := range []AttentionWeights{w.Attn1, w.Attn2} {
		layer := fmt.Sprintf("attn%d", i+1)
		q, kv, out := attnKeys(layer)
		for _, c := range []struct {
			key       string
			got, rows int
		}{{q, len(a.Q), inner}, {kv, len(a.KV), 2 * inner}, {out, len(a.Out), cfg.Dim}} {
			cols := cfg.Dim
			if c.key == out {
				cols = inner
			}
			if c.got != c.rows*cols {
				return fmt.Errorf("isab: %s holds %d values, want [%d, %d]", c.key, c.got, c.rows, cols)
			}
		}
	}
	return nil
}

func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmt.Sprint(v)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// weightsFromFile reads an ISAB state_dict and works out the configuration.
// A missing, unexpected or mis-shaped key is an error that names it.
func weightsFromFile(f *safetensors.File, opts Options) (Config, *Weights, error) {
	q1, kv1, out1 := attnKeys("attn1")
	q2, kv2, out2 := attnKeys("attn2")
	required := []string{q1, kv1, out1, q2, kv2, out2}
	known := map[string]bool{keyLatents: true}
	for _, k := range required {
		known[k] = true
		if _, ok := f.Get(k); !ok {
			return Config{}, nil, fmt.Errorf("isab: weights lack the key %q", k)
		}
	}
	var extra []string
	for _, name := range f.Names() {
		if !known[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return Config{}, nil, fmt.Errorf("isab: unexpected key(s) in the weights: %q", extra)
	}
	qt, _ := f.Get(q1)
	if len(qt.Shape) != 2 || qt.Shape[0] == 0 || qt.Shape[1] == 0 {
		return Config{}, nil, fmt.Errorf("isab: %s has shape %s, want [inner, dim] with both positive", q1, shapeString(qt.Shape))
	}
	inner, dim := qt.Shape[0], qt.Shape[1]
	numLatents := 0
	if lt, ok := f.Get(keyLatents); ok {
		if len(lt.Shape) != 2 || lt.Shape[0] == 0 || lt.Shape[1] != dim {
			return Config{}, nil, fmt.Errorf("isab: latents has shape %s, want [num_latents, %d]", shapeString(lt.Shape), dim)
		}
		numLatents = lt.Shape[0]
	}
	cfg, err := resolveConfig(f.Metadata, opts, dim, inner, numLatents)
	if err != nil {
		return Config{}, nil, err
	}
	want := map[string][]int{
		q1: {inner, dim}, kv1: {2 * inner, dim}, out1: {dim, inner},
		q2: {inner, dim}, kv2: {2 * inner, dim}, out2: {dim, inner},
	}
	if numLatents > 0 {
		want[keyLatents] = []int{numLatents, dim}
	}
	vals := map[string][]float32{}
	for key, shape := range want {
		t, _ := f.Get(key)
		if !slices.Equal(t.Shape, shape) {
			return Config{}, nil, fmt.Errorf("isab: %s has shape %s, want %s", key, shapeString(t.Shape), shapeString(shape))
		}
		if !t.DType.IsFloat() {
			return Config{}, nil, fmt.Errorf("isab: %s has dtype %s; weights must be F32, F16, BF16 or F64", key, t.DType)
		}
		v, err := t.Float32()
		if err != nil {
			return Config{}, nil, fmt.Errorf("isab: %s: %w", key, err)
		}
		vals[key] = v
	}
	w := &Weights{
		Latents: vals[keyLatents],
		Attn1:   AttentionWeights{Q: vals[q1], KV: vals[kv1], Out: vals[out1]},
		Attn2:   AttentionWeights{Q: vals[q2], KV: vals[kv2], Out: vals[out2]},
	}
	return cfg, w, nil
}
