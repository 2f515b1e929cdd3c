package vk

import (
	"context"
	"os"
	"strings"
	"testing"
)

// windowKind is a read-only binding kind other than a storage buffer (a
// texel buffer, so far), tested by binding a window of a buffer at an
// offset: testdata/NAME.spv computes out[i] = f(window, i) + s[i] with the
// window at binding 0.
type windowKind struct {
	name      string
	spec      func(code []byte) KernelSpec
	align     func(Info) int64 // offset alignment of the window
	want      func(win []float32, i int) float32
	errorCase []bindingError
}

// bindingError is a window binding that Dispatch must refuse.
type bindingError struct {
	name string
	win  func(big, small *Buffer) Binding
	want string
}

var windowKinds = []windowKind{
	{
		name: "texel",
		spec: func(code []byte) KernelSpec {
			return KernelSpec{Name: "texel", Code: code, Buffers: 3, PushSize: 4, Texel: 1}
		},
		align: func(i Info) int64 { return int64(i.MinTexelBufferOffsetAlignment) },
		want:  func(w []float32, i int) float32 { return w[i] },
		errorCase: []bindingError{
			{"partial texel", func(_, small *Buffer) Binding { return Binding{Buf: small, Size: 20} }, "whole 16-byte texels"},
		},
	},
}

func (w windowKind) kernel(t *testing.T, d *Device) *Kernel {
	t.Helper()
	code, err := os.ReadFile("testdata/" + w.name + ".spv")
	if err != nil {
		t.Fatal(err)
	}
	k, err := d.Kernel(w.spec(code))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestWindowBindings binds a window of a buffer, at an offset, as a texel
// buffer beside storage buffers, and runs the sequence twice (the second
// run replays it).
func TestWindowBindings(t *testing.T) {
	d := openTest(t)
	for _, wk := range windowKinds {
		t.Run(wk.name, func(t *testing.T) {
			k := wk.kernel(t, d)
			align := max(wk.align(d.Info()), 16)
			for _, n := range []int{1, 7, 33, 257, 1000} {
				const pad = 3 // alignment units before the window
				u := make([]float32, int(align)/4*pad+4*((n+3)/4))
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
				off := align * pad
				seq := d.NewSequence()
				win := Binding{Buf: bu, Offset: off, Size: int64(len(u)*4) - off}
				if err := seq.Dispatch(k, groups(n, 32), Push(uint32(n)), win, In(bs), Out(bo)); err != nil {
					t.Fatal(err)
				}
				for run := 0; run < 2; run++ {
					if err := seq.Run(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
				got, err := Download[float32](bo, 0, n)
				if err != nil {
					t.Fatal(err)
				}
				w := u[off/4:]
				for i := range got {
					if want := wk.want(w, i) + s[i]; got[i] != want {
						t.Fatalf("n=%d element %d: got %v want %v", n, i, got[i], want)
					}
				}
				seq.Close()
				bu.Free()
				bs.Free()
				bo.Free()
			}
		})
	}
	if objs, _ := d.LiveObjects(); objs != 0 {
		t.Errorf("%d live objects after closing everything", objs)
	}
}

// TestWindowBindingErrors checks that Dispatch refuses written, misaligned
// and partial-texel windows, and Kernel a bad mask.
func TestWindowBindingErrors(t *testing.T) {
	d := openTest(t)
	info := d.Info()
	big, err := d.NewBuffer(1 << 16)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Free()
	small, _ := d.NewBuffer(256)
	defer small.Free()
	for _, wk := range windowKinds {
		k := wk.kernel(t, d)
		seq := d.NewSequence()
		cases := append([]bindingError{
			{"written", func(_, small *Buffer) Binding { return Out(small) }, "cannot be written"},
		}, wk.errorCase...)
		if a := wk.align(info); a > 4 {
			cases = append(cases, bindingError{"misaligned", func(big, _ *Buffer) Binding { return Binding{Buf: big, Offset: 4, Size: 64} }, "not a multiple"})
		}
		for _, c := range cases {
			err := seq.Dispatch(k, [3]uint32{1, 1, 1}, Push(uint32(1)), c.win(big, small), In(small), Out(small))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s %s: got %v, want an error containing %q", wk.name, c.name, err, c.want)
			}
		}
		seq.Close()
	}
	code, _ := os.ReadFile("testdata/texel.spv")
	if _, err := d.Kernel(KernelSpec{Name: "texel", Code: code, Buffers: 3, PushSize: 4, Texel: 1 << 3}); err == nil {
		t.Error("a texel mask past the buffer count was accepted")
	}
}

// TestStorageTexelBinding writes texels through a storage texel buffer bound
// as a window at an aligned offset of a larger buffer, and checks that
// everything outside the window keeps its value; and that Kernel refuses a
// binding in both texel masks and Dispatch partial or misaligned windows.
func TestStorageTexelBinding(t *testing.T) {
	d := openTest(t)
	code, err := os.ReadFile("testdata/texel_store.spv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Kernel(KernelSpec{Name: "texel_store", Code: code, Buffers: 2, PushSize: 4, Texel: 3, StorageTexel: 2}); err == nil ||
		!strings.Contains(err.Error(), "both texel masks") {
		t.Errorf("a binding in both masks: got %v", err)
	}
	if _, err := d.Kernel(KernelSpec{Name: "texel_store", Code: code, Buffers: 2, PushSize: 4, Texel: 1, StorageTexel: 2, HalfTexel: 4}); err == nil ||
		!strings.Contains(err.Error(), "not texel buffers") {
		t.Errorf("a half-texel mask past the texel bindings: got %v", err)
	}
	k, err := d.Kernel(KernelSpec{Name: "texel_store", Code: code, Buffers: 2, PushSize: 4, Texel: 1, StorageTexel: 2})
	if err != nil {
		t.Fatal(err)
	}
	align := max(int64(d.Info().MinTexelBufferOffsetAlignment), 16)
	const sentinel = -3.5
	for _, n := range []int{1, 7, 33, 257} {
		in := make([]float32, 4*n)
		for i := range in {
			in[i] = float32(i%13) - 6
		}
		out := make([]float32, int(2*align)/4+4*n+8)
		for i := range out {
			out[i] = sentinel
		}
		bi, _ := BufferFrom(d, in)
		bo, _ := BufferFrom(d, out)
		seq := d.NewSequence()
		win := Binding{Buf: bo, Offset: 2 * align, Size: int64(16 * n), Write: true}
		if err := seq.Dispatch(k, groups(n, 32), Push(uint32(n)), In(bi), win); err != nil {
			t.Fatal(err)
		}
		if err := seq.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, err := Download[float32](bo, 0, len(out))
		if err != nil {
			t.Fatal(err)
		}
		start := int(2 * align / 4)
		for i, v := range got {
			want := float32(sentinel)
			if i >= start && i < start+4*n {
				want = 2*in[i-start] + 1
			}
			if v != want {
				t.Fatalf("n=%d element %d: got %v want %v", n, i, v, want)
			}
		}
		for _, c := range []struct {
			name string
			b    Binding
			want string
		}{
			{"partial texel", Binding{Buf: bo, Offset: 0, Size: 20, Write: true}, "whole 16-byte texels"},
			{"misaligned", Binding{Buf: bo, Offset: 4, Size: 16, Write: true}, "not a multiple"},
		} {
			if c.name == "misaligned" && align <= 4 {
				continue
			}
			bad := d.NewSequence()
			if err := bad.Dispatch(k, [3]uint32{1, 1, 1}, Push(uint32(1)), In(bi), c.b); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
			}
			bad.Close()
		}
		seq.Close()
		bi.Free()
		bo.Free()
	}
}
