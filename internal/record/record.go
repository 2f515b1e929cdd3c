// Package record records the forward pass of a model built from package
// ops's kernels into one vk.Sequence, so that a model's pass reads like its
// PyTorch forward: package isab's ISAB and package settransformer's blocks
// both record through it.
//
// A Recorder owns the sequence, the intermediate activations (Act) it
// allocates and the attention's partial buffers, and labels every dispatch
// with the step of the pass it belongs to (Step). Its methods keep the
// first error and do nothing after it (as bufio.Writer does), so that a
// pass is written as a list of operations with one error check at the end
// (Err):
//
//	r.Step("q1")
//	q := r.Linear(latents, toQ)
//	...
//	if err := r.Err(); err != nil { ... }
package record

import (
	"errors"
	"fmt"
	"slices"

	"github.com/isab-vk/isab-vk/ops"
	"github.com/isab-vk/isab-vk/vk"
)

// Recorder records one forward pass over a batch of sets. It is not safe
// for concurrent use; Close frees what it holds.
type Recorder struct {
	ops    *ops.Ops
	seq    *vk.Sequence
	batch  int
	half   bool
	step   string
	labels []string // the step of each dispatch
	temps  []*vk.Buffer
	// actBytes and scratchBytes count what the recorder allocated for
	// activations and for attention partial results.
	actBytes, scratchBytes int64
	// reuse holds the two partial buffers that every Attention shares
	// (see ops.Attention); calls counts the requests for them.
	reuse [2]*vk.Buffer
	calls int
	err   error
}

// New starts recording a pass over batch sets on o's device, with
// activations in IEEE half floats when half is set, else float32.
func New(o *ops.Ops, batch int, half bool) *Recorder {
	return &Recorder{ops: o, seq: o.Device().NewSequence(), batch: batch, half: half}
}

// Seq is the sequence the pass is recorded into.
func (r *Recorder) Seq() *vk.Sequence { return r.seq }

// Step names the step of the pass that the following dispatches belong
// to (see Labels).
func (r *Recorder) Step(name string) { r.step = name }

// Labels returns the step of each dispatch recorded so far, in order.
func (r *Recorder) Labels() []string { return r.labels }

// Err returns the first error of the pass, naming the step it happened
// in, or nil.
func (r *Recorder) Err() error { return r.err }

// ActivationBytes is the device memory the recorder allocated for
// activations (Alloc, Input, Target, and the outputs of its operations).
func (r *Recorder) ActivationBytes() int64 { return r.actBytes }

// ScratchBytes is the device memory the recorder allocated for the
// attentions' partial results.
func (r *Recorder) ScratchBytes() int64 { return r.scratchBytes }

// fail keeps err as the pass's error unless there is one already.
func (r *Recorder) fail(err error) {
	if r.err == nil && err != nil {
		r.err = fmt.Errorf("step %s: %w", r.step, err)
	}
}

// do runs one operation that records dispatches and labels them with the
// current step.
func (r *Recorder) do(op func() error) {
	if r.err != nil {
		return
	}
	n0 := r.seq.Len()
	err := op()
	for i := n0; i < r.seq.Len(); i++ {
		r.labels = append(r.labels, r.step)
	}
	r.fail(err)
}

// Release hands a's buffer to the caller: Close will not free it.
func (r *Recorder) Release(a Act) {
	if i := slices.Index(r.temps, a.Buf); i >= 0 {
		r.temps = slices.Delete(r.temps, i, i+1)
	}
}

// Close frees the sequence and every buffer the recorder allocated. It is
// safe to call more than once.
func (r *Recorder) Close() {
	if r.seq != nil {
		r.seq.Close()
		r.seq = nil
	}
	for _, t := range r.temps {
		t.Free()
	}
	r.temps = nil
	r.reuse = [2]*vk.Buffer{}
}

// newBuffer allocates a buffer of bytes that Close frees.
func (r *Recorder) newBuffer(bytes int64) (*vk.Buffer, error) {
	if r.seq == nil {
		return nil, errors.New("the recorder is closed")
	}
	b, err := r.ops.Device().NewBuffer(bytes)
	if err != nil {
		return nil, err
	}
	r.temps = append(r.temps, b)
	return b, nil
}

// elemBytes is the size of n elements, float32 or half (rounded up to
// whole 4-byte words).
func elemBytes(n int, half bool) int64 {
	if half {
		return (int64(n)*2 + 3) / 4 * 4
	}
	return int64(n) * 4
}

// Alloc allocates a dense activation of n rows of d features per batch
// element (one set of rows when shared) in the pass's precision.
func (r *Recorder) Alloc(n, d int, shared bool) Act {
	if r.err != nil {
		return Act{}
	}
	a := Batched(nil, n, d, r.half)
	if shared {
		a.Stride = 0
	}
	bytes := elemBytes(a.elems(r.batch), r.half)
	var err error
	if a.Buf, err = r.newBuffer(bytes); err != nil {
		r.fail(err)
		return Act{}
	}
	r.actBytes += bytes
	return a
}

// AllocBuffer allocates a buffer of elems elements of the pass's precision,
// for activations that a model lays out itself (views through Act).
func (r *Recorder) AllocBuffer(elems int) *vk.Buffer {
	if r.err != nil {
		return nil
	}
	bytes := elemBytes(elems, r.half)
	b, err := r.newBuffer(bytes)
	if err != nil {
		r.fail(err)
		return nil
	}
	r.actBytes += bytes
	return b
}

// scratch allocates a partial buffer for one attention.
func (r *Recorder) scratch(bytes int64) (*vk.Buffer, error) {
	b, err := r.newBuffer(bytes)
	if err == nil {
		r.scratchBytes += bytes
	}
	return b, err
}

// reused hands out the two partial buffers that successive Attentions
// share: ops.Attention asks for two distinct buffers per call, or none,
// and later work in the sequence may reuse them.
func (r *Recorder) reused(bytes int64) (*vk.Buffer, error) {
	i := r.calls % 2
	r.calls++
	if b := r.reuse[i]; b != nil && b.Size() >= bytes {
		return b, nil
	}
	b, err := r.scratch(bytes)
	if err == nil {
		r.reuse[i] = b
	}
	return b, err
}
