package isab

import (
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/ops"
	"github.com/isab-vk/isab-vk/vk"
)

// fp16Bound is the NMSE that FP16 results must reach against the float64
// truth (half storage of weights and intermediates, float32 accumulation).
const fp16Bound = 1e-5

// TestGoldenISABPrecisions runs every golden ISAB case in FP16 (bound
// fp16Bound) and with the explicit FP32 precision (bound fp32Bound).
func TestGoldenISABPrecisions(t *testing.T) {
	dir := testutil.GoldenDir(t)
	dev := testutil.Device(t)
	if !dev.Info().Storage16 {
		t.Skipf("%s has no 16-bit storage: FP16 cannot run", dev.Info().Name)
	}
	n := 0
	for _, c := range readCases(t, dir) {
		if c.Kind != "isab" {
			continue
		}
		n++
		for _, tc := range []struct {
			p     Precision
			bound float64
		}{{FP16, fp16Bound}, {FP32, fp32Bound}} {
			t.Run(c.Name+"/"+string(tc.p), func(t *testing.T) {
				eOut, eLat, got := runFixturePrec(t, dev, dir, c, tc.p)
				t.Logf("NMSE out %.3g latents %.3g", eOut, eLat)
				if got != tc.p {
					t.Errorf("Precision() = %q, want %q", got, tc.p)
				}
				if !(eOut <= tc.bound && eLat <= tc.bound) {
					t.Errorf("%s: NMSE out %.3g latents %.3g, bound %g", tc.p, eOut, eLat, tc.bound)
				}
			})
		}
	}
	if n == 0 {
		t.Fatal("golden cases.json lists no isab case")
	}
}

// TestPrecisionDefault checks that New and the zero Options run in FP32.
func TestPrecisionDefault(t *testing.T) {
	dev := testutil.Device(t)
	cfg := Config{Dim: 8, Heads: 2, DimHead: 4, NumLatents: 3}
	m, err := New(dev, cfg, RandomWeights(cfg, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if p := m.Precision(); p != FP32 {
		t.Errorf("New: Precision() = %q, want fp32", p)
	}
}

// TestAutoPrecision checks that Auto resolves on the test device as the
// rule says (FP32 on lavapipe, a CPU device).
func TestAutoPrecision(t *testing.T) {
	dev := testutil.Device(t)
	info := dev.Info()
	cfg := Config{Dim: 8, Heads: 2, DimHead: 4, NumLatents: 3}
	m, err := NewWithPrecision(dev, cfg, RandomWeights(cfg, 1), Auto)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want := FP32
	if _, ok := ops.CoopShape(info); ok && info.Type != vk.DeviceCPU && info.Float16 && info.Storage16 {
		want = FP16
	}
	if p := m.Precision(); p != want {
		t.Errorf("Auto on %s: Precision() = %q, want %q", info.Name, p, want)
	}
	if info.Type == vk.DeviceCPU && m.Precision() != FP32 {
		t.Errorf("Auto on the CPU device %s chose %q, want fp32", info.Name, m.Precision())
	}
}

// TestResolvePrecision checks the rule on simulated devices.
func TestResolvePrecision(t *testing.T) {
	f16 := vk.CoopMatrixShape{M: 16, N: 16, K: 16, A: "f16", B: "f16", C: "f32", Result: "f32", Subgroup: true}
	i8 := vk.CoopMatrixShape{M: 16, N: 16, K: 32, A: "i8", B: "i8", C: "i32", Result: "i32", Subgroup: true}
	full := vk.Info{Name: "gpu", Float16: true, Storage16: true, CoopMatrix: []vk.CoopMatrixShape{i8, f16}}
	noCoop := vk.Info{Name: "lavapipe", Float16: true, Storage16: true}
	onlyI8 := vk.Info{Name: "i8", Float16: true, Storage16: true, CoopMatrix: []vk.CoopMatrixShape{i8}}
	noStorage := vk.Info{Name: "old", Float16: true, CoopMatrix: []vk.CoopMatrixShape{f16}}
	noFloat16 := vk.Info{Name: "nof16", Storage16: true, CoopMatrix: []vk.CoopMatrixShape{f16}}
	f16Acc := vk.Info{Name: "f16acc", Float16: true, Storage16: true, CoopMatrix: []vk.CoopMatrixShape{{M: 16, N: 16, K: 16, A: "f16", B: "f16", C: "f16", Result: "f16", Subgroup: true}}}
	cpu := vk.Info{Name: "lavapipe 26", Type: vk.DeviceCPU, Float16: true, Storage16: true, CoopMatrix: []vk.CoopMatrixShape{f16}}
	for _, c := range []struct {
		info vk.Info
		p    Precision
		want Precision
		err  string
	}{
		{full, "", FP32, ""},
		{full, FP32, FP32, ""},
		{full, FP16, FP16, ""},
		{full, Auto, FP16, ""},
		{noCoop, Auto, FP32, ""},
		{noCoop, FP16, FP16, ""},
		{onlyI8, Auto, FP32, ""},
		{noFloat16, Auto, FP32, ""},
		{noStorage, Auto, FP32, ""},
		{f16Acc, Auto, FP32, ""},
		{cpu, Auto, FP32, ""},
		{cpu, FP16, FP16, ""},
		{noStorage, FP16, "", "16-bit storage"},
		{noStorage, FP32, FP32, ""},
		{full, "bf16", "", "unknown precision"},
	} {
		got, err := resolvePrecision(c.info, c.p)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s, %q: error %v, want one containing %q", c.info.Name, c.p, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s, %q: got %q, %v; want %q", c.info.Name, c.p, got, err, c.want)
		}
	}
}
