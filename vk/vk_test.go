package vk

import (
	"context"
	"errors"
	"math"
	"os"
	"sync"
	"testing"
)

// openTest opens the default device with validation on and fails the test
// on any validation message when it ends. It skips when no Vulkan driver
// is installed.
func openTest(t testing.TB) *Device {
	t.Helper()
	return openTestWith(t, Options{})
}

// openTestWith is openTest with options (Validation is turned on).
func openTestWith(t testing.TB, opts Options) *Device {
	t.Helper()
	opts.Validation = true
	d, err := Open(opts)
	if err != nil {
		if errors.Is(err, ErrNoVulkan) {
			t.Skipf("no Vulkan device: %v", err)
		}
		t.Fatalf("Open: %v", err)
	}
	ValidationMessages()
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("closing the device: %v", err)
		}
		for _, m := range ValidationMessages() {
			t.Errorf("validation: %s", m)
		}
	})
	return d
}

func axpyKernel(t testing.TB, d *Device, wg uint32) *Kernel {
	t.Helper()
	code, err := os.ReadFile("testdata/axpy.spv")
	if err != nil {
		t.Fatal(err)
	}
	k, err := d.Kernel(KernelSpec{Name: "axpy", Code: code, Buffers: 2, PushSize: 8, Spec: []uint32{wg}})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func groups(n, wg int) [3]uint32 { return [3]uint32{uint32((n + wg - 1) / wg), 1, 1} }

func TestInfo(t *testing.T) {
	d := openTest(t)
	info := d.Info()
	if info.Name == "" || info.APIVersion < Version10 || info.MaxStorageBufferRange == 0 || info.MaxGroupCount[0] == 0 {
		t.Fatalf("incomplete info: %+v", info)
	}
	t.Logf("%+v", info)
	all, err := Devices()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 || all[info.Index].Name != info.Name {
		t.Fatalf("Devices() disagrees with the open device: %v", all)
	}
}

func TestSelectDevice(t *testing.T) {
	infos := []Info{{Index: 0, Name: "llvmpipe", Type: DeviceCPU}, {Index: 1, Name: "Radeon RX", Type: DeviceIntegrated}, {Index: 2, Name: "NVIDIA H100", Type: DeviceDiscrete}}
	cases := map[string]int{"": 2, "0": 0, "1": 1, "nvidia": 2, "LLVM": 0}
	for sel, want := range cases {
		got, err := selectDevice(infos, sel)
		if err != nil || got != want {
			t.Errorf("selectDevice(%q) = %d, %v; want %d", sel, got, err, want)
		}
	}
	for _, bad := range []string{"3", "-1", "intel"} {
		if _, err := selectDevice(infos, bad); err == nil {
			t.Errorf("selectDevice(%q) succeeded", bad)
		}
	}
	// Two CPU devices: lavapipe, wherever the loader lists it.
	cpus := []Info{{Index: 0, Name: "SwiftShader Device (Subzero)", Type: DeviceCPU}, {Index: 1, Name: "llvmpipe (LLVM 15.0.6, 512 bits)", Type: DeviceCPU}}
	if got, err := selectDevice(cpus, ""); err != nil || got != 1 {
		t.Errorf("SwiftShader then llvmpipe: selectDevice = %d, %v; want 1", got, err)
	}
	cpus[0], cpus[1] = cpus[1], cpus[0]
	cpus[0].Index, cpus[1].Index = 0, 1
	if got, err := selectDevice(cpus, ""); err != nil || got != 0 {
		t.Errorf("llvmpipe then SwiftShader: selectDevice = %d, %v; want 0", got, err)
	}
}

func TestBufferRoundTrip(t *testing.T) {
	d := openTest(t)
	b, err := d.NewBuffer(1000 * 4)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free()
	in := make([]float32, 1000)
	for i := range in {
		in[i] = float32(i) * 0.5
	}
	if err := Upload(b, 0, in); err != nil {
		t.Fatal(err)
	}
	got, err := Download[float32](b, 10, 7)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != in[10+i] {
			t.Fatalf("element %d: got %v want %v", 10+i, v, in[10+i])
		}
	}
	if _, err := Download[float32](b, 999, 2); err == nil {
		t.Fatal("download past the end succeeded")
	}
	if err := Upload(b, 1000, []float32{1}); err == nil {
		t.Fatal("upload past the end succeeded")
	}
	if _, err := d.NewBuffer(0); err == nil {
		t.Fatal("zero-size buffer succeeded")
	}
}

func TestTooLargeBuffer(t *testing.T) {
	d := openTest(t)
	_, err := d.NewBuffer(int64(d.Info().DeviceMemory) + 1<<30)
	if !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("got %v, want ErrOutOfMemory", err)
	}
}

func TestDispatchAndBarriers(t *testing.T) {
	d := openTest(t)
	k := axpyKernel(t, d, 64)
	for _, n := range []int{1, 7, 33, 257, 1000} {
		x := make([]float32, n)
		y := make([]float32, n)
		for i := range x {
			x[i] = float32(i%13) - 6
			y[i] = float32(i%5) + 1
		}
		bx, _ := BufferFrom(d, x)
		by, _ := BufferFrom(d, y)
		seq := d.NewSequence()
		seq.EnableTimestamps()
		// y = 2x + y, then y = -1*x + y, then an independent dispatch
		// reading only x: two barriers exactly (the second dispatch
		// reads and writes y which the first wrote; the third reads x only,
		// written by no one, but writes y again, which the second wrote).
		for _, a := range []float32{2, -1, 3} {
			if err := seq.Dispatch(k, groups(n, 64), Push(n, a), In(bx), Out(by)); err != nil {
				t.Fatal(err)
			}
		}
		if seq.Barriers() != 2 {
			t.Fatalf("barriers = %d, want 2", seq.Barriers())
		}
		for run := 1; run <= 2; run++ {
			if err := seq.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			got, err := Download[float32](by, 0, n)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				want := y[i] + float32(run)*4*x[i]
				if math.Abs(float64(got[i]-want)) > 1e-4 {
					t.Fatalf("n=%d run %d element %d: got %v want %v", n, run, i, got[i], want)
				}
			}
		}
		ts, err := seq.Timings()
		if d.Info().Timestamps {
			if err != nil || len(ts) != 3 {
				t.Fatalf("timings: %v %v", ts, err)
			}
		}
		seq.Close()
		bx.Free()
		by.Free()
	}
	if objs, bytes := d.LiveObjects(); objs != 0 || bytes != 0 {
		t.Fatalf("leaked %d objects, %d bytes", objs, bytes)
	}
}

func TestIndependentDispatchesNeedNoBarrier(t *testing.T) {
	d := openTest(t)
	k := axpyKernel(t, d, 64)
	x, _ := d.NewBuffer(4096)
	y, _ := d.NewBuffer(4096)
	defer x.Free()
	defer y.Free()
	seq := d.NewSequence()
	defer seq.Close()
	// Two dispatches writing disjoint halves of y: no barrier.
	seq.Dispatch(k, groups(512, 64), Push(512, 1.0), In(x), Binding{Buf: y, Offset: 0, Size: 2048, Write: true})
	seq.Dispatch(k, groups(512, 64), Push(512, 1.0), In(x), Binding{Buf: y, Offset: 2048, Size: 2048, Write: true})
	if seq.Barriers() != 0 {
		t.Fatalf("barriers = %d, want 0", seq.Barriers())
	}
	// Reading what the first wrote: one barrier.
	seq.Dispatch(k, groups(512, 64), Push(512, 1.0), Binding{Buf: y, Size: 2048}, Binding{Buf: x, Write: true})
	if seq.Barriers() != 1 {
		t.Fatalf("barriers = %d, want 1", seq.Barriers())
	}
	if err := seq.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestDispatchErrors(t *testing.T) {
	d := openTest(t)
	k := axpyKernel(t, d, 64)
	b, _ := d.NewBuffer(64)
	defer b.Free()
	seq := d.NewSequence()
	defer seq.Close()
	cases := []struct {
		name string
		err  error
	}{
		{"push size", seq.Dispatch(k, [3]uint32{1, 1, 1}, Push(1), In(b), Out(b))},
		{"buffer count", seq.Dispatch(k, [3]uint32{1, 1, 1}, Push(1, 1.0), In(b))},
		{"zero groups", seq.Dispatch(k, [3]uint32{0, 1, 1}, Push(1, 1.0), In(b), Out(b))},
		{"range", seq.Dispatch(k, [3]uint32{1, 1, 1}, Push(1, 1.0), Binding{Buf: b, Offset: 32, Size: 64}, Out(b))},
		{"alignment", seq.Dispatch(k, [3]uint32{1, 1, 1}, Push(1, 1.0), Binding{Buf: b, Offset: 4}, Out(b))},
	}
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	if seq.Len() != 0 {
		t.Fatalf("failed dispatches were recorded: %d", seq.Len())
	}
}

func TestConcurrentSequences(t *testing.T) {
	d := openTest(t)
	k := axpyKernel(t, d, 64)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			x, _ := BufferFrom(d, []float32{float32(g), 1, 2})
			y, _ := BufferFrom(d, []float32{0, 0, 0})
			defer x.Free()
			defer y.Free()
			seq := d.NewSequence()
			defer seq.Close()
			if err := seq.Dispatch(k, [3]uint32{1, 1, 1}, Push(3, 1.0), In(x), Out(y)); err != nil {
				errs <- err
				return
			}
			for i := 0; i < 20; i++ {
				if err := seq.Run(context.Background()); err != nil {
					errs <- err
					return
				}
			}
			got, _ := Download[float32](y, 0, 1)
			if got[0] != float32(20*g) {
				errs <- errors.New("wrong result under concurrency")
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestPush(t *testing.T) {
	b := Push(1, uint32(2), float32(1.5), true)
	if len(b) != 16 || b[0] != 1 || b[4] != 2 || b[12] != 1 {
		t.Fatalf("Push = %v", b)
	}
}
