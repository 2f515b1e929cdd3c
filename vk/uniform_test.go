package vk

import (
	"context"
	"os"
	"strings"
	"testing"
)

func uniformKernel(t *testing.T, d *Device) *Kernel {
	t.Helper()
	code, err := os.ReadFile("testdata/uniform.spv")
	if err != nil {
		t.Fatal(err)
	}
	k, err := d.Kernel(KernelSpec{Name: "uniform", Code: code, Buffers: 3, PushSize: 4, Uniform: 1})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestUniformBinding binds a window of a buffer as a uniform buffer, at an
// offset, beside storage buffers.
func TestUniformBinding(t *testing.T) {
	d := openTest(t)
	k := uniformKernel(t, d)
	info := d.Info()
	if info.MaxUniformBufferRange < 4096 || info.MinUniformBufferOffsetAlignment == 0 {
		t.Fatalf("implausible uniform limits: range %d, alignment %d", info.MaxUniformBufferRange, info.MinUniformBufferOffsetAlignment)
	}
	align := int(max(info.MinUniformBufferOffsetAlignment, 16))
	for _, n := range []int{1, 7, 33, 257, 1000} {
		const pad = 3 // floats before the window, so the window starts at an offset
		u := make([]float32, align/4*pad+4*((n+3)/4))
		for i := range u {
			u[i] = float32(i%11) - 4
		}
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(i % 7)
		}
		bu, _ := BufferFrom(d, u)
		bs, _ := BufferFrom(d, s)
		bo, err := d.NewBuffer(int64(4 * n))
		if err != nil {
			t.Fatal(err)
		}
		off := int64(align * pad)
		win := Binding{Buf: bu, Offset: off, Size: int64(len(u)*4) - off}
		seq := d.NewSequence()
		if err := seq.Dispatch(k, groups(n, 32), Push(uint32(n)), win, In(bs), Out(bo)); err != nil {
			t.Fatal(err)
		}
		if err := seq.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, err := Download[float32](bo, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		base := int(off / 4)
		for i := range got {
			want := u[base+i]*u[base] + s[i]
			if got[i] != want {
				t.Fatalf("n=%d element %d: got %v want %v", n, i, got[i], want)
			}
		}
		seq.Close()
		bu.Free()
		bs.Free()
		bo.Free()
	}
}

func TestUniformBindingErrors(t *testing.T) {
	d := openTest(t)
	k := uniformKernel(t, d)
	info := d.Info()
	big, err := d.NewBuffer(int64(info.MaxUniformBufferRange) + 64)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Free()
	small, _ := d.NewBuffer(64)
	defer small.Free()
	seq := d.NewSequence()
	defer seq.Close()
	cases := []struct {
		name string
		u    Binding
		want string
	}{
		{"too large", In(big), "maxUniformBufferRange"},
		{"written", Out(small), "cannot be written"},
	}
	if a := info.MinUniformBufferOffsetAlignment; a > 4 {
		cases = append(cases, struct {
			name string
			u    Binding
			want string
		}{"misaligned", Binding{Buf: big, Offset: 4, Size: 64}, "not a multiple"})
	}
	for _, c := range cases {
		err := seq.Dispatch(k, [3]uint32{1, 1, 1}, Push(uint32(1)), c.u, In(small), Out(small))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
	code, _ := os.ReadFile("testdata/uniform.spv")
	if _, err := d.Kernel(KernelSpec{Name: "uniform", Code: code, Buffers: 3, PushSize: 4, Uniform: 1 << 3}); err == nil {
		t.Error("a uniform mask past the buffer count was accepted")
	}
}

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
