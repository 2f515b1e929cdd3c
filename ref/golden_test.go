package ref

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"

	"github.com/isab-vk/isab-vk/safetensors"
)

// goldenCase is the part of a cases.json entry these tests use.
type goldenCase struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
}

func readF64(f *safetensors.File, name string) ([]float64, []int, error) {
	tn, ok := f.Get(name)
	if !ok {
		return nil, nil, fmt.Errorf("missing tensor %q", name)
	}
	v, err := tn.Float64()
	return v, tn.Shape, err
}

func metaInt(md map[string]string, key string) (int, error) {
	v, err := strconv.Atoi(md[key])
	if err != nil {
		return 0, fmt.Errorf("metadata %s: %w", key, err)
	}
	return v, nil
}

// runGoldenISAB loads one ISAB case and returns the NMSE of out and latents.
func runGoldenISAB(dir, name string) (nmseOut, nmseLat float64, err error) {
	wf, err := safetensors.ReadFile(filepath.Join(dir, name+".weights.safetensors"))
	if err != nil {
		return 0, 0, err
	}
	in, err := safetensors.ReadFile(filepath.Join(dir, name+".input.safetensors"))
	if err != nil {
		return 0, 0, err
	}
	exp, err := safetensors.ReadFile(filepath.Join(dir, name+".expected.safetensors"))
	if err != nil {
		return 0, 0, err
	}
	var cfg ISABConfig
	if cfg.Dim, err = metaInt(wf.Metadata, "dim"); err != nil {
		return 0, 0, err
	}
	if cfg.Heads, err = metaInt(wf.Metadata, "heads"); err != nil {
		return 0, 0, err
	}
	if cfg.DimHead, err = metaInt(wf.Metadata, "dim_head"); err != nil {
		return 0, 0, err
	}
	cfg.LatentSelfAttend = wf.Metadata["latent_self_attend"] == "true"

	var w ISABWeights
	for _, p := range []struct {
		dst *[]float64
		key string
	}{
		{&w.Q1, "attn1.to_q.weight"}, {&w.KV1, "attn1.to_kv.weight"}, {&w.Out1, "attn1.to_out.weight"},
		{&w.Q2, "attn2.to_q.weight"}, {&w.KV2, "attn2.to_kv.weight"}, {&w.Out2, "attn2.to_out.weight"},
	} {
		if *p.dst, _, err = readF64(wf, p.key); err != nil {
			return 0, 0, err
		}
	}
	if _, ok := wf.Get("latents"); ok {
		var shape []int
		if w.Latents, shape, err = readF64(wf, "latents"); err != nil {
			return 0, 0, err
		}
		cfg.M = shape[0]
	}

	x, xs, err := readF64(in, "x")
	if err != nil {
		return 0, 0, err
	}
	if len(xs) != 3 {
		return 0, 0, fmt.Errorf("x shape %v", xs)
	}
	b, n := xs[0], xs[1]
	var mask []bool
	if mt, ok := in.Get("mask"); ok {
		if mask, err = mt.Bool(); err != nil {
			return 0, 0, err
		}
	}
	var latents []float64
	batched := false
	if _, ok := in.Get("latents"); ok {
		var shape []int
		if latents, shape, err = readF64(in, "latents"); err != nil {
			return 0, 0, err
		}
		batched = len(shape) == 3
		cfg.M = shape[len(shape)-2]
	}

	out, lat, err := ISAB(cfg, w, x, b, n, mask, latents, batched)
	if err != nil {
		return 0, 0, err
	}
	wantOut, _, err := readF64(exp, "out")
	if err != nil {
		return 0, 0, err
	}
	wantLat, _, err := readF64(exp, "latents")
	if err != nil {
		return 0, 0, err
	}
	return NMSE64(out, wantOut), NMSE64(lat, wantLat), nil
}

func TestGoldenISAB(t *testing.T) {
	dir := testutil.GoldenDir(t)
	raw, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Skipf("cases.json not readable: %v", err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	ran := 0
	for _, c := range cases {
		if c.Kind != "isab" {
			continue
		}
		ran++
		t.Run(c.Name, func(t *testing.T) {
			if testing.Short() && c.Name == "isab_readme_small" {
				t.Skip("large case skipped in -short mode")
			}
			eo, el, err := runGoldenISAB(dir, c.Name)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("NMSE out %.3g, latents %.3g", eo, el)
			if eo > 1e-12 || el > 1e-12 {
				t.Errorf("NMSE out %g, latents %g, want < 1e-12", eo, el)
			}
		})
	}
	if ran == 0 {
		t.Skip("no isab cases in cases.json")
	}
}
