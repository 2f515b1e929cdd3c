package record

import (
	"fmt"

	"github.com/isab-vk/isab-vk/ops"
	"github.com/isab-vk/isab-vk/vk"
)

// Act is an activation of a forward pass, a view of a device buffer: for
// batch element b, row i is the D elements that start at element
// Off + (b*Stride + i)*Ld of Buf. Stride 0 means one set of rows shared
// by every batch element (learned latents, inducing points, seeds).
type Act struct {
	Buf    *vk.Buffer
	Off    int  // element of row 0 of batch element 0
	N, D   int  // rows per batch element, features per row
	Ld     int  // elements between rows; 0 means D
	Stride int  // rows between batch elements; 0 shares the rows
	Half   bool // elements are IEEE half floats, else float32
}

// Batched is the dense activation [batch, n, d] at the start of buf.
func Batched(buf *vk.Buffer, n, d int, half bool) Act {
	return Act{Buf: buf, N: n, D: d, Stride: n, Half: half}
}

// Shared is the dense set of n rows of d features at the start of buf that
// every batch element uses.
func Shared(buf *vk.Buffer, n, d int, half bool) Act {
	return Act{Buf: buf, N: n, D: d, Half: half}
}

// IsShared reports whether one set of rows serves the whole batch.
func (a Act) IsShared() bool { return a.Stride == 0 }

// Rows is the view of rows i0 .. i0+n-1 of every batch element.
func (a Act) Rows(i0, n int) Act {
	a.Off += i0 * a.ld()
	a.N = n
	return a
}

// Cols is the view of features c0 .. c0+d-1 of every row.
func (a Act) Cols(c0, d int) Act {
	a.Ld = a.ld()
	a.Off += c0
	a.D = d
	return a
}

func (a Act) ld() int {
	if a.Ld == 0 {
		return a.D
	}
	return a.Ld
}

// batchStride is the number of elements between batch elements.
func (a Act) batchStride() int { return a.Stride * a.ld() }

// adjacent reports whether the rows of every batch element follow each
// other, so that one matrix of batch*N rows (N when shared) covers them.
func (a Act) adjacent() bool { return a.Stride == 0 || a.Stride == a.N }

// all is the matrix of every row: batch*N rows, N when shared. It is
// meaningful only when a is adjacent.
func (a Act) all(batch int) ops.Mat {
	rows := a.N
	if !a.IsShared() {
		rows *= batch
	}
	return ops.Mat{Buf: a.Buf, Off: a.Off, Rows: rows, Cols: a.D, Ld: a.ld(), Half: a.Half}
}

// elem is the matrix of batch element b's rows.
func (a Act) elem(b int) ops.Mat {
	return ops.Mat{Buf: a.Buf, Off: a.Off + b*a.batchStride(), Rows: a.N, Cols: a.D, Ld: a.ld(), Half: a.Half}
}

// span is the matrix from the first row of batch element 0 to the last
// row of the last batch element: the view that Attention's queries and
// keys are read through, with their batch stride.
func (a Act) span(batch int) ops.Mat {
	rows := a.N
	if !a.IsShared() {
		rows += (batch - 1) * a.Stride
	}
	return ops.Mat{Buf: a.Buf, Off: a.Off, Rows: rows, Cols: a.D, Ld: a.ld(), Half: a.Half}
}

// elems is the number of elements of a dense activation of a's shape.
func (a Act) elems(batch int) int {
	if a.IsShared() {
		return a.N * a.D
	}
	return batch * a.N * a.D
}

// Linear is a PyTorch Linear(In, Out) on the device: weight [Out, In] and
// an optional bias [Out], in the precision of the pass that uses it.
type Linear struct {
	W, B    *vk.Buffer // B is nil for a Linear without bias
	In, Out int
}

func (l Linear) weight(half bool) ops.Mat {
	return ops.Mat{Buf: l.W, Rows: l.Out, Cols: l.In, Ld: l.In, Half: half}
}

func (l Linear) bias(half bool) *ops.Mat {
	if l.B == nil {
		return nil
	}
	return &ops.Mat{Buf: l.B, Rows: 1, Cols: l.Out, Half: half}
}

// LayerNorm is a PyTorch LayerNorm over the last axis with its affine
// weight and bias on the device.
type LayerNorm struct {
	W, B *vk.Buffer
	Dim  int
	Eps  float32
}

// KV is the keys and values of an attention side by side, as a to_kv
// Linear writes them: a row's key is its first half, its value the second
// half. Mask, when set, is a uint32 buffer in which key j of batch element
// b is kept when element MaskOff + b*MaskStride + j is nonzero.
type KV struct {
	Act
	Mask       *vk.Buffer
	MaskOff    int
	MaskStride int
}

// Keys is the keys and values that a holds side by side, without a mask.
func Keys(a Act) KV { return KV{Act: a} }

// Masked returns kv with the key mask of mask, from element off, stride
// elements between batch elements.
func (kv KV) Masked(mask *vk.Buffer, off, stride int) KV {
	kv.Mask, kv.MaskOff, kv.MaskStride = mask, off, stride
	return kv
}

func (kv KV) source(batch int) (ops.KVSource, error) {
	if kv.D%2 != 0 {
		return ops.KVSource{}, fmt.Errorf("keys and values of %d features do not split in halves", kv.D)
	}
	return ops.KVSource{
		KV: kv.span(batch), BatchStride: kv.batchStride(), KOff: 0, VOff: kv.D / 2, NK: kv.N,
		Mask: kv.Mask, MaskOff: kv.MaskOff, MaskBatchStride: kv.MaskStride,
	}, nil
}

// Heads is the shape of a multi-head attention: Heads heads of DimHead
// features each, and the scale of the logits.
type Heads struct {
	Heads, DimHead int
	Scale          float32
}

// Inner is the width Heads*DimHead of the queries and of the output.
func (h Heads) Inner() int { return h.Heads * h.DimHead }
