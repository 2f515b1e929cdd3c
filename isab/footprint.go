package isab

import (
	"fmt"

	"github.com/isab-vk/isab-vk/internal/checked"
	"github.com/isab-vk/isab-vk/internal/sysmem"
	"github.com/isab-vk/isab-vk/vk"
)

// Footprint is the memory, in bytes, that running a configuration on inputs
// of one shape needs. The figures are lower bounds: the attention's partial
// results, staging buffers and Vulkan's own objects come on top, and are
// small beside them for large inputs.
type Footprint struct {
	Weights int64 // the model's weights on the device
	Inputs  int64 // x, its mask and external latents on the device
	Pass    int64 // the outputs and temporaries of one forward pass (Prepare)
	// Host is the host memory of the inputs and outputs as float32
	// (x, out and the latents: what ForwardHost, bench and the demo hold).
	Host int64
	// Largest is the largest single buffer: x (and out) as float32.
	Largest int64
}

// Device is the device memory of the weights, the inputs and one pass.
func (f Footprint) Device() int64 { return f.Weights + f.Inputs + f.Pass }

// sizer adds up products of dimensions and element sizes with checked
// arithmetic; the first overflow sticks.
type sizer struct {
	sum int64
	err error
}

func (s *sizer) add(esize int64, dims ...int) {
	if s.err != nil {
		return
	}
	n, err := checked.Size("size", dims...)
	if err == nil {
		n, err = checked.Size("size", n, esize)
	}
	if err == nil {
		var ok bool
		if s.sum, ok = checked.Add(s.sum, n); !ok {
			err = fmt.Errorf("total overflows a 64-bit integer")
		}
	}
	s.err = err
}

// Footprint returns the memory that a forward pass over x [batch, n, dim]
// with m latents takes, in FP16 when half is set, else FP32. The model's
// learned latents (NumLatents > 0) are shared by the batch; external ones
// are counted as [batch, m, dim]. A shape whose sizes overflow is an error
// naming it.
func (c Config) Footprint(batch, n, m int, half bool) (Footprint, error) {
	if err := c.Validate(); err != nil {
		return Footprint{}, err
	}
	if batch < 1 || n < 1 || m < 1 {
		return Footprint{}, fmt.Errorf("isab: batch %d, n %d and m %d must be positive", batch, n, m)
	}
	es := int64(4)
	if half {
		es = 2
	}
	D, I, B, N, M := c.Dim, c.Inner(), batch, n, m
	latRows := M
	var w, in, pass, host sizer
	w.add(es, c.NumLatents, D)
	w.add(2*es, 3*I, D) // to_q and to_kv
	w.add(2*es, D, I)   // to_out
	in.add(4, B, N, D)  // x
	in.add(4, B, N)     // the mask, one uint32 a key
	if c.NumLatents == 0 {
		latRows = B * M
		in.add(4, latRows, D)
	}
	if half {
		pass.add(2, B, N, D) // x as halves
		if c.NumLatents == 0 {
			pass.add(2, latRows, D)
		}
		pass.add(2, B, M, D) // latents' and out before the conversion
		pass.add(2, B, N, D)
	}
	pass.add(es, B, chunkRows(B, N, I, es), 2*I) // the chunk buffer
	pass.add(es, latRows, I)                     // q1
	if c.LatentSelfAttend {
		pass.add(es, latRows, 2*I) // the latents' keys and values
	}
	pass.add(es, B, M, I)   // attn1's output
	pass.add(es, B, M, 2*I) // kv2
	pass.add(4, B, M, D)    // the latents' output
	pass.add(4, B, N, D)    // out
	host.add(4, B, N, D)
	host.add(4, B, N, D)
	host.add(4, B, M, D)
	for _, s := range []*sizer{&w, &in, &pass, &host} {
		if s.err != nil {
			return Footprint{}, fmt.Errorf("isab: batch %d, n %d, m %d with %v: %w", B, N, M, c, s.err)
		}
	}
	var largest sizer
	largest.add(4, B, N, D)
	f := Footprint{Weights: w.sum, Inputs: in.sum, Pass: pass.sum, Host: host.sum, Largest: largest.sum}
	if _, ok := checked.Add(f.Weights+f.Inputs, f.Pass); !ok || f.Weights+f.Inputs < 0 {
		return Footprint{}, fmt.Errorf("isab: batch %d, n %d, m %d with %v: the device memory needed overflows", B, N, M, c)
	}
	return f, nil
}

// CheckFits refuses, before anything is allocated, a forward pass over x
// [batch, n, dim] with m latents in precision p (resolved for dev as
// NewWithPrecision does) whose footprint exceeds dev's device-local memory
// or the host's memory. The error names the shape, what it needs and the
// limit. Callers that generate inputs (benchmarks, the demo) call it first.
func CheckFits(dev *vk.Device, c Config, batch, n, m int, p Precision) error {
	prec, err := resolvePrecision(dev.Info(), p)
	if err != nil {
		return err
	}
	f, err := c.Footprint(batch, n, m, prec == FP16)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("x [%d, %d, %d] with %d latents in %s", batch, n, c.Dim, m, prec)
	if err := fitsDevice(dev, what, f.Device()); err != nil {
		return err
	}
	// x and out are the largest buffers; no one buffer may exceed the heap.
	if err := dev.CheckFootprint(what+": x", f.Largest); err != nil {
		return fmt.Errorf("isab: %w", err)
	}
	if avail := sysmem.Available(); avail > 0 && f.Host > avail {
		return fmt.Errorf("isab: %s needs at least %s of host memory for its inputs and outputs; the host has %s available",
			what, checked.Bytes(f.Host), checked.Bytes(avail))
	}
	return nil
}

// fitsDevice refuses need bytes more of device memory than dev has left.
func fitsDevice(dev *vk.Device, what string, need int64) error {
	total := dev.MemoryBudget()
	if total <= 0 {
		return nil
	}
	_, used := dev.LiveObjects()
	if need > total-used {
		return fmt.Errorf("isab: %s needs at least %s of device memory; %s has %s, of which %s is in use",
			what, checked.Bytes(need), dev.Info().Name, checked.Bytes(total), checked.Bytes(used))
	}
	return nil
}
