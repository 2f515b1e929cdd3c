package vk

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
)

// TestSubgroupInfo checks the subgroup fields of the open device's Info:
// a reported range holds the reported size, sizes are powers of two, and
// lavapipe (one SIMD width per process) reports one size.
func TestSubgroupInfo(t *testing.T) {
	d := openTest(t)
	in := d.Info()
	t.Logf("%s: subgroup %d, range [%d, %d], required %v, full %v, max subgroups per workgroup %d",
		in.Name, in.SubgroupSize, in.MinSubgroupSize, in.MaxSubgroupSize, in.RequiredSubgroupSize, in.FullSubgroups, in.MaxComputeWorkgroupSubgroups)
	if in.MinSubgroupSize == 0 {
		if in.MaxSubgroupSize != 0 || in.RequiredSubgroupSize || in.FullSubgroups {
			t.Errorf("no size range reported, yet max %d, required %v, full %v", in.MaxSubgroupSize, in.RequiredSubgroupSize, in.FullSubgroups)
		}
		if in.APIVersion >= Version13 {
			t.Errorf("a Vulkan %v device reports no subgroup size range", in.APIVersion)
		}
		return
	}
	for _, s := range []uint32{in.MinSubgroupSize, in.MaxSubgroupSize} {
		if s&(s-1) != 0 {
			t.Errorf("subgroup size %d is not a power of two", s)
		}
	}
	if in.SubgroupSize < in.MinSubgroupSize || in.SubgroupSize > in.MaxSubgroupSize {
		t.Errorf("reported subgroup size %d outside [%d, %d]", in.SubgroupSize, in.MinSubgroupSize, in.MaxSubgroupSize)
	}
	if !in.SupportsSubgroupSize(in.SubgroupSize) {
		t.Errorf("SupportsSubgroupSize(%d) = false for the reported size", in.SubgroupSize)
	}
	if in.Type == DeviceCPU && strings.HasPrefix(in.Name, "llvmpipe") && (in.MinSubgroupSize != in.SubgroupSize || in.MaxSubgroupSize != in.SubgroupSize) {
		t.Errorf("lavapipe reports subgroups of %d to %d, want %d only", in.MinSubgroupSize, in.MaxSubgroupSize, in.SubgroupSize)
	}
}

// TestSupportsSubgroupSize checks the rule on made-up devices.
func TestSupportsSubgroupSize(t *testing.T) {
	fixed8 := Info{SubgroupSize: 8, MinSubgroupSize: 8, MaxSubgroupSize: 8}
	intel := Info{SubgroupSize: 32, MinSubgroupSize: 8, MaxSubgroupSize: 32}
	intelReq := intel
	intelReq.RequiredSubgroupSize = true
	unknown := Info{SubgroupSize: 32}
	cases := []struct {
		name string
		in   Info
		size uint32
		want bool
	}{
		{"fixed 8 asks 8", fixed8, 8, true},
		{"fixed 8 asks 16", fixed8, 16, false},
		{"fixed 8 asks 0", fixed8, 0, false},
		{"8..32 without control asks the reported 32", intel, 32, false},
		{"8..32 with control asks 16", intelReq, 16, true},
		{"8..32 with control asks 64", intelReq, 64, false},
		{"8..32 with control asks 12", intelReq, 12, false},
		{"range unknown asks the reported 32", unknown, 32, false},
	}
	for _, c := range cases {
		if got := c.in.SupportsSubgroupSize(c.size); got != c.want {
			t.Errorf("%s: SupportsSubgroupSize(%d) = %v, want %v", c.name, c.size, got, c.want)
		}
	}
}

// TestSubgroupRequest checks what a pipeline asks for: a required size
// where the device can require one, full subgroups where offered and the
// workgroup's x size is a multiple, and errors that say why otherwise.
func TestSubgroupRequest(t *testing.T) {
	gpu := Info{SubgroupSize: 32, MinSubgroupSize: 8, MaxSubgroupSize: 32, RequiredSubgroupSize: true, FullSubgroups: true, MaxComputeWorkgroupSubgroups: 4}
	r, err := gpu.subgroupRequestFor(16, [3]uint32{64, 1, 1})
	if err != nil || r.required != 16 || r.flags != stageRequireFullSubgroups {
		t.Errorf("16 of 8..32 with a workgroup of 64: %+v, %v; want required 16 with full subgroups", r, err)
	}
	if r, err := gpu.subgroupRequestFor(16, [3]uint32{8, 2, 1}); err != nil || r.required != 16 || r.flags != 0 {
		t.Errorf("16 with a workgroup of 8x2: %+v, %v; want required 16, no full subgroups", r, err)
	}
	if _, err := gpu.subgroupRequestFor(8, [3]uint32{64, 1, 1}); err == nil || !strings.Contains(err.Error(), "4 subgroups of 8") {
		t.Errorf("8 subgroups of 8 where 4 are allowed: %v", err)
	}
	if r, err := gpu.subgroupRequestFor(0, [3]uint32{64, 1, 1}); err != nil || r != (subgroupRequest{}) {
		t.Errorf("no size asked: %+v, %v", r, err)
	}
	fixed := Info{SubgroupSize: 8, MinSubgroupSize: 8, MaxSubgroupSize: 8, FullSubgroups: true}
	if r, err := fixed.subgroupRequestFor(8, [3]uint32{16, 1, 1}); err != nil || r.required != 0 || r.flags != stageRequireFullSubgroups {
		t.Errorf("8 on a fixed-8 device without control: %+v, %v; want no required size, full subgroups", r, err)
	}
	for _, c := range []struct {
		in   Info
		size uint32
		want string
	}{
		{gpu, 12, "not a power of two"},
		{Info{SubgroupSize: 32, MinSubgroupSize: 8, MaxSubgroupSize: 32}, 32, "may run compute subgroups of 8 to 32"},
		{fixed, 16, "runs subgroups of 8"},
		{Info{SubgroupSize: 32}, 32, "neither the sizes it may run"},
	} {
		if _, err := c.in.subgroupRequestFor(c.size, [3]uint32{64, 1, 1}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("size %d on %+v: %v, want an error saying %q", c.size, c.in, err, c.want)
		}
	}
}

// TestKernelSubgroupSize makes a kernel that requires the device's
// subgroup size and runs it (under the validation layer, which checks the
// required-size and full-subgroup rules), then makes the device look like
// one that may run several sizes and cannot require one, where Kernel must
// refuse with an error that says so.
func TestKernelSubgroupSize(t *testing.T) {
	d := openTest(t)
	in := d.Info()
	code, err := os.ReadFile("testdata/axpy.spv")
	if err != nil {
		t.Fatal(err)
	}
	const wg = 64
	spec := KernelSpec{Name: "axpy", Code: code, Buffers: 2, PushSize: 8, Spec: []uint32{wg}, SubgroupSize: in.SubgroupSize}
	if !in.SupportsSubgroupSize(in.SubgroupSize) {
		if _, err := d.Kernel(spec); err == nil {
			t.Errorf("Kernel with subgroup size %d succeeded where SupportsSubgroupSize is false", in.SubgroupSize)
		}
		t.Skipf("%s cannot promise its subgroup size %d (range [%d, %d], required %v)", in.Name, in.SubgroupSize, in.MinSubgroupSize, in.MaxSubgroupSize, in.RequiredSubgroupSize)
	}
	k, err := d.Kernel(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 7, 33, 1000} {
		x, y := make([]float32, n), make([]float32, n)
		for i := range x {
			x[i], y[i] = float32(i%7)-3, float32(i%5)
		}
		bx, _ := BufferFrom(d, x)
		by, _ := BufferFrom(d, y)
		seq := d.NewSequence()
		if err := seq.Dispatch(k, groups(n, wg), Push(n, float32(2)), In(bx), Out(by)); err != nil {
			t.Fatal(err)
		}
		if err := seq.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, err := Download[float32](by, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if want := y[i] + 2*x[i]; math.Abs(float64(got[i]-want)) > 1e-5 {
				t.Fatalf("n=%d element %d: got %v, want %v", n, i, got[i], want)
			}
		}
		seq.Close()
		bx.Free()
		by.Free()
	}

	// A device that may run 4 to 64 and cannot require a size.
	d.info.MinSubgroupSize, d.info.MaxSubgroupSize, d.info.RequiredSubgroupSize = 4, 64, false
	t.Cleanup(func() { d.info = in })
	spec.Spec = []uint32{wg / 2} // another cache key: the kernel above is cached
	if _, err := d.Kernel(spec); err == nil || !strings.Contains(err.Error(), "may run compute subgroups of 4 to 64") {
		t.Errorf("Kernel on a device that may run 4 to 64 subgroup lanes: %v, want a clear error", err)
	}
	spec.SubgroupSize = 0
	if _, err := d.Kernel(spec); err != nil {
		t.Errorf("Kernel asking no subgroup size: %v", err)
	}
}

// TestDeviceTypeAndVersion checks the names and order of device types and
// the packing of versions, as isab devices and its JSON print them.
func TestDeviceTypeAndVersion(t *testing.T) {
	names := map[DeviceType]string{DeviceDiscrete: "discrete", DeviceIntegrated: "integrated", DeviceVirtual: "virtual", DeviceCPU: "cpu", DeviceOther: "other"}
	for typ, want := range names {
		if typ.String() != want {
			t.Errorf("DeviceType(%d).String() = %q, want %q", typ, typ.String(), want)
		}
	}
	if !(DeviceDiscrete > DeviceIntegrated && DeviceIntegrated > DeviceVirtual && DeviceVirtual > DeviceCPU && DeviceCPU > DeviceOther) {
		t.Error("device types are not in ascending order of preference")
	}
	v := MakeVersion(1, 3, 230)
	if v.Major() != 1 || v.Minor() != 3 || v.Patch() != 230 || v.String() != "1.3.230" || v < Version13 || v >= MakeVersion(1, 4, 0) {
		t.Errorf("MakeVersion(1, 3, 230) = %#x: %d.%d.%d %q", uint32(v), v.Major(), v.Minor(), v.Patch(), v.String())
	}
	if Version12 != MakeVersion(1, 2, 0) {
		t.Errorf("Version12 = %#x", uint32(Version12))
	}
	b, err := json.Marshal(struct {
		T DeviceType
		V Version
	}{DeviceCPU, v})
	if err != nil || string(b) != `{"T":"cpu","V":"1.3.230"}` {
		t.Errorf("JSON: %s, %v", b, err)
	}
}
