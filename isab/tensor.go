package isab

import (
	"errors"
	"fmt"
	"math"

	"github.com/isab-vk/isab-vk/vk"
)

// Kind is what a Tensor holds.
type Kind int

const (
	// Float32 tensors hold data: x, latents, outputs.
	Float32 Kind = iota
	// Mask tensors hold a boolean key mask (true = keep), one 32-bit word
	// per element on the device.
	Mask
)

// String names the kind: "float32" or "mask".
func (k Kind) String() string {
	if k == Mask {
		return "mask"
	}
	return "float32"
}

// Tensor is an array on a device: float32 data or a boolean mask. The
// caller frees it with Free.
type Tensor struct {
	dev   *vk.Device
	buf   *vk.Buffer
	shape []int
	kind  Kind
}

// Shape returns a copy of the tensor's shape.
func (t *Tensor) Shape() []int { return append([]int(nil), t.shape...) }

// Kind says whether the tensor holds float32 values or a mask.
func (t *Tensor) Kind() Kind { return t.kind }

// Len is the number of elements.
func (t *Tensor) Len() int { return numel(t.shape) }

// Buffer is the device buffer behind the tensor.
func (t *Tensor) Buffer() *vk.Buffer { return t.buf }

// Free releases the tensor's device memory. Calling it twice is harmless.
func (t *Tensor) Free() {
	if t != nil {
		t.buf.Free()
	}
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// checkShape rejects empty shapes, zero or negative dimensions and sizes
// that overflow.
func checkShape(what string, shape []int, n int) error {
	if len(shape) == 0 {
		return fmt.Errorf("isab: %s needs a shape", what)
	}
	total := 1
	for _, d := range shape {
		if d <= 0 {
			return fmt.Errorf("isab: %s has shape %s: every dimension must be at least 1", what, shapeString(shape))
		}
		if total > math.MaxInt32/d {
			return fmt.Errorf("isab: %s of shape %s is too large", what, shapeString(shape))
		}
		total *= d
	}
	if n >= 0 && total != n {
		return fmt.Errorf("isab: %s has %d values but shape %s holds %d", what, n, shapeString(shape), total)
	}
	return nil
}

// NewTensor copies float32 data of the given shape to the device.
func NewTensor(dev *vk.Device, data []float32, shape ...int) (*Tensor, error) {
	if err := checkShape("tensor", shape, len(data)); err != nil {
		return nil, err
	}
	buf, err := vk.BufferFrom(dev, data)
	if err != nil {
		return nil, fmt.Errorf("isab: uploading a tensor of shape %s: %w", shapeString(shape), err)
	}
	return &Tensor{dev: dev, buf: buf, shape: append([]int(nil), shape...), kind: Float32}, nil
}

// NewMask copies a boolean key mask (true = keep) of the given shape, which
// is [batch, n] for Forward, to the device.
func NewMask(dev *vk.Device, keep []bool, shape ...int) (*Tensor, error) {
	if err := checkShape("mask", shape, len(keep)); err != nil {
		return nil, err
	}
	words := make([]uint32, len(keep))
	for i, k := range keep {
		if k {
			words[i] = 1
		}
	}
	buf, err := vk.BufferFrom(dev, words)
	if err != nil {
		return nil, fmt.Errorf("isab: uploading a mask of shape %s: %w", shapeString(shape), err)
	}
	return &Tensor{dev: dev, buf: buf, shape: append([]int(nil), shape...), kind: Mask}, nil
}

// newEmpty allocates an uninitialised float32 tensor.
func newEmpty(dev *vk.Device, shape ...int) (*Tensor, error) {
	buf, err := dev.NewBuffer(int64(numel(shape)) * 4)
	if err != nil {
		return nil, fmt.Errorf("isab: allocating a tensor of shape %s: %w", shapeString(shape), err)
	}
	return &Tensor{dev: dev, buf: buf, shape: append([]int(nil), shape...), kind: Float32}, nil
}

// Read copies a float32 tensor back to the host.
func (t *Tensor) Read() ([]float32, error) {
	if t.kind != Float32 {
		return nil, errors.New("isab: Read of a mask tensor; use ReadMask")
	}
	return vk.Download[float32](t.buf, 0, t.Len())
}

// Write replaces a float32 tensor's contents with data, which must hold
// exactly Len values (to refill the input of a Plan, say).
func (t *Tensor) Write(data []float32) error {
	if t.kind != Float32 {
		return errors.New("isab: Write of float32 values to a mask tensor")
	}
	if len(data) != t.Len() {
		return fmt.Errorf("isab: Write of %d values to a tensor of shape %s (%d values)", len(data), shapeString(t.shape), t.Len())
	}
	if err := vk.Upload(t.buf, 0, data); err != nil {
		return fmt.Errorf("isab: writing a tensor of shape %s: %w", shapeString(t.shape), err)
	}
	return nil
}

// ReadMask copies a mask tensor back to the host.
func (t *Tensor) ReadMask() ([]bool, error) {
	if t.kind != Mask {
		return nil, errors.New("isab: ReadMask of a float32 tensor; use Read")
	}
	w, err := vk.Download[uint32](t.buf, 0, t.Len())
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(w))
	for i, v := range w {
		out[i] = v != 0
	}
	return out, nil
}
