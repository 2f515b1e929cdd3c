package vk

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

func readSPIRV(t *testing.T, name string) []byte {
	t.Helper()
	code, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestWorkgroupSize reads the workgroup size of the test shaders: a
// specialised local_size_x_id (default and given), and literal sizes.
func TestWorkgroupSize(t *testing.T) {
	axpy := readSPIRV(t, "axpy.spv")
	for _, c := range []struct {
		code []byte
		spec []uint32
		want [3]uint32
	}{
		// local_size_x_id = 0 without local_size_x: x defaults to 1.
		{axpy, nil, [3]uint32{1, 1, 1}},
		{axpy, []uint32{7}, [3]uint32{7, 1, 1}},
		{axpy, []uint32{1024}, [3]uint32{1024, 1, 1}},
		{readSPIRV(t, "wide.spv"), nil, [3]uint32{32, 1, 1}},
		{readSPIRV(t, "spin.spv"), []uint32{3}, [3]uint32{64, 1, 1}},
	} {
		got, err := workgroupSize(c.code, c.spec)
		if err != nil || got != c.want {
			t.Errorf("workgroupSize(spec %v) = %v, %v; want %v", c.spec, got, err, c.want)
		}
	}
	// Malformed modules are refused, never read past their end.
	bad := append([]byte(nil), axpy...)
	binary.LittleEndian.PutUint32(bad[20:], 0xffff0000|binary.LittleEndian.Uint32(bad[20:])&0xffff)
	for name, code := range map[string][]byte{
		"empty": nil, "short": axpy[:16], "not SPIR-V": make([]byte, 64), "odd length": axpy[:len(axpy)-1],
		"word count past the end": bad, "header only": axpy[:20],
	} {
		if _, err := workgroupSize(code, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestSpecMinimum opens the device with its limits clamped to the
// specification's minimums and checks Info and that a kernel with a
// workgroup past 128 invocations is refused with an error naming it.
func TestSpecMinimum(t *testing.T) {
	d := openTestWith(t, Options{SpecMinimum: true})
	info := d.Info()
	if info.SharedMemory > SpecMinSharedMemory || info.MaxWorkgroup > SpecMinWorkgroup ||
		info.MaxStorageBufferRange > SpecMinStorageRange || info.MaxTexelBufferElements > SpecMinTexelElements ||
		info.MinStorageBufferOffsetAlignment < SpecMaxOffsetAlignment || info.MaxWorkgroupSize[0] > SpecMinWorkgroupSizeX ||
		info.MaxGroupCount[0] > SpecMinGroupCount || info.MaxPushConstants > SpecMinPushConstantBytes {
		t.Errorf("Info not clamped: %+v", info)
	}
	code := readSPIRV(t, "axpy.spv")
	_, err := d.Kernel(KernelSpec{Name: "axpy", Code: code, Buffers: 2, PushSize: 8, Spec: []uint32{256}})
	if err == nil || !strings.Contains(err.Error(), "exceeds the device's 128") {
		t.Errorf("a 256-invocation workgroup: %v, want an error naming the limit 128", err)
	}
	if _, err := d.Kernel(KernelSpec{Name: "axpy", Code: code, Buffers: 2, PushSize: 8, Spec: []uint32{128}}); err != nil {
		t.Errorf("a 128-invocation workgroup: %v", err)
	}
	// Without the option the same device takes 256.
	full := openTest(t)
	if full.Info().MaxWorkgroup >= 256 {
		if _, err := full.Kernel(KernelSpec{Name: "axpy", Code: code, Buffers: 2, PushSize: 8, Spec: []uint32{256}}); err != nil {
			t.Errorf("256 invocations on the unclamped device: %v", err)
		}
	}
}
