package vk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// Every submission to a device's queue is a work item that the device tracks
// until it sees the item's fence signal. No wait on a fence is unbounded: a
// wait ends at the latest when the work has been in flight for the device's
// wait limit (Device.WaitTimeout), counted from its submission, whoever
// waits (Run, the Reset or Close after a cancelled Run, a staged copy,
// Device.Close). Work that exceeds the limit is stuck: the GPU may still
// use its command buffer, fence, descriptors and buffers, and destroying any
// of them would be undefined behaviour, so they are kept until the fence is
// seen signalled, or leaked for good if it never is.

// WaitTimeoutEnv is the environment variable that sets the wait limit of
// devices opened with a zero Options.WaitTimeout: a Go duration such as
// "90s" or "10m".
const WaitTimeoutEnv = "ISAB_WAIT_TIMEOUT"

// DefaultWaitTimeout is the wait limit when neither Options.WaitTimeout nor
// WaitTimeoutEnv sets one: far beyond any single forward pass, short enough
// that a hung device does not hang its caller for good.
const DefaultWaitTimeout = 10 * time.Minute

// pollSlice is how often a wait with a context looks at the context: a
// cancelled Run returns within about this long.
const pollSlice = 10 * time.Millisecond

// resolveWaitTimeout picks the wait limit: opt when positive, else
// WaitTimeoutEnv when set, else DefaultWaitTimeout.
func resolveWaitTimeout(opt time.Duration) (time.Duration, error) {
	if opt < 0 {
		return 0, fmt.Errorf("vk: Options.WaitTimeout is negative (%v)", opt)
	}
	if opt > 0 {
		return opt, nil
	}
	v := strings.TrimSpace(os.Getenv(WaitTimeoutEnv))
	if v == "" {
		return DefaultWaitTimeout, nil
	}
	t, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("vk: %s=%q is not a duration such as \"90s\" or \"10m\"", WaitTimeoutEnv, v)
	}
	if t <= 0 {
		return 0, fmt.Errorf("vk: %s=%q: the wait limit must be positive", WaitTimeoutEnv, v)
	}
	return t, nil
}

// WaitTimeout is the device's wait limit: the longest that any wait on its
// work may take, counted from the work's submission (see Options.WaitTimeout).
func (d *Device) WaitTimeout() time.Duration { return d.waitLimit }

// work is one submission that the device has not yet seen finish.
type work struct {
	fence vk.Fence
	start time.Time
	what  func() string // names the work in errors: kernels, or a copy's size
	stuck atomic.Bool   // a wait ran out of time on it (set by the waiter)
	done  atomic.Bool
	// release frees what the work uses once its fence has signalled; set
	// by owners that gave up on it (orphan) and run by whoever sees it
	// finish. Guarded by Device.workMu.
	release []func()
}

// submitWork submits cmd, signalling fence, and starts tracking it. It
// fails at once on a device that was lost.
func (d *Device) submitWork(cmd vk.CommandBuffer, fence vk.Fence, what func() string) (*work, error) {
	if d.lost.Load() {
		return nil, d.lostError("vkQueueSubmit", true)
	}
	d.sweep()
	d.submitMu.Lock()
	r := d.queueSubmit(cmd, fence)
	start := time.Now()
	d.submitMu.Unlock()
	if err := d.check("vkQueueSubmit", r); err != nil {
		return nil, err
	}
	w := &work{fence: fence, start: start, what: what}
	d.workMu.Lock()
	d.works[w] = struct{}{}
	d.workMu.Unlock()
	return w, nil
}

// await waits until w finishes, its wait limit runs out, or ctx (which may
// be nil) ends. It returns nil when w finished, ctx.Err(), an error
// wrapping ErrWaitTimeout (w is then stuck and stays tracked) or one
// wrapping ErrDeviceLost (w is then finished: a lost device's objects may
// be destroyed).
func (d *Device) await(ctx context.Context, w *work) error {
	if w.done.Load() {
		return nil
	}
	fences := []vk.Fence{w.fence}
	for {
		left := d.waitLimit - time.Since(w.start)
		slice := max(left, 0)
		if ctx != nil && slice > pollSlice {
			slice = pollSlice
		}
		r := vk.WaitForFences(d.handle, 1, fences, vk.True, uint64(slice.Nanoseconds()))
		switch r {
		case vk.Success:
			d.finish(w)
			return nil
		case vk.Timeout:
		case vk.ErrorDeviceLost:
			err := d.check("vkWaitForFences", r)
			d.finish(w)
			return err
		default: // the work's state is unknown: keep what it uses
			d.markStuck(w)
			return check("vkWaitForFences", r)
		}
		if time.Since(w.start) >= d.waitLimit {
			d.markStuck(w)
			return d.timeoutError(w)
		}
		if ctx != nil {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
}

// poll looks once, without blocking, whether w has finished (a lost device
// counts as finished), and finishes it when it has.
func (d *Device) poll(w *work) bool {
	if w.done.Load() {
		return true
	}
	switch r := vk.GetFenceStatus(d.handle, w.fence); r {
	case vk.NotReady:
		return false
	case vk.Success:
	default:
		_ = d.check("vkGetFenceStatus", r) // marks a lost device lost
	}
	d.finish(w)
	return true
}

// finish stops tracking w and frees what its owners left to it.
func (d *Device) finish(w *work) {
	d.workMu.Lock()
	if w.done.Swap(true) {
		d.workMu.Unlock()
		return
	}
	delete(d.works, w)
	release := w.release
	w.release = nil
	if len(release) > 0 {
		d.orphans--
	}
	if w.stuck.Load() {
		d.stuck--
	}
	if d.stuck == 0 {
		// No stuck work is left that could still use the buffers freed
		// while it ran.
		release = append(release, d.deferred...)
		d.deferred = nil
	}
	d.workMu.Unlock()
	for _, f := range release {
		f()
	}
}

// markStuck records that a wait on w ran out of time: until w is seen
// finished, buffers that are freed are kept (see deferWhileStuck).
func (d *Device) markStuck(w *work) {
	d.workMu.Lock()
	if !w.done.Load() && !w.stuck.Swap(true) {
		d.stuck++
	}
	d.workMu.Unlock()
}

// deferWhileStuck keeps release for later and reports true while some
// submission is stuck: a buffer freed then may still be read or written by
// that work (the device does not say which buffers a submission uses), so
// its memory is released only once no stuck work is left, and never if it
// never finishes.
func (d *Device) deferWhileStuck(release func()) bool {
	d.workMu.Lock()
	defer d.workMu.Unlock()
	if d.stuck == 0 {
		return false
	}
	d.deferred = append(d.deferred, release)
	return true
}

// orphan hands release to w: it runs once w is seen finished (at once when
// it already is). Owners call it when they give up on stuck work, so that
// the objects the GPU may still use outlive it.
func (d *Device) orphan(w *work, release func()) {
	d.workMu.Lock()
	if w.done.Load() {
		d.workMu.Unlock()
		release()
		return
	}
	if len(w.release) == 0 {
		d.orphans++
	}
	w.release = append(w.release, release)
	d.workMu.Unlock()
}

// sweep frees the objects of orphaned work that has finished since.
func (d *Device) sweep() {
	d.workMu.Lock()
	if d.orphans == 0 && d.stuck == 0 {
		d.workMu.Unlock()
		return
	}
	var ws []*work
	for w := range d.works {
		if len(w.release) > 0 || w.stuck.Load() {
			ws = append(ws, w)
		}
	}
	d.workMu.Unlock()
	for _, w := range ws {
		d.poll(w)
	}
}

// pending lists the work the device has not yet seen finish.
func (d *Device) pending() []*work {
	d.workMu.Lock()
	defer d.workMu.Unlock()
	ws := make([]*work, 0, len(d.works))
	for w := range d.works {
		ws = append(ws, w)
	}
	return ws
}

// settleAll waits for all tracked work, each piece until its wait limit,
// and frees what orphans left. It returns an error naming the work that
// is still unfinished.
func (d *Device) settleAll() error {
	var stuck []string
	for _, w := range d.pending() {
		if err := d.await(nil, w); err != nil && !errors.Is(err, ErrDeviceLost) {
			stuck = append(stuck, w.what())
		}
	}
	if len(stuck) == 0 {
		return nil
	}
	return fmt.Errorf("vk: closing %q: %d submission(s) did not finish within the wait limit of %v (%s); the device and its objects are left in place (leaked), and a later Close tries again: %w",
		d.info.Name, len(stuck), d.waitLimit, strings.Join(stuck, "; "), ErrWaitTimeout)
}

// check is the package's check that also marks the device lost on
// VK_ERROR_DEVICE_LOST and says so.
func (d *Device) check(call string, r vk.Result) error {
	if r == vk.ErrorDeviceLost {
		d.lost.Store(true)
		return d.lostError(call, false)
	}
	return check(call, r)
}

// lostError is the error of call on a lost device: lost during the call,
// or (earlier) refused because it was lost before.
func (d *Device) lostError(call string, earlier bool) error {
	if earlier {
		return fmt.Errorf("vk: %s on %q refused: %w earlier (VK_ERROR_DEVICE_LOST); close and reopen it", call, d.info.Name, ErrDeviceLost)
	}
	return fmt.Errorf("vk: %s on %q: %w (VK_ERROR_DEVICE_LOST); it can run no more work: close and reopen it", call, d.info.Name, ErrDeviceLost)
}

// timeoutError says that w outlived the wait limit.
func (d *Device) timeoutError(w *work) error {
	return fmt.Errorf("vk: %s did not finish within %v of its submission (the wait limit of %q: Options.WaitTimeout or %s): %w",
		w.what(), d.waitLimit, d.info.Name, WaitTimeoutEnv, ErrWaitTimeout)
}

// maxListedKernels bounds the kernel names that an error lists.
const maxListedKernels = 8

// describeKernels names a sequence of dispatches by its distinct kernel
// names, in order of first use, at most maxListedKernels of them: "a
// sequence of 12 dispatches (kernels a, b and 3 more)".
func describeKernels(names []string) string {
	var distinct []string
	seen := map[string]bool{}
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			distinct = append(distinct, n)
		}
	}
	list := strings.Join(distinct, ", ")
	if len(distinct) > maxListedKernels {
		list = fmt.Sprintf("%s and %d more", strings.Join(distinct[:maxListedKernels], ", "), len(distinct)-maxListedKernels)
	}
	noun := "kernels"
	if len(distinct) == 1 {
		noun = "kernel"
	}
	plural := "es"
	if len(names) == 1 {
		plural = ""
	}
	return fmt.Sprintf("a sequence of %d dispatch%s (%s %s)", len(names), plural, noun, list)
}

// probeWait bounds how long an error message waits to learn which dispatch
// of a timed-out sequence is unfinished.
const probeWait = 20 * time.Millisecond

// queryProbe reads which end-of-dispatch timestamps of a sequence's query
// pool are available (vkGetQueryPoolResults with
// VK_QUERY_RESULT_WITH_AVAILABILITY_BIT and without the WAIT bit), for
// errors about work that did not finish. Drivers may block inside that call
// all the same (lavapipe waits for the device to go idle), so the call runs
// on its own goroutine and the caller waits for it at most probeWait. A
// call still blocked goes on in the background: the pool's owner destroys
// the pool through destroy, which leaves it to that call when it is in
// flight, and Device.Close waits for such calls once the device is idle.
type queryProbe struct {
	d    *Device
	pool vk.QueryPool
	n    int // timestamps 1..n end dispatches 0..n-1; 0 is the start

	mu     sync.Mutex
	busy   bool // a call is in flight
	doomed bool // destroy the pool when that call returns
}

// firstUnavailable returns the first dispatch whose end timestamp is not
// available, or -1 when all are. It fails when the driver does not answer
// within probeWait, or while an earlier call is still blocked.
func (p *queryProbe) firstUnavailable() (int, error) {
	p.mu.Lock()
	if p.busy {
		p.mu.Unlock()
		return -1, errors.New("could not be read: the driver is still answering an earlier query")
	}
	p.busy = true
	p.mu.Unlock()
	res := make(chan int, 1)
	p.d.probes.Add(1)
	go func() {
		defer p.d.probes.Done()
		res <- p.read()
		p.mu.Lock()
		p.busy = false
		doomed := p.doomed
		p.mu.Unlock()
		if doomed {
			vk.DestroyQueryPool(p.d.handle, p.pool, nil)
		}
	}()
	timer := time.NewTimer(probeWait)
	defer timer.Stop()
	select {
	case i := <-res:
		return i, nil
	case <-timer.C:
		return -1, fmt.Errorf("could not be read within %v", probeWait)
	}
}

// read asks the driver for the availability of the end timestamps.
func (p *queryProbe) read() int {
	raw := make([]byte, 16*p.n) // per query: the value, then its availability
	r := vk.GetQueryPoolResults(p.d.handle, p.pool, 1, uint32(p.n), uint(len(raw)), unsafe.Pointer(&raw[0]), 16,
		vk.QueryResultFlags(vk.QueryResult64Bit|vk.QueryResultWithAvailabilityBit))
	if r != vk.Success && r != vk.NotReady {
		_ = p.d.check("vkGetQueryPoolResults", r)
		return -1
	}
	for i := 0; i < p.n; i++ {
		if binary.LittleEndian.Uint64(raw[16*i+8:]) == 0 {
			return i
		}
	}
	return -1
}

// destroy destroys the query pool, at once or, while a call is in flight,
// when that call returns. The work that used the pool must have finished.
func (p *queryProbe) destroy() {
	p.mu.Lock()
	if p.busy {
		p.doomed = true
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	vk.DestroyQueryPool(p.d.handle, p.pool, nil)
}
