package vk

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/internal/checked"
)

// TestRangesNearMaxInt checks that offsets and sizes near the largest
// integers give errors naming the range and the buffer's size, not
// overflows (a wrapped off+n passed the old checks, then panicked).
func TestRangesNearMaxInt(t *testing.T) {
	d := openTest(t)
	b, err := d.NewBuffer(64)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free()
	eight := make([]byte, 8)
	checks := []struct {
		name string
		err  error
	}{
		{"Write at MaxInt64-4", b.Write(math.MaxInt64-4, eight)},
		{"Write at MaxInt64", b.Write(math.MaxInt64, eight)},
		{"Write at -1", b.Write(-1, eight)},
		{"Read at MaxInt64-4", b.Read(math.MaxInt64-4, eight)},
		{"Read at 60", b.Read(60, eight)},
		{"Upload at MaxInt", Upload(b, math.MaxInt, []float32{1})},
		{"Upload at MaxInt/4", Upload(b, math.MaxInt/4, []float32{1})},
		{"Upload at MaxInt/8+1 (float64)", Upload(b, math.MaxInt/8+1, []float64{1})},
		{"Upload at -1", Upload(b, -1, []float32{1})},
		{"staged copy at MaxInt64-2", d.staged(b, math.MaxInt64-2, eight, true)},
	}
	for _, n := range [][2]int{{math.MaxInt, 1}, {1, math.MaxInt}, {math.MaxInt / 4, 2}, {15, 2}, {-1, 1}, {0, -1}} {
		_, err := Download[float32](b, n[0], n[1])
		checks = append(checks, struct {
			name string
			err  error
		}{"Download", err})
	}
	for _, c := range checks {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if msg := c.err.Error(); !strings.Contains(msg, "64 B") || !strings.HasPrefix(msg, "vk: ") {
			t.Errorf("%s: %q does not name the buffer's size", c.name, msg)
		}
	}
	if err := b.Write(56, eight); err != nil {
		t.Errorf("a write of the last 8 bytes: %v", err)
	}
	if err := d.staged(b, 56, eight, true); err != nil {
		t.Errorf("a staged write of the last 8 bytes: %v", err)
	}
	got := make([]byte, 8)
	if err := d.staged(b, 56, got, false); err != nil {
		t.Errorf("a staged read of the last 8 bytes: %v", err)
	}
}

// TestBindingRangesNearMaxInt checks Dispatch's range check with offsets
// and sizes near MaxInt64.
func TestBindingRangesNearMaxInt(t *testing.T) {
	d := openTest(t)
	k := axpyKernel(t, d, 64)
	b, err := d.NewBuffer(256)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free()
	seq := d.NewSequence()
	defer seq.Close()
	for _, w := range []Binding{
		{Buf: b, Offset: math.MaxInt64 - 8, Size: 16},
		{Buf: b, Offset: 64, Size: math.MaxInt64},
		{Buf: b, Offset: math.MaxInt64},
		{Buf: b, Offset: math.MinInt64},
		{Buf: b, Offset: 256},
		{Buf: b, Offset: 0, Size: -64},
	} {
		err := seq.Dispatch(k, [3]uint32{1, 1, 1}, Push(1, 1.0), In(b), Binding{Buf: b, Offset: w.Offset, Size: w.Size, Write: true})
		if err == nil || !strings.Contains(err.Error(), "256 B") || !strings.Contains(err.Error(), "binding 1") {
			t.Errorf("offset %d, size %d: got %v, want an error naming binding 1 and the buffer's 256 B", w.Offset, w.Size, err)
		}
	}
	if seq.Len() != 0 {
		t.Fatalf("refused dispatches were recorded: %d", seq.Len())
	}
	if _, err := d.newTexelView(b, math.MaxInt64-8, 16, 0); err == nil || !strings.Contains(err.Error(), "256 B") {
		t.Errorf("texel view past the end: got %v", err)
	}
}

// TestNewBufferSizes checks that sizes that are not positive, or larger
// than the device-local heap, are refused before any allocation, naming
// the requested size and the heap.
func TestNewBufferSizes(t *testing.T) {
	d := openTest(t)
	info := d.Info()
	heap := info.DeviceLocalBytes
	if heap <= 0 || uint64(heap) != min(info.DeviceMemory, math.MaxInt64) {
		t.Fatalf("DeviceLocalBytes %d disagrees with DeviceMemory %d", heap, info.DeviceMemory)
	}
	for _, size := range []int64{0, -1, math.MinInt64} {
		if _, err := d.NewBuffer(size); err == nil || !strings.Contains(err.Error(), "positive") {
			t.Errorf("NewBuffer(%d): got %v", size, err)
		}
	}
	objs, _ := d.LiveObjects()
	for _, size := range []int64{heap + 1, math.MaxInt64} {
		_, err := d.NewBuffer(size)
		if !errors.Is(err, ErrOutOfMemory) || !strings.Contains(err.Error(), checked.Bytes(size)) || !strings.Contains(err.Error(), checked.Bytes(heap)) {
			t.Errorf("NewBuffer(%d): got %v, want ErrOutOfMemory naming %s and the %s heap", size, err, checked.Bytes(size), checked.Bytes(heap))
		}
	}
	if now, _ := d.LiveObjects(); now != objs {
		t.Errorf("refused buffers left %d objects", now-objs)
	}
	if err := d.CheckFootprint("the test's tensors", heap); err != nil {
		t.Errorf("a footprint of the whole heap: %v", err)
	}
	if err := d.CheckFootprint("the test's tensors", heap+1); !errors.Is(err, ErrOutOfMemory) || !strings.Contains(err.Error(), "the test's tensors") {
		t.Errorf("a footprint past the heap: %v", err)
	}
	if err := d.CheckFootprint("the test's tensors", -1); !errors.Is(err, ErrOutOfMemory) {
		t.Errorf("a negative footprint: %v", err)
	}
}
