package isab

import (
	"context"
	"fmt"

	"github.com/isab-vk/isab-vk/ops"
	"github.com/isab-vk/isab-vk/vk"
)

// resolvePrecision turns a requested precision into the one a device with
// info runs: "" and FP32 give FP32; FP16 needs 16-bit storage buffers
// (storageBuffer16BitAccess) and is an error without them; Auto gives FP16
// only on GPUs (not CPU devices such as lavapipe, where the fp32 kernels
// are faster) with shaderFloat16 and 16-bit storage that report a
// cooperative-matrix shape the fp16 Linear runs on (ops.CoopShape: fp16 A
// and B, fp32 accumulator, subgroup scope), else FP32.
func resolvePrecision(info vk.Info, p Precision) (Precision, error) {
	switch p {
	case "", FP32:
		return FP32, nil
	case FP16:
		if !info.Storage16 {
			return "", fmt.Errorf("isab: precision fp16 needs 16-bit storage buffers (storageBuffer16BitAccess), which %s lacks; use fp32 or auto", info.Name)
		}
		return FP16, nil
	case Auto:
		if _, ok := ops.CoopShape(info); ok && info.Type != vk.DeviceCPU && info.Float16 && info.Storage16 {
			return FP16, nil
		}
		return FP32, nil
	}
	return "", fmt.Errorf("isab: unknown precision %q (want fp32, fp16 or auto)", string(p))
}

// ResolvePrecision returns the precision a model of precision p runs in on
// a device with info (see NewWithPrecision): FP32 or FP16, or an error for
// FP16 on a device without 16-bit storage.
func ResolvePrecision(info vk.Info, p Precision) (Precision, error) {
	return resolvePrecision(info, p)
}

// Precision returns the precision the model runs in (FP32 or FP16; Auto is
// resolved when the model is built).
func (m *Model) Precision() Precision {
	if m.half {
		return FP16
	}
	return FP32
}

// NewWithPrecision is New with a precision: FP32 (or ""), FP16 (weights and
// intermediate results stored as IEEE half floats on the device, with
// float32 accumulation; inputs and outputs stay float32), or Auto (see
// Model.Precision for the outcome). FP16 on a device without 16-bit storage
// buffers is an error. In FP16, weights and intermediate values beyond the
// half range (+-65504) become infinite, and each stored value carries a
// relative rounding error of up to 2^-11 (the golden cases reach NMSE of
// about 5e-7 against float64).
func NewWithPrecision(dev *vk.Device, cfg Config, w *Weights, p Precision) (*Model, error) {
	if dev == nil {
		return nil, fmt.Errorf("isab: nil device")
	}
	prec, err := resolvePrecision(dev.Info(), p)
	if err != nil {
		return nil, err
	}
	return newModel(dev, cfg, w, prec == FP16)
}

// halfBytes is the size of a buffer of n half floats, rounded up to whole
// 4-byte words.
func halfBytes(n int) int64 { return (int64(n)*2 + 3) / 4 * 4 }

// uploadHalf uploads float32 values as half floats: a float32 staging
// buffer converted on the device.
func uploadHalf(dev *vk.Device, o *ops.Ops, v []float32) (*vk.Buffer, error) {
	tmp, err := vk.BufferFrom(dev, v)
	if err != nil {
		return nil, err
	}
	defer tmp.Free()
	h, err := dev.NewBuffer(halfBytes(len(v)))
	if err != nil {
		return nil, err
	}
	seq := dev.NewSequence()
	defer seq.Close()
	if err := o.Convert(seq, ops.Dense(tmp, 0, 1, len(v)), ops.DenseHalf(h, 0, 1, len(v))); err != nil {
		h.Free()
		return nil, err
	}
	if err := seq.Run(context.Background()); err != nil {
		h.Free()
		return nil, err
	}
	return h, nil
}
