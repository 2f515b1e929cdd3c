package safetensors

import (
	"path/filepath"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
)

func TestGoldenFiles(t *testing.T) {
	dir := testutil.GoldenDir(t)
	paths, err := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Skipf("no safetensors files in %s", dir)
	}
	for _, p := range paths {
		f, err := ReadFile(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if len(f.Tensors) == 0 {
			t.Errorf("%s: no tensors", p)
		}
		for _, name := range f.Names() {
			tn, _ := f.Get(name)
			if tn.DType == BOOL {
				if _, err := tn.Bool(); err != nil {
					t.Errorf("%s: %v", p, err)
				}
				continue
			}
			if _, err := tn.Float32(); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		}
	}
}

func TestGoldenISABBasic(t *testing.T) {
	dir := testutil.GoldenDir(t)
	w, err := ReadFile(filepath.Join(dir, "isab_basic.weights.safetensors"))
	if err != nil {
		t.Skipf("isab_basic not readable: %v", err)
	}
	want := map[string][]int{
		"latents":             {8, 64},
		"attn1.to_q.weight":   {128, 64},
		"attn1.to_kv.weight":  {256, 64},
		"attn1.to_out.weight": {64, 128},
		"attn2.to_q.weight":   {128, 64},
		"attn2.to_kv.weight":  {256, 64},
		"attn2.to_out.weight": {64, 128},
	}
	for name, shape := range want {
		tn, ok := w.Get(name)
		if !ok {
			t.Errorf("missing %s; have %v", name, w.Names())
			continue
		}
		if tn.DType != F32 || !equalInts(tn.Shape, shape) {
			t.Errorf("%s: %s %v, want F32 %v", name, tn.DType, tn.Shape, shape)
		}
	}
	for key, val := range map[string]string{"dim": "64", "heads": "2", "dim_head": "64", "latent_self_attend": "false"} {
		if got := w.Metadata[key]; got != val {
			t.Errorf("metadata %s = %q, want %q", key, got, val)
		}
	}
	in, err := ReadFile(filepath.Join(dir, "isab_basic.input.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	x, ok := in.Get("x")
	if !ok || !equalInts(x.Shape, []int{2, 100, 64}) {
		t.Fatalf("x missing or mis-shaped: %+v", in.Names())
	}
}
