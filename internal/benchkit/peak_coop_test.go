package benchkit

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/vk"
)

// coopDevice opens the test device and skips, saying why, when it has no
// shape that DeviceCoopPeak measures; on such a device DeviceCoopPeak must
// fail.
func coopDevice(t *testing.T) (*vk.Device, vk.CoopMatrixShape) {
	t.Helper()
	dev := testutil.Device(t)
	shape, ok := CoopPeakShape(dev.Info())
	if !ok {
		if _, err := DeviceCoopPeak(context.Background(), dev); err == nil {
			t.Error("DeviceCoopPeak on a device without a usable cooperative-matrix shape did not fail")
		}
		t.Skipf("%s has no fp16 x fp16 + fp32 cooperative-matrix shape (VK_KHR_cooperative_matrix) with shaderFloat16: "+
			"the coop peak is not measured (make test-coop runs this on Debian 13's lavapipe)", dev.Info().Name)
	}
	return dev, shape
}

// simulateCoop computes on the host, in float64 and literally (the
// products one by one), what peak_coop.comp writes for a slot whose
// accumulator t starts at (init + t) & 7 after iters rounds, modulo 2^32.
func simulateCoop(c coopPeak, init int64, iters int) uint32 {
	lm, ln, lk := int(c.shape.M), int(c.shape.N), int(c.shape.K)
	a, b := c.ab[:2*lm*lk], c.ab[2*lm*lk:] // 2LM x LK, LK x 2LN
	var total float64
	for t := range coopAcc {
		ai, bj := t/2, t%2
		acc := make([]float64, lm*ln)
		for e := range acc {
			acc[e] = float64((init + int64(t)) & 7)
		}
		for range iters * coopChain {
			for r := range lm {
				for col := range ln {
					for p := range lk {
						acc[r*ln+col] += float64(a[(ai*lm+r)*lk+p]) * float64(b[p*2*ln+bj*ln+col])
					}
				}
			}
		}
		for _, v := range acc {
			total += v
		}
	}
	return uint32(int64(total))
}

// TestCoopPeakResult runs peak_coop.comp on a few workgroups and checks
// every subgroup slot's sum against the host's literal computation, so
// that the multiply-adds the benchmark counts are shown to be done; and
// that the check DeviceCoopPeak makes rejects a run of fewer rounds and a
// single wrong slot.
func TestCoopPeakResult(t *testing.T) {
	dev, shape := coopDevice(t)
	c, err := newCoopPeak(dev.Info())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: shape %s, %d subgroup slots of %d invocations", dev.Info().Name, shape, c.slots, c.wg/c.slots)
	k, err := c.kernel(dev)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		groups int64
		iters  int
	}{{1, 1}, {3, 3}, {7, 2}} {
		_, out, err := c.run(ctx, dev, k, tc.groups, tc.iters, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != int(tc.groups)*c.slots {
			t.Fatalf("%d groups: %d sums, want %d", tc.groups, len(out), int(tc.groups)*c.slots)
		}
		for s, v := range out {
			if want := simulateCoop(c, int64(s), tc.iters); v != want {
				t.Errorf("%d groups, %d rounds: slot %d wrote %d, the host computes %d", tc.groups, tc.iters, s, int32(v), int32(want))
			}
		}
		if err := c.check(out, tc.iters); err != nil {
			t.Errorf("%d groups, %d rounds: %v", tc.groups, tc.iters, err)
		}
		if err := c.check(out, tc.iters+1); err == nil {
			t.Errorf("%d groups, %d rounds: the check passed the sums as %d rounds", tc.groups, tc.iters, tc.iters+1)
		}
		out[len(out)-1]++
		if err := c.check(out, tc.iters); err == nil || !strings.Contains(err.Error(), "1 of") {
			t.Errorf("%d groups, %d rounds: one wrong slot: %v", tc.groups, tc.iters, err)
		}
	}
}

// TestDeviceCoopPeak measures the cooperative-matrix peak and checks that
// it is a finite, positive rate. On a CPU device, which has no matrix
// units, it must not exceed the float32 multiply-add peak by far. The sums
// checked in DeviceCoopPeak prove that the products were added, not that
// each was computed anew: a compiler that moved the loop-invariant Ai Bj
// out of the loop would leave one addition per element instead of LK
// multiply-adds, about LK (8 on lavapipe) times faster. The margin of 4
// covers timing noise on a loaded machine (coop 1.7 times the fp32 peak
// was seen with other work running; 0.6 on a quiet one).
func TestDeviceCoopPeak(t *testing.T) {
	dev, shape := coopDevice(t)
	ctx := context.Background()
	coop, err := DeviceCoopPeak(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	if !(coop > 0) || math.IsInf(coop, 0) {
		t.Fatalf("coop peak %v GFLOP/s", coop)
	}
	fp32, err := DevicePeak(ctx, dev, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: coop %s peak %.1f GFLOP/s, fp32 FMA peak %.1f", dev.Info().Name, shape, coop, fp32)
	if dev.Info().Type == vk.DeviceCPU && coop > 4*fp32 {
		t.Errorf("on a CPU device the coop peak %.1f GFLOP/s is above 4 times the fp32 FMA peak %.1f", coop, fp32)
	}
}
