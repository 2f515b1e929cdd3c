package isab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

// Pool runs one ISAB block on several devices at once. A forward pass
// splits the batch into contiguous shards, one per device (see Split),
// runs every shard on its own device from its own goroutine (each device
// submits to its own queue), and gathers out and the latents in batch
// order. The mask and batched latents [batch, m, dim] are split the same
// way; shared latents [m, dim] go to every device whole.
//
// Every device holds its own copy of the weights in the precision it
// resolves for itself (see Precisions): with Auto, or FP32, a pool of
// unlike devices (one with fp16 storage, one without) runs each shard in
// whatever its device picks, so the rows of the result may carry different
// rounding; FP16 is refused unless every device has 16-bit storage.
//
// A pass that fails on one device (an error, or the context ending)
// cancels the others, waits for every goroutine, and returns an error
// naming the device; ForwardHost then frees what the pass allocated on
// every device (work already submitted to a device cannot be recalled:
// freeing waits for it, within the device's vk.Options.WaitTimeout). A
// Pool is safe for concurrent use by several goroutines.
type Pool struct {
	models []*Model
	cfg    Config
	// hook, when set (tests), runs in each device's goroutine before each
	// stage of a pass ("upload", "record", "run", "read") with the
	// device's position in the pool; an error from it fails that device
	// as a device error would.
	hook func(ctx context.Context, dev int, stage string) error
}

// LoadOn reads a weights file once (see Load) and uploads it to every
// device of devs, each in the precision that opts.Precision resolves to on
// that device. The pool does not own the devices: close it before them.
func LoadOn(devs []*vk.Device, path string, opts Options) (*Pool, error) {
	f, err := safetensors.ReadAnyFile(path)
	if err != nil {
		return nil, fmt.Errorf("isab: loading weights: %w", err)
	}
	p, err := LoadFileOn(devs, f, opts)
	if err != nil {
		return nil, fmt.Errorf("%w (weights %s)", err, path)
	}
	return p, nil
}

// LoadFileOn is LoadOn for an already parsed safetensors file.
func LoadFileOn(devs []*vk.Device, f *safetensors.File, opts Options) (*Pool, error) {
	if len(devs) == 0 {
		return nil, errors.New("isab: a pool needs at least one device")
	}
	var models []*Model
	for i, d := range devs {
		if d == nil {
			closeModels(models)
			return nil, fmt.Errorf("isab: pool device %d is nil", i)
		}
		m, err := LoadFile(d, f, opts)
		if err != nil {
			closeModels(models)
			return nil, fmt.Errorf("isab: pool device %d (%s): %w", i, d.Info().Name, err)
		}
		models = append(models, m)
	}
	return &Pool{models: models, cfg: models[0].cfg}, nil
}

// NewPool makes a pool of models that hold the same weights, one per
// device, and takes ownership of them: the pool's Close closes them, and
// so does NewPool when it refuses them (none, a nil one, the same model
// twice, or models of different configurations). Models may differ in
// precision (see Pool).
func NewPool(models ...*Model) (*Pool, error) {
	if len(models) == 0 {
		return nil, errors.New("isab: a pool needs at least one model")
	}
	for i, m := range models {
		if m == nil {
			closeModels(models)
			return nil, fmt.Errorf("isab: pool model %d is nil", i)
		}
		if j := slices.Index(models, m); j < i {
			closeModels(models)
			return nil, fmt.Errorf("isab: pool model %d is model %d again", i, j)
		}
		if m.cfg != models[0].cfg {
			closeModels(models)
			return nil, fmt.Errorf("isab: pool model %d has configuration %v, model 0 has %v", i, m.cfg, models[0].cfg)
		}
	}
	return &Pool{models: append([]*Model(nil), models...), cfg: models[0].cfg}, nil
}

// closeModels closes every model of ms once, however often it appears.
func closeModels(ms []*Model) {
	for i, m := range ms {
		if m != nil && slices.Index(ms, m) == i {
			m.Close()
		}
	}
}

// Close frees every device's model. The devices stay open.
func (p *Pool) Close() {
	closeModels(p.models)
	p.models = nil
}

// Config returns the block's configuration.
func (p *Pool) Config() Config { return p.cfg }

// Devices lists the pool's devices, in the order the batch is split over.
func (p *Pool) Devices() []*vk.Device {
	devs := make([]*vk.Device, len(p.models))
	for i, m := range p.models {
		devs[i] = m.dev
	}
	return devs
}

// Models lists the pool's models, one per device, owned by the pool.
func (p *Pool) Models() []*Model { return append([]*Model(nil), p.models...) }

// Precisions returns the precision each device runs in (FP32 or FP16),
// in the order of Devices.
func (p *Pool) Precisions() []Precision {
	ps := make([]Precision, len(p.models))
	for i, m := range p.models {
		ps[i] = m.Precision()
	}
	return ps
}

// Split returns how many batch elements of a batch of the given size each
// device takes, in the order of Devices: contiguous shards as even as
// possible, the first devices taking one more where the batch does not
// divide evenly, and 0 (an idle device) where the batch is smaller than
// the pool.
func (p *Pool) Split(batch int) []int {
	return splitBatch(batch, len(p.models))
}

func splitBatch(batch, k int) []int {
	counts := make([]int, k)
	if batch <= 0 {
		return counts
	}
	for i := range counts {
		counts[i] = batch / k
		if i < batch%k {
			counts[i]++
		}
	}
	return counts
}

// ForwardHost runs the block on in across the pool and returns out
// [batch, n, dim] and the latents [batch, m, dim] in batch order, as
// Model.ForwardHost does on one device.
func (p *Pool) ForwardHost(ctx context.Context, in *Input) (out, lat []float32, err error) {
	pl, err := p.Prepare(ctx, in)
	if err != nil {
		return nil, nil, err
	}
	defer pl.Close()
	if err := pl.Run(ctx); err != nil {
		return nil, nil, err
	}
	return pl.Read(ctx)
}

// PoolPlan is a forward pass over one input prepared on every device of a
// pool that takes part (see Model.Prepare): each device holds its shard of
// the input, its recorded pass and its outputs. Run replays the passes,
// all devices at once; Read gathers the results. A PoolPlan is not safe
// for concurrent use; Close frees it.
type PoolPlan struct {
	pool   *Pool
	shards []*shard // the devices with work, in batch order
	b, n   int      // x's batch and set size
	m      int      // latents per batch element
}

// shard is one device's part of a PoolPlan: batch elements b0 to b0+b-1.
type shard struct {
	dev          int // position in the pool
	model        *Model
	b0, b        int
	x, mask, lat *Tensor // the shard's inputs on its device
	plan         *Plan
}

// Prepare checks in, uploads each device's shard of it and records the
// pass there, all devices at once.
func (p *Pool) Prepare(ctx context.Context, in *Input) (*PoolPlan, error) {
	if err := p.checkInput(in); err != nil {
		return nil, err
	}
	b, n := in.XShape[0], in.XShape[1]
	pl := &PoolPlan{pool: p, b: b, n: n}
	b0 := 0
	for i, c := range p.Split(b) {
		if c > 0 {
			pl.shards = append(pl.shards, &shard{dev: i, model: p.models[i], b0: b0, b: c})
		}
		b0 += c
	}
	err := pl.each(ctx, "upload", func(_ context.Context, s *shard) error { return s.upload(in, n) })
	if err == nil {
		err = pl.each(ctx, "record", func(_ context.Context, s *shard) error { return s.record() })
	}
	if err != nil {
		pl.Close()
		return nil, err
	}
	pl.m = pl.shards[0].plan.Latents().shape[1]
	return pl, nil
}

// checkInput refuses, before anything is split, an input whose shape the
// split cannot follow or that no device of the pool could run.
func (p *Pool) checkInput(in *Input) error {
	if len(p.models) == 0 {
		return errors.New("isab: the pool is closed")
	}
	if in == nil {
		return errors.New("isab: the input is nil")
	}
	if len(in.XShape) != 3 || in.XShape[2] != p.Config().Dim {
		return fmt.Errorf("isab: x has shape %s, want [batch, n, %d]", shapeString(in.XShape), p.Config().Dim)
	}
	if err := checkShape("x", in.XShape, len(in.X)); err != nil {
		return err
	}
	if in.Mask != nil {
		if err := checkShape("mask", in.XShape[:2], len(in.Mask)); err != nil {
			return err
		}
	}
	switch {
	case in.LatentsShape != nil && p.cfg.NumLatents > 0:
		return errors.New("isab: this model learns its latents; pass latents only to a model without them")
	case in.LatentsShape == nil && p.cfg.NumLatents == 0:
		return errors.New("isab: this model has no learned latents; the input must hold them")
	case in.LatentsShape != nil:
		if err := checkShape("latents", in.LatentsShape, len(in.Latents)); err != nil {
			return err
		}
		ls := in.LatentsShape
		if n := len(ls); n != 2 && n != 3 || ls[n-1] != p.cfg.Dim || n == 3 && ls[0] != in.XShape[0] {
			return fmt.Errorf("isab: latents have shape %s, want [m, %d] or [%d, m, %d]",
				shapeString(in.LatentsShape), p.Config().Dim, in.XShape[0], p.Config().Dim)
		}
	}
	return nil
}

// upload copies the shard's rows of x, the mask and batched latents (or
// all of shared latents) to its device.
func (s *shard) upload(in *Input, n int) error {
	dev, dim := s.model.dev, in.XShape[2]
	var err error
	if s.x, err = NewTensor(dev, in.X[s.b0*n*dim:(s.b0+s.b)*n*dim], s.b, n, dim); err != nil {
		return fmt.Errorf("isab: x: %w", err)
	}
	if in.Mask != nil {
		if s.mask, err = NewMask(dev, in.Mask[s.b0*n:(s.b0+s.b)*n], s.b, n); err != nil {
			return err
		}
	}
	switch ls := in.LatentsShape; len(ls) {
	case 0:
	case 3:
		per := ls[1] * ls[2]
		s.lat, err = NewTensor(dev, in.Latents[s.b0*per:(s.b0+s.b)*per], s.b, ls[1], ls[2])
	default:
		s.lat, err = NewTensor(dev, in.Latents, ls...)
	}
	if err != nil {
		return fmt.Errorf("isab: latents: %w", err)
	}
	return nil
}

// record records the shard's pass on its device.
func (s *shard) record() error {
	var opts []ForwardOption
	if s.mask != nil {
		opts = append(opts, WithMask(s.mask))
	}
	if s.lat != nil {
		opts = append(opts, WithLatents(s.lat))
	}
	var err error
	s.plan, err = s.model.Prepare(s.x, opts...)
	return err
}

// Run runs the recorded passes once, every device at once, and returns
// when all have finished or stopped: on the first error it cancels the
// others and reports that error with its device.
func (pl *PoolPlan) Run(ctx context.Context) error {
	if pl.shards == nil {
		return errors.New("isab: Run on a closed pool plan")
	}
	return pl.each(ctx, "run", func(ctx context.Context, s *shard) error { return s.plan.Run(ctx) })
}

// Read gathers the results of the latest Run: out [batch, n, dim] and the
// latents [batch, m, dim], each device's shard at its place in the batch.
func (pl *PoolPlan) Read(ctx context.Context) (out, lat []float32, err error) {
	if pl.shards == nil {
		return nil, nil, errors.New("isab: Read on a closed pool plan")
	}
	dim := pl.pool.Config().Dim
	out = make([]float32, pl.b*pl.n*dim)
	lat = make([]float32, pl.b*pl.m*dim)
	err = pl.each(ctx, "read", func(_ context.Context, s *shard) error {
		o, err := s.plan.Out().Read()
		if err != nil {
			return fmt.Errorf("isab: reading out: %w", err)
		}
		l, err := s.plan.Latents().Read()
		if err != nil {
			return fmt.Errorf("isab: reading latents: %w", err)
		}
		copy(out[s.b0*pl.n*dim:], o)
		copy(lat[s.b0*pl.m*dim:], l)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, lat, nil
}

// OutShape and LatentsShape are the shapes of what Read returns.
func (pl *PoolPlan) OutShape() []int { return []int{pl.b, pl.n, pl.pool.Config().Dim} }

// LatentsShape is the shape of the latents that Read returns.
func (pl *PoolPlan) LatentsShape() []int { return []int{pl.b, pl.m, pl.pool.Config().Dim} }

// Split returns the batch elements each device of the pool takes in this
// plan (see Pool.Split).
func (pl *PoolPlan) Split() []int { return pl.pool.Split(pl.b) }

// Close frees every device's plan and inputs. It is safe to call more
// than once.
func (pl *PoolPlan) Close() {
	for _, s := range pl.shards {
		if s.plan != nil {
			s.plan.Close()
		}
		s.x.Free()
		s.mask.Free()
		s.lat.Free()
	}
	pl.shards = nil
}

// each runs fn for every shard, each in its own goroutine, and waits for
// all of them. The first failure cancels the context the others run under;
// the error returned is that first failure, naming its device, or the
// caller's context error when that ended the stage.
func (pl *PoolPlan) each(ctx context.Context, stage string, fn func(context.Context, *shard) error) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("isab: pool %s: %w", stage, err)
	}
	inner, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errs := make([]error, len(pl.shards))
	var mu sync.Mutex
	first := -1 // the shard that failed first
	var wg sync.WaitGroup
	for i, s := range pl.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if h := pl.pool.hook; h != nil {
				err = h(inner, s.dev, stage)
			}
			if err == nil {
				err = fn(inner, s)
			}
			if err != nil {
				mu.Lock()
				errs[i] = err
				if first < 0 {
					first = i
				}
				mu.Unlock()
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if first < 0 {
		return nil
	}
	if ctx.Err() != nil && errors.Is(errs[first], ctx.Err()) {
		return fmt.Errorf("isab: pool %s: %w", stage, ctx.Err())
	}
	return pl.deviceError(first, stage, errs[first])
}

// deviceError wraps the error of shard i in stage with the device's
// position in the pool, its name and Vulkan index, and its batch elements.
func (pl *PoolPlan) deviceError(i int, stage string, err error) error {
	s := pl.shards[i]
	d := s.model.dev.Info()
	others := ""
	if len(pl.shards) > 1 {
		others = "; the other devices were stopped"
	}
	return fmt.Errorf("isab: pool device %d (%s, vk index %d), batch elements %d..%d, %s: %w%s",
		s.dev, d.Name, d.Index, s.b0, s.b0+s.b-1, stage, err, others)
}
