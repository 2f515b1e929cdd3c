package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/isab-vk/isab-vk/internal/checked"
)

// Tensor is one named tensor: its element type, its shape and its raw
// little-endian bytes, in row-major order.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// NumElements returns the product of the tensor's dimensions (1 for a
// scalar, 0 when any dimension is 0), or -1 when a dimension is negative or
// the product overflows an int.
func (t *Tensor) NumElements() int {
	n, err := numElements(t.Shape)
	if err != nil {
		return -1
	}
	return n
}

// numElements multiplies the dimensions of shape with checked arithmetic,
// as Parse does.
func numElements(shape []int) (int, error) {
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in shape %s", d, formatShape(shape))
		}
	}
	n, ok := checked.Product(shape...)
	if !ok {
		return 0, fmt.Errorf("shape %s: element count overflows", formatShape(shape))
	}
	return n, nil
}

// checkData verifies that t has a known dtype and exactly the bytes its shape
// needs, and returns its element count.
func (t *Tensor) checkData() (int, error) {
	size := t.DType.Size()
	if size == 0 {
		return 0, fmt.Errorf("safetensors: tensor %s: unknown dtype %s", quote(t.Name), quote(string(t.DType)))
	}
	n, err := numElements(t.Shape)
	if err != nil {
		return 0, fmt.Errorf("safetensors: tensor %s: %w", quote(t.Name), err)
	}
	nbytes, ok := checked.Mul(n, size)
	if !ok {
		return 0, fmt.Errorf("safetensors: tensor %s: byte size of shape %s overflows", quote(t.Name), formatShape(t.Shape))
	}
	if len(t.Data) != nbytes {
		return 0, fmt.Errorf("safetensors: tensor %s: has %d data bytes, shape %s of %s needs %d",
			quote(t.Name), len(t.Data), formatShape(t.Shape), t.DType, nbytes)
	}
	return n, nil
}

// Float32 converts the tensor's elements to float32. Floating-point types are
// converted exactly (F64 is rounded to nearest), integer types are converted
// to the nearest float32. BOOL and unknown types are an error.
func (t *Tensor) Float32() ([]float32, error) { return convert[float32](t) }

// Float64 converts the tensor's elements to float64. Floating-point types
// widen exactly; integer types are converted to the nearest float64. BOOL and
// unknown types are an error.
func (t *Tensor) Float64() ([]float64, error) { return convert[float64](t) }

// convert decodes the tensor's little-endian elements into T.
func convert[T float32 | float64](t *Tensor) ([]T, error) {
	n, err := t.checkData()
	if err != nil {
		return nil, err
	}
	out := make([]T, n)
	b := t.Data
	le := binary.LittleEndian
	switch t.DType {
	case F32:
		for i := range out {
			out[i] = T(math.Float32frombits(le.Uint32(b[4*i:])))
		}
	case F64:
		for i := range out {
			out[i] = T(math.Float64frombits(le.Uint64(b[8*i:])))
		}
	case F16:
		for i := range out {
			out[i] = T(F16ToFloat32(le.Uint16(b[2*i:])))
		}
	case BF16:
		for i := range out {
			out[i] = T(BF16ToFloat32(le.Uint16(b[2*i:])))
		}
	case F8E5M2:
		for i := range out {
			out[i] = T(F16ToFloat32(uint16(b[i]) << 8))
		}
	case F8E4M3:
		for i := range out {
			out[i] = T(f8e4m3ToFloat32(b[i]))
		}
	case I64:
		for i := range out {
			out[i] = T(int64(le.Uint64(b[8*i:])))
		}
	case I32:
		for i := range out {
			out[i] = T(int32(le.Uint32(b[4*i:])))
		}
	case I16:
		for i := range out {
			out[i] = T(int16(le.Uint16(b[2*i:])))
		}
	case I8:
		for i := range out {
			out[i] = T(int8(b[i]))
		}
	case U64:
		for i := range out {
			out[i] = T(le.Uint64(b[8*i:]))
		}
	case U32:
		for i := range out {
			out[i] = T(le.Uint32(b[4*i:]))
		}
	case U16:
		for i := range out {
			out[i] = T(le.Uint16(b[2*i:]))
		}
	case U8:
		for i := range out {
			out[i] = T(b[i])
		}
	default:
		var z T
		return nil, fmt.Errorf("safetensors: tensor %s: cannot convert dtype %s to %T", quote(t.Name), quote(string(t.DType)), z)
	}
	return out, nil
}

// Bool converts a BOOL or U8 tensor to booleans, nonzero meaning true. Other
// types are an error.
func (t *Tensor) Bool() ([]bool, error) {
	if t.DType != BOOL && t.DType != U8 {
		return nil, fmt.Errorf("safetensors: tensor %s: cannot convert dtype %s to bool (want BOOL or U8)", quote(t.Name), quote(string(t.DType)))
	}
	n, err := t.checkData()
	if err != nil {
		return nil, err
	}
	out := make([]bool, n)
	for i := range out {
		out[i] = t.Data[i] != 0
	}
	return out, nil
}

// NewF32 returns an F32 tensor holding a copy of data with the given shape.
// The shape is not checked against len(data) here; Encode checks it.
func NewF32(name string, shape []int, data []float32) *Tensor {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return &Tensor{Name: name, DType: F32, Shape: append([]int{}, shape...), Data: b}
}

// NewBool returns a BOOL tensor holding data (one byte per element, 1 for
// true) with the given shape. The shape is not checked against len(data) here;
// Encode checks it.
func NewBool(name string, shape []int, data []bool) *Tensor {
	b := make([]byte, len(data))
	for i, v := range data {
		if v {
			b[i] = 1
		}
	}
	return &Tensor{Name: name, DType: BOOL, Shape: append([]int{}, shape...), Data: b}
}

// F16ToFloat32 converts IEEE 754 binary16 bits to float32, exactly: signed
// zeros, subnormals, infinities and NaN payloads are preserved.
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: mant * 2^-24, exact in float32.
	v := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}

// BF16ToFloat32 converts bfloat16 bits to float32 exactly.
func BF16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// f8e4m3ToFloat32 converts an F8_E4M3 (the "fn" variant: bias 7, no
// infinities, NaN when all exponent and mantissa bits are set) byte to float32.
func f8e4m3ToFloat32(b byte) float32 {
	exp := int(b>>3) & 0xf
	mant := int(b) & 7
	var v float32
	switch {
	case exp == 0xf && mant == 7:
		v = float32(math.NaN())
	case exp == 0:
		v = float32(mant) / 512 // mant * 2^-9
	default:
		v = float32(math.Ldexp(1+float64(mant)/8, exp-7))
	}
	if b&0x80 != 0 {
		v = -v
	}
	return v
}
