package benchkit

import (
	"context"
	"math"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
)

// TestDevicePeak checks that the peak microbenchmark runs in both
// precisions and gives a finite, positive rate, and that the FP32 matmul
// does not exceed it by far (a matmul cannot beat the device's FMA rate;
// a margin covers timing noise).
func TestDevicePeak(t *testing.T) {
	dev := testutil.Device(t)
	ctx := context.Background()
	fp32, err := DevicePeak(ctx, dev, false)
	if err != nil {
		t.Fatal(err)
	}
	if !(fp32 > 0) || math.IsInf(fp32, 0) {
		t.Fatalf("fp32 peak %v GFLOP/s", fp32)
	}
	mm, err := PeakGFLOPs(ctx, dev, 256, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: fp32 FMA peak %.1f GFLOP/s, 256^3 matmul %.1f", dev.Info().Name, fp32, mm)
	if mm > 1.5*fp32 {
		t.Errorf("a 256^3 matmul ran at %.1f GFLOP/s, above the fp32 peak %.1f", mm, fp32)
	}
	if !dev.Info().Float16 {
		if _, err := DevicePeak(ctx, dev, true); err == nil {
			t.Error("fp16 peak on a device without shaderFloat16 did not fail")
		}
		t.Skipf("%s lacks shaderFloat16: fp16 peak not measured", dev.Info().Name)
	}
	fp16, err := DevicePeak(ctx, dev, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fp16 FMA peak %.1f GFLOP/s", fp16)
	if !(fp16 > 0) || math.IsInf(fp16, 0) {
		t.Fatalf("fp16 peak %v GFLOP/s", fp16)
	}
}
