package vk

import (
	"sync"
	"testing"
)

// TestPeakBytesConcurrent follows the high-water mark of buffer memory through
// allocations, frees and resets, and under concurrent allocation.
func TestPeakBytesConcurrent(t *testing.T) {
	d := openTest(t)
	_, base := d.LiveObjects()
	d.ResetPeakBytes()
	if got := d.PeakBytes(); got != base {
		t.Fatalf("after reset PeakBytes = %d, want the live %d", got, base)
	}
	a, err := d.NewBuffer(4096)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.NewBuffer(1000)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.PeakBytes(), base+5096; got != want {
		t.Fatalf("with two buffers PeakBytes = %d, want %d", got, want)
	}
	a.Free()
	a.Free() // a second Free must not count twice
	if got, want := d.PeakBytes(), base+5096; got != want {
		t.Fatalf("freeing keeps the mark: PeakBytes = %d, want %d", got, want)
	}
	c, err := d.NewBuffer(2000)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.PeakBytes(), base+5096; got != want {
		t.Fatalf("3000 live bytes below the mark: PeakBytes = %d, want %d", got, want)
	}
	d.ResetPeakBytes()
	if got, want := d.PeakBytes(), base+3000; got != want {
		t.Fatalf("after reset PeakBytes = %d, want the live %d", got, want)
	}
	e, err := d.NewBuffer(7)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.PeakBytes(), base+3007; got != want {
		t.Fatalf("PeakBytes = %d, want %d", got, want)
	}
	for _, x := range []*Buffer{b, c, e} {
		x.Free()
	}

	// Concurrent allocations: each goroutine holds its buffer until all
	// have allocated, so the mark must reach the sum.
	const workers, size = 8, 256
	d.ResetPeakBytes()
	var alloc, release sync.WaitGroup
	alloc.Add(workers)
	release.Add(1)
	errs := make(chan error, workers)
	var done sync.WaitGroup
	for range workers {
		done.Add(1)
		go func() {
			defer done.Done()
			buf, err := d.NewBuffer(size)
			alloc.Done()
			if err != nil {
				errs <- err
				return
			}
			release.Wait()
			buf.Free()
		}()
	}
	alloc.Wait()
	release.Done()
	done.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got, want := d.PeakBytes(), base+workers*size; got != want {
		t.Fatalf("concurrent: PeakBytes = %d, want %d", got, want)
	}
	if _, live := d.LiveObjects(); live != base {
		t.Fatalf("live bytes %d after freeing everything, want %d", live, base)
	}
}
