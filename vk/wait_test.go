package vk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vk "github.com/vulkan-go/vulkan"
)

// waitIdleForTest waits, without a bound, until the device's queue is idle,
// then frees what stuck work left behind: tests call it after making work
// exceed the wait limit, so that the device closes cleanly under the
// validation layer.
func (d *Device) waitIdleForTest() {
	vk.DeviceWaitIdle(d.handle)
	d.sweep()
}

// spinner runs testdata/spin.spv, whose workgroups each keep one
// invocation busy for spinRounds rounds.
type spinner struct {
	d         *Device
	k         *Kernel
	out, flag *Buffer // the spin's output, and the stop flag it reads
	// stoppable: the host sees device memory directly, so a spin ends
	// soon after flag is set; otherwise spins are timed.
	stoppable bool
	perSec    float64 // workgroups of spinRounds rounds per second
}

// spinRounds is each spin workgroup's loop count: below the 65535 loop
// iterations after which llvmpipe ends an invocation's loops.
const spinRounds = 1 << 15

// stoppableSpin is the length of every spin on a stoppable device: far
// longer than any test waits, ended by stop.
const stoppableSpin = 10 * time.Second

// newSpinner builds the spin kernel and measures its speed. When the test
// ends it stops the spin and waits for
// the device to go idle, so that the device closes cleanly: buffers that
// spinning work uses must be freed after that, by cleanups registered
// before newSpinner.
func newSpinner(t *testing.T, d *Device) *spinner {
	t.Helper()
	code, err := os.ReadFile("testdata/spin.spv")
	if err != nil {
		t.Fatal(err)
	}
	k, err := d.Kernel(KernelSpec{Name: "spin", Code: code, Buffers: 2, PushSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	out := keepBuffer(t, d, 16)
	flag := keepBuffer(t, d, 16)
	sp := &spinner{d: d, k: k, out: out, flag: flag, stoppable: d.Info().HostVisible}
	t.Cleanup(func() { sp.finish(t) })
	// The first dispatch compiles the pipeline (on lavapipe, at dispatch):
	// on a loaded machine with a cold shader cache that alone can exceed a
	// test's short wait limit, so calibration runs under the default one.
	limit := d.waitLimit
	d.waitLimit = DefaultWaitTimeout
	sp.calibrate(t)
	d.waitLimit = limit
	return sp
}

// keepBuffer allocates a zeroed buffer of n bytes, freed when the test ends.
func keepBuffer(t *testing.T, d *Device, n int) *Buffer {
	t.Helper()
	b, err := BufferFrom(d, make([]byte, n))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Free)
	return b
}

// calibrate measures the spin kernel's speed with runs of about 20 ms, at
// most 40 ms, of workgroups of an eighth of spinRounds (so that it works
// under a short wait limit on a busy machine).
func (sp *spinner) calibrate(t *testing.T) {
	t.Helper()
	const short = spinRounds / 8
	// The first run may include compiling the shader: it is not timed.
	for g, first := uint64(1), true; ; {
		seq := sp.d.NewSequence()
		if err := seq.Dispatch(sp.k, sp.groups(g), Push(uint32(short)), Out(sp.out), Binding{Buf: sp.flag, Write: true}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err := seq.Run(context.Background())
		el := time.Since(start)
		seq.Close()
		if err != nil {
			t.Fatalf("calibrating the spin kernel with %d workgroups: %v", g, err)
		}
		if !first && (el >= 20*time.Millisecond || g >= 1<<30) {
			sp.perSec = float64(g) / el.Seconds() * short / spinRounds
			t.Logf("spin kernel: %.3g workgroups/s", sp.perSec)
			return
		}
		if !first {
			g *= 2
		}
		first = false
	}
}

// stop tells the spins in flight to end, where they can be told.
func (sp *spinner) stop(t *testing.T) {
	if sp.stoppable {
		if err := Upload(sp.flag, 0, []uint32{1}); err != nil {
			t.Error(err)
		}
	}
}

// finish ends the spins in flight (stop, else waiting for them) and waits
// until the device is idle.
func (sp *spinner) finish(t *testing.T) {
	if sp.d.closed.Load() {
		return
	}
	start := time.Now()
	sp.stop(t)
	sp.d.waitIdleForTest()
	if err := Upload(sp.flag, 0, []uint32{0}); err != nil {
		t.Error(err)
	}
	t.Logf("the spin ended %v after it was told to", time.Since(start))
}

// groups spreads g workgroups over the first two dimensions.
func (sp *spinner) groups(g uint64) [3]uint32 {
	x := min(g, uint64(sp.d.Info().MaxGroupCount[0]))
	return [3]uint32{uint32(x), uint32((g + x - 1) / x), 1}
}

// dispatch appends a spin to seq: about dur long where spins cannot be
// stopped, until stop (or stoppableSpin) where they can.
func (sp *spinner) dispatch(t *testing.T, seq *Sequence, dur time.Duration) {
	t.Helper()
	if sp.stoppable {
		dur = stoppableSpin
	}
	g := min(max(uint64(sp.perSec*dur.Seconds()), 1), 1<<24)
	if err := seq.Dispatch(sp.k, sp.groups(g), Push(uint32(spinRounds)), Out(sp.out), Binding{Buf: sp.flag, Write: true}); err != nil {
		t.Fatal(err)
	}
}

// TestWaitTimeoutNamesKernel runs a dispatch of about a second under a wait
// limit of 100 ms: Run returns an error naming the kernel soon after the
// limit, the stuck sequence refuses Run and Reset, Close returns at once,
// a staged copy queued behind it times out naming its size, and Device.Close
// refuses to destroy the device until the work has finished.
func TestWaitTimeoutNamesKernel(t *testing.T) {
	const limit = 100 * time.Millisecond
	d := openTestWith(t, Options{WaitTimeout: limit})
	if d.WaitTimeout() != limit {
		t.Fatalf("WaitTimeout() = %v, want %v", d.WaitTimeout(), limit)
	}
	spare := keepBuffer(t, d, 64) // a staged copy's target, freed after the spin
	sp := newSpinner(t, d)
	k := axpyKernel(t, d, 64)
	baseline, _ := d.LiveObjects()
	// victim is written by the stuck work and freed while it is stuck.
	victim, err := BufferFrom(d, make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	seq := d.NewSequence()
	seq.EnableTimestamps()
	sp.dispatch(t, seq, 2*time.Second)
	if err := seq.Dispatch(k, [3]uint32{1, 1, 1}, Push(3, 1.0), In(sp.out), Out(victim)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = seq.Run(context.Background())
	el := time.Since(start)
	t.Logf("Run returned after %v: %v", el, err)
	if !errors.Is(err, ErrWaitTimeout) || !strings.Contains(err.Error(), "spin") || !strings.Contains(err.Error(), limit.String()) {
		t.Fatalf("Run: got %v, want a timeout naming kernel spin and %v", err, limit)
	}
	// Freeing a buffer while work is stuck must not release its memory
	// under that work: it stays allocated until the work has finished.
	before, _ := d.LiveObjects()
	victim.Free()
	if after, _ := d.LiveObjects(); after != before {
		t.Errorf("a buffer freed while work is stuck was released at once (%d -> %d live objects)", before, after)
	}
	// lavapipe waits for the device inside vkGetQueryPoolResults, so the
	// error cannot name the dispatch there.
	if d.Info().Timestamps && !strings.Contains(err.Error(), "dispatch 0 (kernel spin)") && !strings.Contains(err.Error(), "could not be read") {
		t.Errorf("with timestamps the error should name dispatch 0 or say why it cannot: %v", err)
	}
	if el > 600*time.Millisecond {
		t.Errorf("Run took %v under a wait limit of %v", el, limit)
	}
	for name, f := range map[string]func() error{
		"Run":   func() error { return seq.Run(context.Background()) },
		"Reset": seq.Reset,
	} {
		start := time.Now()
		err := f()
		if !errors.Is(err, ErrWaitTimeout) || !strings.Contains(err.Error(), "stuck") || time.Since(start) > 50*time.Millisecond {
			t.Errorf("%s of a stuck sequence: got %v after %v, want a prompt error saying it is stuck", name, err, time.Since(start))
		}
	}
	checkStuckCopy(t, d, spare)
	start = time.Now()
	seq.Close()
	if el := time.Since(start); el > 50*time.Millisecond {
		t.Errorf("Close of a stuck sequence took %v", el)
	}
	start = time.Now()
	err = d.Close()
	if !errors.Is(err, ErrWaitTimeout) || !strings.Contains(err.Error(), "spin") || time.Since(start) > 100*time.Millisecond {
		t.Errorf("Device.Close with stuck work: got %v after %v, want a prompt error naming it", err, time.Since(start))
	}
	sp.finish(t)
	if objs, _ := d.LiveObjects(); objs != baseline {
		t.Errorf("%d live objects once the stuck work finished, want %d", objs, baseline)
	}
}

// checkStuckCopy makes a staged copy into b, queued behind stuck work on
// d, and checks that it times out with an error naming a buffer copy.
func checkStuckCopy(t *testing.T, d *Device, b *Buffer) {
	t.Helper()
	start := time.Now()
	err := d.staged(b, 0, make([]byte, 8), true)
	if !errors.Is(err, ErrWaitTimeout) || !strings.Contains(err.Error(), "buffer copy of 8 B") {
		t.Errorf("staged copy behind stuck work: got %v, want a timeout naming a buffer copy of 8 B", err)
	}
	if el := time.Since(start); el > 600*time.Millisecond {
		t.Errorf("staged copy took %v under a wait limit of %v", el, d.WaitTimeout())
	}
}

// TestCancelledRun cancels a Run of a long dispatch: Run returns promptly,
// a Run on an ended context submits nothing, and Reset waits only until the
// wait limit from the submission, then names the sequence's kernels.
func TestCancelledRun(t *testing.T) {
	const limit = 300 * time.Millisecond
	d := openTestWith(t, Options{WaitTimeout: limit})
	x := keepBuffer(t, d, 16) // written by the spinning sequence: freed after it
	sp := newSpinner(t, d)
	k := axpyKernel(t, d, 64)
	seq := d.NewSequence()
	sp.dispatch(t, seq, 2*time.Second)
	if err := seq.Dispatch(k, [3]uint32{1, 1, 1}, Push(3, 1.0), In(sp.out), Out(x)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var cancelled atomic.Int64
	time.AfterFunc(50*time.Millisecond, func() {
		cancelled.Store(time.Now().UnixNano())
		cancel()
	})
	start := time.Now()
	err := seq.Run(ctx)
	latency := time.Duration(time.Now().UnixNano() - cancelled.Load())
	t.Logf("Run returned %v after the cancellation: %v", latency, err)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: got %v, want context.Canceled", err)
	}
	if latency > 100*time.Millisecond {
		t.Errorf("Run returned %v after its context was cancelled", latency)
	}
	idle := d.NewSequence()
	defer idle.Close()
	if err := idle.Dispatch(k, [3]uint32{1, 1, 1}, Push(3, 1.0), In(sp.out), Out(x)); err != nil {
		t.Fatal(err)
	}
	if err := idle.Run(ctx); !errors.Is(err, context.Canceled) || len(d.pending()) != 1 {
		t.Errorf("Run on a cancelled context: got %v with %d submissions in flight, want context.Canceled and 1", err, len(d.pending()))
	}
	err = seq.Reset()
	el := time.Since(start)
	t.Logf("Reset returned %v after the submission: %v", el, err)
	if !errors.Is(err, ErrWaitTimeout) || !strings.Contains(err.Error(), "2 dispatches (kernels spin, axpy)") {
		t.Errorf("Reset: got %v, want a timeout naming 2 dispatches of spin and axpy", err)
	}
	if el < limit || el > limit+250*time.Millisecond {
		t.Errorf("Reset returned %v after the submission, want the wait limit %v from it", el, limit)
	}
	start = time.Now()
	seq.Close()
	if el := time.Since(start); el > 50*time.Millisecond {
		t.Errorf("Close of a stuck sequence took %v", el)
	}
}

// TestCancelledRunThenClose cancels a Run whose work finishes (is stopped
// or, where spins cannot be stopped, ends) within the wait limit: Close
// waits for it and frees everything.
func TestCancelledRunThenClose(t *testing.T) {
	d := openTestWith(t, Options{WaitTimeout: 5 * time.Second})
	sp := newSpinner(t, d)
	baseline, _ := d.LiveObjects()
	seq := d.NewSequence()
	sp.dispatch(t, seq, 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := seq.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: got %v, want context.DeadlineExceeded", err)
	}
	if len(d.pending()) != 1 {
		t.Fatalf("%d submissions tracked after a cancelled Run, want 1", len(d.pending()))
	}
	time.AfterFunc(100*time.Millisecond, func() { sp.stop(t) })
	start := time.Now()
	seq.Close()
	t.Logf("Close waited %v for the cancelled run", time.Since(start))
	if objs, _ := d.LiveObjects(); objs != baseline || len(d.pending()) != 0 {
		t.Errorf("after Close: %d live objects (want %d), %d submissions tracked (want 0)", objs, baseline, len(d.pending()))
	}
}

// TestDeviceLost marks a device lost (as a VK_ERROR_DEVICE_LOST from any
// wait or submission does) and checks that later submissions fail at once
// with ErrDeviceLost.
func TestDeviceLost(t *testing.T) {
	d := openTest(t)
	k := axpyKernel(t, d, 64)
	x, _ := BufferFrom(d, []float32{1, 2, 3})
	defer x.Free()
	y, _ := BufferFrom(d, []float32{0, 0, 0})
	defer y.Free()
	seq := d.NewSequence()
	defer seq.Close()
	if err := seq.Dispatch(k, [3]uint32{1, 1, 1}, Push(3, 1.0), In(x), Out(y)); err != nil {
		t.Fatal(err)
	}
	if err := seq.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := d.check("vkWaitForFences", vk.ErrorDeviceLost)
	if !errors.Is(err, ErrDeviceLost) || !strings.Contains(err.Error(), "vkWaitForFences") || !d.lost.Load() {
		t.Fatalf("check(VK_ERROR_DEVICE_LOST) = %v, lost = %v", err, d.lost.Load())
	}
	defer d.lost.Store(false) // the device is not really lost: let it close
	if err := seq.Run(context.Background()); !errors.Is(err, ErrDeviceLost) || !strings.Contains(err.Error(), "vkQueueSubmit") {
		t.Errorf("Run on a lost device: got %v", err)
	}
	if _, err := d.copyBuffer(x.handle, 0, y.handle, 0, 4); !errors.Is(err, ErrDeviceLost) {
		t.Errorf("copy on a lost device: got %v", err)
	}
	if !errors.Is(&ResultError{Call: "vkQueueSubmit", Result: vk.ErrorDeviceLost}, ErrDeviceLost) {
		t.Error("a ResultError of VK_ERROR_DEVICE_LOST does not match ErrDeviceLost")
	}
}

// TestWaitTimeoutSetting checks how the wait limit is chosen: the option,
// else ISAB_WAIT_TIMEOUT, else the default; bad values are errors naming
// their source.
func TestWaitTimeoutSetting(t *testing.T) {
	cases := []struct {
		opt  time.Duration
		env  string
		want time.Duration
		err  string
	}{
		{0, "", DefaultWaitTimeout, ""},
		{0, "90s", 90 * time.Second, ""},
		{0, " 1m30s ", 90 * time.Second, ""},
		{2 * time.Second, "bogus", 2 * time.Second, ""},
		{0, "bogus", 0, WaitTimeoutEnv},
		{0, "10", 0, WaitTimeoutEnv},
		{0, "0s", 0, WaitTimeoutEnv},
		{0, "-5s", 0, WaitTimeoutEnv},
		{-time.Second, "", 0, "Options.WaitTimeout"},
	}
	for _, c := range cases {
		t.Setenv(WaitTimeoutEnv, c.env)
		got, err := resolveWaitTimeout(c.opt)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("option %v, %s=%q: got %v, %v; want an error naming %s", c.opt, WaitTimeoutEnv, c.env, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("option %v, %s=%q: got %v, %v; want %v", c.opt, WaitTimeoutEnv, c.env, got, err, c.want)
		}
	}
	t.Setenv(WaitTimeoutEnv, "soon")
	if _, err := Open(Options{Validation: true}); err == nil || !strings.Contains(err.Error(), WaitTimeoutEnv) {
		t.Errorf("Open with %s=soon: got %v, want an error naming the variable", WaitTimeoutEnv, err)
	}
	t.Setenv(WaitTimeoutEnv, "250ms")
	if d := openTest(t); d.WaitTimeout() != 250*time.Millisecond {
		t.Errorf("%s=250ms gave a wait limit of %v", WaitTimeoutEnv, d.WaitTimeout())
	}
}

// TestDescribeKernels checks how errors name a sequence's kernels.
func TestDescribeKernels(t *testing.T) {
	var many []string
	for i := 0; i < 12; i++ {
		many = append(many, fmt.Sprintf("k%d", i), "common")
	}
	cases := []struct {
		names []string
		want  string
	}{
		{[]string{"spin"}, "a sequence of 1 dispatch (kernel spin)"},
		{[]string{"a", "b", "a"}, "a sequence of 3 dispatches (kernels a, b)"},
		{many, "a sequence of 24 dispatches (kernels k0, common, k1, k2, k3, k4, k5, k6 and 5 more)"},
	}
	for _, c := range cases {
		if got := describeKernels(c.names); got != c.want {
			t.Errorf("describeKernels(%q) = %q, want %q", c.names, got, c.want)
		}
	}
}
