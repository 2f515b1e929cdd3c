package isab

import (
	"errors"
	"fmt"

	"github.com/isab-vk/isab-vk/vk"
)

// Device returns the device the tensor lives on.
func (t *Tensor) Device() *vk.Device { return t.dev }

// WrapBuffer makes a float32 tensor of the given shape from a buffer of dev
// that holds at least that many elements, for other models that compute
// into their own buffers (such as package settransformer). The tensor takes
// ownership of buf: its Free frees it.
func WrapBuffer(dev *vk.Device, buf *vk.Buffer, shape ...int) (*Tensor, error) {
	if dev == nil || buf == nil {
		return nil, errors.New("isab: WrapBuffer needs a device and a buffer")
	}
	if err := checkShape("tensor", shape, -1); err != nil {
		return nil, err
	}
	if int64(numel(shape))*4 > buf.Size() {
		return nil, fmt.Errorf("isab: a buffer of %d bytes cannot hold a float32 tensor of shape %s", buf.Size(), shapeString(shape))
	}
	return &Tensor{dev: dev, buf: buf, shape: append([]int(nil), shape...), kind: Float32}, nil
}
