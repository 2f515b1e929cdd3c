package ops

import (
	"fmt"

	"github.com/isab-vk/isab-vk/shaders"
	"github.com/isab-vk/isab-vk/vk"
)

// The kernels' interfaces. Each push-constant block below mirrors, field by
// field, the GLSL block in shaders/push/NAME.glsl that every variant of the
// kernel includes; TestPushBlocks fails on any difference of name (GLSL's
// snake_case is Go's CamelCase: q_bstride is QBStride), order or type
// (uint is uint32, float float32), and on a kernel whose source binds
// another number of buffers than the block's buffers method says.
// kernelFor takes the binding count and the push size from the block's
// type, and vk.PushStruct encodes a block for seq.Dispatch.

// pushBlock is a kernel interface: a push-constant block of uint32 and
// float32 fields, whose buffers method is the number of buffers the
// kernel binds (bindings 0..buffers-1 of set 0).
type pushBlock interface {
	buffers() int
}

// kernelSpecFor is the layout of kernel k with interface P and
// specialization constants spec (its bindings all storage buffers until
// the caller marks texel ones).
func kernelSpecFor[P pushBlock](k shaders.Kernel, spec ...uint32) (vk.KernelSpec, error) {
	var p P
	size, err := vk.PushStructSize(p)
	if err != nil {
		return vk.KernelSpec{}, fmt.Errorf("ops: kernel %s: %w", k, err)
	}
	return vk.KernelSpec{Name: k.Name(), Buffers: p.buffers(), PushSize: size, Spec: spec}, nil
}

// kernelFor returns the pipeline of kernel k with interface P and
// specialization constants spec; all its bindings are storage buffers.
func kernelFor[P pushBlock](o *Ops, k shaders.Kernel, spec ...uint32) (*vk.Kernel, error) {
	s, err := kernelSpecFor[P](k, spec...)
	if err != nil {
		return nil, err
	}
	return o.kernelSpec(s)
}

// flag is 1 for true, 0 for false: the GLSL blocks' uint flags.
func flag(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// attnPush is shaders/push/attention.glsl: attention.comp, attention_cpu,
// attention_tex and attention_coop (attention.comp documents the fields).
// Bindings: Q, KV, mask, O (or the partial outputs), ML.
type attnPush struct {
	NQ, NK, Heads, DH, Batch         uint32
	LdQ, LdKV, KOff, VOff            uint32
	QBStride, KVBStride, MaskBStride uint32
	QOff, KVOff, MaskOff, OOff       uint32
	HasMask                          uint32
	KeysPerSplit, SlotBase           uint32
	NSlotsTotal, Direct, LdO         uint32
	Scale                            float32
}

func (attnPush) buffers() int { return 5 }

// combinePush is shaders/push/attn_combine.glsl. Bindings: partial O, ML,
// Out.
type combinePush struct {
	NQ, Heads, DH, Batch, NSlots, LdO, OutOff uint32
}

func (combinePush) buffers() int { return 3 }

// matmulPush is shaders/push/matmul.glsl: matmul.comp, matmul_cpu,
// matmul_tex and matmul_coop. Bindings: X, W, B, Y.
type matmulPush struct {
	M, N, K                uint32
	LdX, LdW, LdY          uint32
	XOff, WOff, BOff, YOff uint32
	HasBias                uint32
}

func (matmulPush) buffers() int { return 4 }

// softmaxPush is shaders/push/softmax.glsl. Bindings: X, mask, Y.
type softmaxPush struct {
	Rows, Cols, LdX, LdY uint32
	XOff, YOff, MaskOff  uint32
	RowsPerMask, LdMask  uint32
	HasMask              uint32
	Scale                float32
}

func (softmaxPush) buffers() int { return 3 }

// addPush is shaders/push/add.glsl. Bindings: A, B, Y.
type addPush struct {
	Rows, Cols, LdA, LdB, LdY uint32
	AOff, BOff, YOff          uint32
	ARows, ARow0, ReLU        uint32
}

func (addPush) buffers() int { return 3 }

// layerNormPush is shaders/push/layernorm.glsl. Bindings: X, W, Bias, Y.
type layerNormPush struct {
	Rows, Cols, LdX, LdY   uint32
	XOff, YOff, WOff, BOff uint32
	Eps                    float32
}

func (layerNormPush) buffers() int { return 4 }

// convertPush is shaders/push/convert.glsl. Bindings: Src, Dst.
type convertPush struct {
	N, SrcOff, DstOff, ToHalf uint32
}

func (convertPush) buffers() int { return 2 }
