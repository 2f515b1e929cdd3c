package ops

import (
	"errors"
	"fmt"
	"math"

	"github.com/isab-vk/isab-vk/shaders"
	"github.com/isab-vk/isab-vk/vk"
)

// The fp16 path: operands stored as IEEE half floats (Mat.Half), read and
// written by the generic kernels' f16 variants (shaders X_f16.spv), which
// compute and accumulate in float32. Linear and Attention hand half operands
// here; the kernels tuned for CPU rasterisers are float32 only, so CPU
// devices run the generic kernels' variants. Every operand of one call must
// be half (masks stay uint32; attention's partial results stay float32).

// convertWG is convert.comp's workgroup size.
const convertWG = 64

// needHalf reports an error when the device cannot run the fp16 kernels,
// which need storageBuffer16BitAccess.
func (o *Ops) needHalf(op string) error {
	if !o.info.Storage16 {
		return fmt.Errorf("ops: %s: half-float operands need 16-bit storage (storageBuffer16BitAccess), which %s lacks", op, o.info.Name)
	}
	return nil
}

// SupportsHalf reports whether the device can run the fp16 kernels (it has
// 16-bit storage buffer access).
func (o *Ops) SupportsHalf() bool { return o.info.Storage16 }

// Convert records dst = src converted between float32 and IEEE half: one of
// them is a half view (Mat.Half) and the other a float32 view of the same
// shape. Conversion to half rounds as the device does (to nearest on
// lavapipe and common GPUs); values beyond the half range become infinite.
// dst must not overlap src.
func (o *Ops) Convert(seq *vk.Sequence, src, dst Mat) error {
	if err := src.check("ops: Convert src"); err != nil {
		return err
	}
	if err := dst.check("ops: Convert dst"); err != nil {
		return err
	}
	if src.Half == dst.Half {
		return fmt.Errorf("ops: Convert: src and dst are both %s; one must be half and the other float32", elemName(src.Half))
	}
	if src.Rows != dst.Rows || src.Cols != dst.Cols {
		return fmt.Errorf("ops: Convert: src is %dx%d but dst is %dx%d", src.Rows, src.Cols, dst.Rows, dst.Cols)
	}
	if err := o.needHalf("Convert"); err != nil {
		return err
	}
	k, err := kernelFor[convertPush](o, shaders.Convert, convertWG)
	if err != nil {
		return err
	}
	// Dense views convert as one vector, others row by row.
	rows, cols := int64(src.Rows), int64(src.Cols)
	lds, ldd := int64(src.ld()), int64(dst.ld())
	if lds == cols && ldd == cols {
		rows, cols, lds, ldd = 1, rows*cols, rows*cols, rows*cols
	}
	chunk := min(o.capElems(), int64(o.groups[0])*int64(o.groups[1])*convertWG, math.MaxUint32-convertWG)
	for r := int64(0); r < rows; r++ {
		for c0 := int64(0); c0 < cols; c0 += chunk {
			n := min(chunk, cols-c0)
			sb, soff, err := o.bindSized(src.Buf, int64(src.Off)+r*lds+c0, n, src.esize(), false)
			if err != nil {
				return err
			}
			db, doff, err := o.bindSized(dst.Buf, int64(dst.Off)+r*ldd+c0, n, dst.esize(), true)
			if err != nil {
				return err
			}
			push := convertPush{N: uint32(n), SrcOff: soff, DstOff: doff, ToHalf: flag(dst.Half)}
			if err := seq.Dispatch(k, grid2D(ceilDiv(n, convertWG), o.groups[0]), vk.PushStruct(&push), sb, db); err != nil {
				return fmt.Errorf("ops: Convert: %w", err)
			}
		}
	}
	return nil
}

func elemName(half bool) string {
	if half {
		return "half"
	}
	return "float32"
}

// half reports whether any operand of a is a half view.
func (a AttnArgs) half() bool {
	if a.Q.Half || a.Out.Half {
		return true
	}
	for _, s := range a.Sources {
		if s.KV.Half {
			return true
		}
	}
	return false
}

// attnHalf reports whether a's operands are half views: Q, every source's
// KV and Out must agree, and half operands need 16-bit storage.
func (o *Ops) attnHalf(a AttnArgs) (bool, error) {
	half := a.half()
	if !half {
		return false, nil
	}
	if !a.Q.Half || !a.Out.Half {
		return false, errors.New("ops: Attention: Q, the keys and values and Out must all be half or all float32")
	}
	for i, s := range a.Sources {
		if !s.KV.Half && s.NK > 0 {
			return false, fmt.Errorf("ops: Attention: source %d is float32 but Q is half; all must be half or all float32", i)
		}
	}
	return true, o.needHalf("Attention")
}

// elemKernel returns the float32 kernel f32 or its fp16 variant f16 for
// operands with the given Half flags, and their element size in bytes.
// Mixed operands are an error, and so are half ones on a device without
// 16-bit storage; op names the operation in errors.
func (o *Ops) elemKernel(op string, f32, f16 shaders.Kernel, half ...bool) (shaders.Kernel, int64, error) {
	for _, h := range half[1:] {
		if h != half[0] {
			return 0, 0, fmt.Errorf("ops: %s: operands must all be half or all float32", op)
		}
	}
	if !half[0] {
		return f32, 4, nil
	}
	if err := o.needHalf(op); err != nil {
		return 0, 0, err
	}
	return f16, 2, nil
}
