package isab

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

// fp32Bound is the NMSE that float32 results must reach against the
// float64 truth.
const fp32Bound = 1e-9

// fixtureCase is the part of a cases.json entry (golden or testdata) that
// the tests use.
type fixtureCase struct {
	Name              string `json:"name"`
	Kind              string `json:"kind"`
	Heads             int    `json:"heads"`
	DimHead           int    `json:"dim_head"`
	LatentSelfAttend  bool   `json:"latent_self_attend"`
	MetadataHasConfig *bool  `json:"metadata_has_config"`
}

func readCases(t *testing.T, dir string) []fixtureCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []fixtureCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	return cases
}

// runFixture runs one case of dir through an FP32 model and returns the
// NMSE of out and latents against the expected file.
func runFixture(t *testing.T, dev *vk.Device, dir string, c fixtureCase) (float64, float64) {
	t.Helper()
	eOut, eLat, _ := runFixturePrec(t, dev, dir, c, FP32)
	return eOut, eLat
}

// runFixturePrec is runFixture with a precision; it also returns the
// model's resolved precision.
func runFixturePrec(t *testing.T, dev *vk.Device, dir string, c fixtureCase, p Precision) (float64, float64, Precision) {
	t.Helper()
	opts := Options{Precision: p}
	if c.MetadataHasConfig != nil && !*c.MetadataHasConfig {
		opts.Heads, opts.DimHead, opts.LatentSelfAttend = c.Heads, c.DimHead, Bool(c.LatentSelfAttend)
	}
	m, err := Load(dev, filepath.Join(dir, c.Name+".weights.safetensors"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cfg := m.Config()
	if cfg.Heads != c.Heads || cfg.DimHead != c.DimHead || cfg.LatentSelfAttend != c.LatentSelfAttend {
		t.Fatalf("configuration %v, want heads=%d dim_head=%d latent_self_attend=%v", cfg, c.Heads, c.DimHead, c.LatentSelfAttend)
	}
	in, err := ReadInput(filepath.Join(dir, c.Name+".input.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	out, lat, err := m.ForwardHost(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := safetensors.ReadFile(filepath.Join(dir, c.Name+".expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return nmseAgainst(t, exp, "out", out), nmseAgainst(t, exp, "latents", lat), m.Precision()
}

func nmseAgainst(t *testing.T, f *safetensors.File, name string, got []float32) float64 {
	t.Helper()
	tn, ok := f.Get(name)
	if !ok {
		t.Fatalf("expected file lacks %q", name)
	}
	want, err := tn.Float64()
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != len(got) {
		t.Fatalf("%s: got %d values, want %d", name, len(got), len(want))
	}
	return ref.NMSE(got, want)
}

func TestTestdataFixtures(t *testing.T) {
	dir := filepath.Join(testutil.ModuleRoot(t), "testdata")
	dev := testutil.Device(t)
	cases := readCases(t, dir)
	if len(cases) == 0 {
		t.Fatal("testdata/cases.json lists no case")
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			eOut, eLat := runFixture(t, dev, dir, c)
			t.Logf("NMSE out %.3g latents %.3g", eOut, eLat)
			if !(eOut <= fp32Bound && eLat <= fp32Bound) {
				t.Errorf("NMSE out %.3g latents %.3g, bound %g", eOut, eLat, fp32Bound)
			}
		})
	}
}

func TestGoldenISAB(t *testing.T) {
	dir := testutil.GoldenDir(t)
	dev := testutil.Device(t)
	n := 0
	for _, c := range readCases(t, dir) {
		if c.Kind != "isab" {
			continue
		}
		n++
		t.Run(c.Name, func(t *testing.T) {
			eOut, eLat := runFixture(t, dev, dir, c)
			t.Logf("NMSE out %.3g latents %.3g", eOut, eLat)
			if !(eOut <= fp32Bound && eLat <= fp32Bound) {
				t.Errorf("NMSE out %.3g latents %.3g, bound %g", eOut, eLat, fp32Bound)
			}
		})
	}
	if n == 0 {
		t.Fatal("golden cases.json lists no isab case")
	}
}
