package vk

import (
	"context"
	"os"
	"strings"
	"testing"
)

func texelKernel(t *testing.T, d *Device) *Kernel {
	t.Helper()
	code, err := os.ReadFile("testdata/texel.spv")
	if err != nil {
		t.Fatal(err)
	}
	k, err := d.Kernel(KernelSpec{Name: "texel", Code: code, Buffers: 3, PushSize: 4, Texel: 1})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestTexelBinding reads a window of a buffer, at an offset, as a uniform
// texel buffer of four-float texels.
func TestTexelBinding(t *testing.T) {
	d := openTest(t)
	k := texelKernel(t, d)
	align := int(max(d.Info().MinTexelBufferOffsetAlignment, 16))
	for _, n := range []int{1, 7, 33, 257} {
		const pad = 2 // alignment units before the window
		u := make([]float32, align/4*pad+4*((n+3)/4))
		for i := range u {
			u[i] = float32(i%17) - 8
		}
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(i % 5)
		}
		bu, _ := BufferFrom(d, u)
		bs, _ := BufferFrom(d, s)
		bo, err := d.NewBuffer(int64(4 * n))
		if err != nil {
			t.Fatal(err)
		}
		off := int64(align * pad)
		seq := d.NewSequence()
		win := Binding{Buf: bu, Offset: off, Size: int64(len(u)*4) - off}
		if err := seq.Dispatch(k, groups(n, 32), Push(uint32(n)), win, In(bs), Out(bo)); err != nil {
			t.Fatal(err)
		}
		for run := 0; run < 2; run++ { // the second run replays the views
			if err := seq.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		got, err := Download[float32](bo, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if want := u[int(off/4)+i] + s[i]; got[i] != want {
				t.Fatalf("n=%d element %d: got %v want %v", n, i, got[i], want)
			}
		}
		seq.Close()
		bu.Free()
		bs.Free()
		bo.Free()
	}
	if objs, _ := d.LiveObjects(); objs != 0 {
		t.Errorf("%d live objects after closing everything", objs)
	}
}

func TestTexelBindingErrors(t *testing.T) {
	d := openTest(t)
	k := texelKernel(t, d)
	b, _ := d.NewBuffer(256)
	defer b.Free()
	seq := d.NewSequence()
	defer seq.Close()
	cases := []struct {
		name string
		tb   Binding
		want string
	}{
		{"written", Out(b), "cannot be written"},
		{"partial texel", Binding{Buf: b, Size: 20}, "whole 16-byte texels"},
	}
	if a := d.Info().MinTexelBufferOffsetAlignment; a > 4 {
		cases = append(cases, struct {
			name string
			tb   Binding
			want string
		}{"misaligned", Binding{Buf: b, Offset: 4, Size: 64}, "not a multiple"})
	}
	for _, c := range cases {
		err := seq.Dispatch(k, [3]uint32{1, 1, 1}, Push(uint32(1)), c.tb, In(b), Out(b))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
	code, _ := os.ReadFile("testdata/texel.spv")
	if _, err := d.Kernel(KernelSpec{Name: "texel", Code: code, Buffers: 3, PushSize: 4, Texel: 1, Uniform: 1}); err == nil {
		t.Error("a binding marked both uniform and texel was accepted")
	}
}
