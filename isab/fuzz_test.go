package isab

import (
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/safetensors"
)

// fuzzMaxBytes bounds the files FuzzLoad tries: the load path's memory is
// bounded by the file's size, and larger inputs only slow the fuzzer.
const fuzzMaxBytes = 1 << 20

// FuzzLoad drives the whole load path on arbitrary bytes and flags: parsing
// and validating the file, resolving the configuration from metadata and
// options, converting and uploading the weights, and, for a model it
// accepts, a small forward pass with a mask. Nothing may panic or hang, and
// whatever loads must run. make test runs it for a few seconds; make fuzz
// longer.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob(testutil.Testdata(f, "*.weights.safetensors"))
	if len(seeds) == 0 {
		f.Fatal("no testdata/*.weights.safetensors seeds")
	}
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, int64(0), int64(0))
		f.Add(data, int64(5), int64(3689348814741910324)) // heads*dim_head wraps to 4
		f.Add(data, int64(1), int64(-1))
	}
	dev := testutil.Device(f)
	f.Fuzz(func(t *testing.T, data []byte, heads, dimHead int64) {
		if len(data) > fuzzMaxBytes {
			return
		}
		file, err := safetensors.Parse(data)
		if err != nil {
			return
		}
		m, err := LoadFile(dev, file, Options{Heads: int(heads), DimHead: int(dimHead)})
		if err != nil {
			return
		}
		defer m.Close()
		cfg := m.Config()
		if err := cfg.Validate(); err != nil {
			t.Fatalf("LoadFile accepted a configuration that Validate refuses: %v", err)
		}
		if cfg.Dim > 64 || cfg.Inner() > 256 {
			return // valid, but a pass would only slow the fuzzer down
		}
		fuzzForward(t, m)
	})
}

// fuzzForward runs m on x [1, 5, dim] with a mask (and latents [3, dim]
// when the model has none) and checks the shapes of what comes back.
func fuzzForward(t *testing.T, m *Model) {
	cfg := m.Config()
	r := rand.New(rand.NewSource(1))
	in := &Input{X: RandomNormal(r, 5*cfg.Dim), XShape: []int{1, 5, cfg.Dim}, Mask: []bool{true, false, true, true, false}}
	lat := cfg.NumLatents
	if lat == 0 {
		lat = 3
		in.Latents, in.LatentsShape = RandomNormal(r, 3*cfg.Dim), []int{3, cfg.Dim}
	}
	out, l, err := m.ForwardHost(context.Background(), in)
	if err != nil {
		t.Fatalf("forward pass of a model that loaded (%v): %v", cfg, err)
	}
	if len(out) != 5*cfg.Dim || len(l) != lat*cfg.Dim {
		t.Fatalf("forward pass of %v gave %d and %d values, want %d and %d", cfg, len(out), len(l), 5*cfg.Dim, lat*cfg.Dim)
	}
}
