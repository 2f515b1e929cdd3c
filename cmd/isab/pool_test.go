package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/vk"
)

// TestRunDeviceAll runs golden cases with --device all (the batch split
// across every device: lavapipe alone in make test, lavapipe and
// SwiftShader under scripts/swiftshader.sh both) and on the default
// device, and checks that both outputs match the expected file, and each
// other.
func TestRunDeviceAll(t *testing.T) {
	dir := testutil.GoldenDir(t)
	infos, err := vk.Devices()
	if err != nil {
		t.Skipf("no Vulkan device: %v", err)
	}
	t.Logf("--device all: %d device(s)", len(infos))
	tmp := t.TempDir()
	for _, name := range []string{"isab_self_attend_mask", "isab_external_3d"} { // batch 3 (uneven on 2) with a mask; batched latents
		t.Run(name, func(t *testing.T) {
			p := func(suffix string) string { return filepath.Join(dir, name+suffix) }
			outs := map[string]string{}
			for _, dev := range []string{"all", ""} {
				out := filepath.Join(tmp, name+dev+".safetensors")
				args := []string{"run", "--weights", p(".weights.safetensors"), "--input", p(".input.safetensors"), "--output", out}
				if dev != "" {
					args = append(args, "--device", dev)
				}
				code, _, stderr := runTool(t, args...)
				if code != 0 {
					t.Fatalf("--device %q: exit %d: %s", dev, code, stderr)
				}
				compareOutput(t, out, p(".expected.safetensors"))
				outs[dev] = out
			}
			// The pool's output against the single device's, as the
			// reference; on one device the pool runs the same pass.
			compareOutput(t, outs["all"], outs[""])
			if len(infos) == 1 {
				a, errA := os.ReadFile(outs["all"])
				b, errB := os.ReadFile(outs[""])
				if errA != nil || errB != nil || !bytes.Equal(a, b) {
					t.Errorf("on one device, --device all wrote another file than the device itself (%v, %v)", errA, errB)
				}
			}
		})
	}
	// A Set Transformer model does not run on a pool: a usage error, not
	// the default device.
	p := func(suffix string) string { return filepath.Join(dir, "st_sab"+suffix) }
	code, _, stderr := runTool(t, "run", "--device", "all", "--weights", p(".weights.safetensors"),
		"--input", p(".input.safetensors"), "--output", filepath.Join(tmp, "st.safetensors"))
	if code != 2 || !strings.Contains(stderr, "only isab models") {
		t.Errorf("Set Transformer with --device all: exit %d, stderr %q, want a usage error", code, stderr)
	}
}

// TestBenchDeviceAll checks that bench --device all times each device,
// and all of them together as one more table section when there are
// several (under scripts/swiftshader.sh both), on a shape of batch 3.
func TestBenchDeviceAll(t *testing.T) {
	infos, err := vk.Devices()
	if err != nil {
		t.Skipf("no Vulkan device: %v", err)
	}
	code, stdout, stderr := runTool(t, "bench", "--device", "all", "--shape", "3,7,8,2,3", "--dim-head", "4",
		"--iters", "2", "--warmup", "1", "--peak-n", "0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, in := range infos {
		if !strings.Contains(stdout, fmt.Sprintf("device %d: %s", in.Index, in.Name)) {
			t.Errorf("no section for device %d (%s):\n%s", in.Index, in.Name, stdout)
		}
	}
	together := strings.Contains(stdout, "all devices together")
	switch {
	case len(infos) == 1 && together:
		t.Errorf("one device, yet a section for all devices together:\n%s", stdout)
	case len(infos) > 1 && !together:
		t.Errorf("%d devices and no section for all of them together:\n%s", len(infos), stdout)
	case len(infos) > 1:
		// Batch 3 in contiguous shards, the first devices taking one more.
		var parts []string
		for i := range infos {
			c := 3 / len(infos)
			if i < 3%len(infos) {
				c++
			}
			parts = append(parts, fmt.Sprintf("%d (fp32)", c))
		}
		if want := strings.Join(parts, " + "); !strings.Contains(stdout, want) {
			t.Errorf("the pool's row does not show the split %q:\n%s", want, stdout)
		}
	}
}
