package vk

import (
	"context"
	"os"
	"testing"
)

// TestInt64Loads runs a kernel that needs shaderInt64 (64-bit-component
// loads, as the CPU kernels use) under the validation layer, which
// reports a capability used without its feature enabled.
func TestInt64Loads(t *testing.T) {
	d := openTest(t)
	if !d.Info().Int64 {
		t.Skipf("%s lacks shaderInt64", d.Info().Name)
	}
	code, err := os.ReadFile("testdata/wide.spv")
	if err != nil {
		t.Fatal(err)
	}
	k, err := d.Kernel(KernelSpec{Name: "wide", Code: code, Buffers: 2, PushSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, groups8 := range []int{1, 7, 33} {
		in := make([]float32, 8*groups8)
		for i := range in {
			in[i] = float32(i)*0.5 - 3
		}
		bi, _ := BufferFrom(d, in)
		bo, err := d.NewBuffer(int64(4 * len(in)))
		if err != nil {
			t.Fatal(err)
		}
		seq := d.NewSequence()
		if err := seq.Dispatch(k, groups(groups8, 32), Push(uint32(groups8)), In(bi), Out(bo)); err != nil {
			t.Fatal(err)
		}
		if err := seq.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, err := Download[float32](bo, 0, len(in))
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] != in[i] {
				t.Fatalf("%d groups: element %d is %v, want %v", groups8, i, got[i], in[i])
			}
		}
		seq.Close()
		bi.Free()
		bo.Free()
	}
}
