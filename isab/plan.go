package isab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/isab-vk/isab-vk/internal/record"
)

// ForwardOption adds an optional input to Forward.
type ForwardOption func(*forwardArgs)

type forwardArgs struct {
	mask    *Tensor
	latents *Tensor
	stages  *[]StageTime
	// chunkRows, when positive, caps the rows of x per chunk (tests use
	// it to take the path of large inputs on small ones; see chunkRows).
	chunkRows int
}

// StageTime is the GPU time of one dispatch of a forward pass.
type StageTime struct {
	Kernel string // the shader
	// Stage is the step of the pass the dispatch belongs to: q1, kv1
	// (attn1's keys and values: the latents' and x's), attn1, out1, kv2,
	// q2, attn2, out2, or convert (fp16 only).
	Stage string
	Time  time.Duration
}

// WithStageTimes asks Forward to record a GPU timestamp after every dispatch
// and store the per-dispatch times in *dst. It costs a little time, and
// leaves *dst empty on devices without timestamps.
func WithStageTimes(dst *[]StageTime) ForwardOption { return func(a *forwardArgs) { a.stages = dst } }

// withChunkRows makes the pass go through x in chunks of at most n rows of
// every batch element, as it does on its own for large inputs.
func withChunkRows(n int) ForwardOption { return func(a *forwardArgs) { a.chunkRows = n } }

// WithMask passes a key mask [batch, n] (true = keep) for attn1: masked
// positions of x are not attended to by the latents. A row with every
// position masked gives the uniform average over all keys, as in PyTorch.
func WithMask(mask *Tensor) ForwardOption { return func(a *forwardArgs) { a.mask = mask } }

// WithLatents passes the latents for a model built without learned ones:
// [m, dim], shared across the batch, or [batch, m, dim].
func WithLatents(l *Tensor) ForwardOption { return func(a *forwardArgs) { a.latents = l } }

// Forward runs the block on x [batch, n, dim] and returns out [batch, n, dim]
// and the updated latents [batch, m, dim], both on the device; the caller
// frees them. The whole pass is one submission with no host round trip.
// To run the same shapes again and again without recording the pass and
// allocating its temporaries each time, use Prepare.
func (m *Model) Forward(ctx context.Context, x *Tensor, opts ...ForwardOption) (out, lat *Tensor, err error) {
	pl, err := m.Prepare(x, opts...)
	if err != nil {
		return nil, nil, err
	}
	defer pl.Close()
	if err := pl.Run(ctx); err != nil {
		return nil, nil, err
	}
	out, lat = pl.out, pl.lat
	pl.out, pl.lat = nil, nil // handed to the caller
	return out, lat, nil
}

// Plan is one forward pass recorded for fixed input tensors, with its
// temporaries and outputs allocated: Run replays the recorded command
// buffer, reading whatever x (and the mask and latents) hold at that time.
// A Plan is not safe for concurrent use; Close frees it.
type Plan struct {
	rec      *record.Recorder // the sequence, its step labels and temporaries
	out, lat *Tensor
	stages   *[]StageTime
}

// Prepare records the forward pass over x and the options' mask and latents
// (see Forward) without running it. The plan keeps references to those
// tensors: they must stay alive, unchanged in shape, until the plan is
// closed. With WithStageTimes, every Run stores its per-dispatch times.
func (m *Model) Prepare(x *Tensor, opts ...ForwardOption) (*Plan, error) {
	var a forwardArgs
	for _, o := range opts {
		o(&a)
	}
	in, err := m.inputs(x, a)
	if err != nil {
		return nil, err
	}
	return m.record(in, a)
}

// Run runs the recorded pass once; its results are in Out and Latents.
func (p *Plan) Run(ctx context.Context) error {
	if p.rec == nil {
		return errors.New("isab: Run on a closed plan")
	}
	seq := p.rec.Seq()
	if err := seq.Run(ctx); err != nil {
		return fmt.Errorf("isab: running the forward pass: %w", err)
	}
	if p.stages != nil {
		*p.stages = (*p.stages)[:0]
		if ts, err := seq.Timings(); err == nil {
			labels := p.rec.Labels()
			for i, name := range seq.Names() {
				*p.stages = append(*p.stages, StageTime{Kernel: name, Stage: labels[i], Time: ts[i]})
			}
		}
	}
	return nil
}

// Kernels maps each step of the recorded pass ("q1", "attn1", ...) to the
// names of the kernels that the step dispatches, in order of first use,
// each name once. It is nil after Close.
func (p *Plan) Kernels() map[string][]string {
	if p.rec == nil {
		return nil
	}
	out := map[string][]string{}
	labels := p.rec.Labels()
	for i, name := range p.rec.Seq().Names() {
		step := labels[i]
		if !slices.Contains(out[step], name) {
			out[step] = append(out[step], name)
		}
	}
	return out
}

// Out is the plan's output [batch, n, dim], owned by the plan and
// overwritten by every Run.
func (p *Plan) Out() *Tensor { return p.out }

// Latents is the plan's updated latents [batch, m, dim], owned by the plan
// and overwritten by every Run.
func (p *Plan) Latents() *Tensor { return p.lat }

// Close frees the plan's sequence, temporaries and outputs. It is safe to
// call more than once.
func (p *Plan) Close() {
	if p.rec != nil {
		p.rec.Close()
		p.rec = nil
	}
	p.out.Free()
	p.lat.Free()
	p.out, p.lat = nil, nil
}
