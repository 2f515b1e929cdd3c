// Package ops records the project's compute kernels (package shaders) into
// vk sequences: a PyTorch-layout linear layer, a masked softmax, fused
// multi-head attention, and the Set Transformer's residual sum and
// LayerNorm. It does the workgroup arithmetic, picks among each op's
// kernel candidates (Linear and Attention: see Choice and the Explain
// methods) and their tile sizes and key splits per device, and cuts the
// work into pieces so that no single buffer binding exceeds the device's
// maxStorageBufferRange: each binding starts at an offset rounded down to
// minStorageBufferOffsetAlignment and the remainder goes to the kernel as
// an element offset.
//
// Operands are row-major float32 matrix views (Mat) of device buffers, or
// IEEE half views (Mat.Half) for the fp16 kernels, which accumulate in
// float32 (see Convert); masks are uint32 buffers (nonzero = keep). Nothing runs until the caller runs the
// sequence.
package ops

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/isab-vk/isab-vk/internal/checked"
	"github.com/isab-vk/isab-vk/shaders"
	"github.com/isab-vk/isab-vk/vk"
)

// Ops records kernels for one device. It is safe for concurrent use; the
// sequences it records into are not.
type Ops struct {
	d     *vk.Device
	info  vk.Info
	dummy *vk.Buffer

	maxRange     int64    // largest binding in bytes
	align        int64    // binding offset alignment in bytes (a multiple of 4)
	keysPerSplit int      // forced attention keys per split; 0 = automatic
	target       int      // workgroups wanted in flight for attention
	cpu          bool     // pick the configurations tuned for CPU rasterisers
	loopBudget   int64    // loop iterations one invocation may run; 0 = unlimited
	coop         coopMode // where fp16 Linear and Attention use cooperative matrices

	fastFLOPs float64 // ops of fewer FLOPs take the kernels quickest to compile (see FastKernelsFrom)

	groups   [3]uint32    // workgroup count limits (tests lower them)
	tune     tuning       // the kernels' knobs (tests change them per Ops, see withTuning)
	onChoice func(Choice) // told each implementation choice (OnChoice)

	mu   sync.Mutex
	code map[string][]byte
}

// Option configures New.
type Option func(*Ops)

// defaultFastFLOPs is where the CPU kernels' fast configurations start. On
// lavapipe a pipeline is compiled to machine code (by LLVM) at its first
// dispatch, and the fastest configurations, with more work unrolled per
// invocation, take up to ten times longer to compile and run only about
// 1.2-1.4x faster, which pays only on large operations. From 2 GFLOP the
// README shape (n = 16384) keeps the fast kernels while a first pass at
// n = 1024 compiles in a fraction of the time (docs/perf-notes.md has the
// measurements).
const defaultFastFLOPs = 2e9

// FastKernelsFrom sets the size, in floating-point operations, from which
// an op on a CPU device uses the configurations that run fastest but
// compile slowest (see defaultFastFLOPs); below it, the ones that compile
// quickest. 0 uses the fast ones everywhere. GPUs compile pipelines when
// they are created and are not affected.
func FastKernelsFrom(flops float64) Option {
	return func(o *Ops) { o.fastFLOPs = max(flops, 0) }
}

// fast reports whether an op of flops floating-point operations takes the
// fast-running configurations.
func (o *Ops) fast(flops float64) bool { return flops >= o.fastFLOPs }

// MaxBindingRange lowers the largest byte range that one buffer binding may
// cover below the device's maxStorageBufferRange (never above it). Tests use
// it to exercise the chunking paths on small data.
func MaxBindingRange(bytes int64) Option {
	return func(o *Ops) {
		if bytes > 0 && bytes < o.maxRange {
			o.maxRange = bytes
		}
	}
}

// KeysPerSplit makes Attention split every key source into pieces of n keys
// (rounded up to the kernel's key block), each a partial result merged at the
// end, instead of choosing the split by the device's parallelism. n <= 0
// restores the automatic choice.
func KeysPerSplit(n int) Option {
	return func(o *Ops) { o.keysPerSplit = min(max(n, 0), 1<<40) }
}

// New returns the kernels of package shaders for d. Pipelines are created on
// first use (and cached by the device). Close frees the small buffer that
// stands in for absent operands.
func New(d *vk.Device, opts ...Option) (*Ops, error) {
	if d == nil {
		return nil, errors.New("ops: nil device")
	}
	info := d.Info()
	o := &Ops{
		d:         d,
		info:      info,
		maxRange:  int64(min(info.MaxStorageBufferRange, 1<<62)),
		align:     max(int64(info.MinStorageBufferOffsetAlignment), 4),
		groups:    info.MaxGroupCount,
		coop:      coopModeFromEnv(),
		fastFLOPs: defaultFastFLOPs,
		tune:      defaultTuning(),
		code:      map[string][]byte{},
	}
	if o.align%4 != 0 {
		o.align = (o.align + 3) / 4 * 4
	}
	o.setCPU(info.Type == vk.DeviceCPU)
	if info.Type == vk.DeviceCPU {
		o.loopBudget = lavapipeLoopBudget
	}
	for _, opt := range opts {
		opt(o)
	}
	if o.maxRange < 4*o.align {
		return nil, fmt.Errorf("ops: max binding range %d bytes is too small for offset alignment %d", o.maxRange, o.align)
	}
	dummy, err := d.NewBuffer(16)
	if err != nil {
		return nil, fmt.Errorf("ops: dummy buffer: %w", err)
	}
	o.dummy = dummy
	return o, nil
}

// Close frees the buffers that Ops owns. Sequences recorded with it must not
// run afterwards.
func (o *Ops) Close() {
	if o.dummy != nil {
		o.dummy.Free()
		o.dummy = nil
	}
}

// Device returns the device that o records kernels for.
func (o *Ops) Device() *vk.Device { return o.d }

// kernelSpec returns the pipeline for s, whose Code it fills with the
// embedded SPIR-V of the shader s.Name; s comes from kernelSpecFor (or
// kernelFor, for kernels whose bindings are all storage buffers), which
// takes the layout from the kernel's interface type.
func (o *Ops) kernelSpec(s vk.KernelSpec) (*vk.Kernel, error) {
	name := s.Name
	o.mu.Lock()
	code, ok := o.code[name]
	if !ok {
		var err error
		code, err = shaders.SPIRV(name)
		if err != nil {
			o.mu.Unlock()
			return nil, fmt.Errorf("ops: %w", err)
		}
		o.code[name] = code
	}
	o.mu.Unlock()
	s.Code = code
	k, err := o.d.Kernel(s)
	if err != nil {
		return nil, fmt.Errorf("ops: %w", err)
	}
	return k, nil
}

// Mat is a row-major matrix view of a buffer: element (r, c) is element
// number Off + r*Ld + c of Buf, a float32 or, when Half is set, an IEEE half
// float (2 bytes). Ld 0 means Cols (a dense matrix).
type Mat struct {
	Buf        *vk.Buffer
	Off        int // elements
	Rows, Cols int
	Ld         int  // row stride in elements
	Half       bool // elements are IEEE half floats (float16)
}

// Dense returns the dense rows x cols matrix that starts at element off of b.
func Dense(b *vk.Buffer, off, rows, cols int) Mat {
	return Mat{Buf: b, Off: off, Rows: rows, Cols: cols, Ld: cols}
}

// DenseHalf is Dense for a buffer of IEEE half floats.
func DenseHalf(b *vk.Buffer, off, rows, cols int) Mat {
	return Mat{Buf: b, Off: off, Rows: rows, Cols: cols, Ld: cols, Half: true}
}

// esize returns the size of one element in bytes: 2 for half, else 4.
func (m Mat) esize() int64 {
	if m.Half {
		return 2
	}
	return 4
}

// ld returns the row stride, Cols when Ld is 0.
func (m Mat) ld() int {
	if m.Ld == 0 {
		return m.Cols
	}
	return m.Ld
}

// check reports a view that is empty, negative or reaches past its buffer.
func (m Mat) check(what string) error {
	if m.Buf == nil {
		return fmt.Errorf("%s: no buffer", what)
	}
	if m.Rows < 1 || m.Cols < 1 {
		return fmt.Errorf("%s: empty matrix %dx%d", what, m.Rows, m.Cols)
	}
	if m.Off < 0 || m.ld() < m.Cols {
		return fmt.Errorf("%s: bad view (offset %d, row stride %d < %d columns)", what, m.Off, m.ld(), m.Cols)
	}
	if err := index32(what, m.Off, m.Rows, m.Cols, m.ld()); err != nil {
		return err
	}
	return fitsSized(what, m.Buf, int64(m.Off), int64(m.Rows-1)*int64(m.ld())+int64(m.Cols), m.esize())
}

// fits reports whether n 4-byte elements from element off lie inside b.
func fits(what string, b *vk.Buffer, off, n int64) error {
	return fitsSized(what, b, off, n, 4)
}

// fitsSized is fits for elements of esize bytes.
func fitsSized(what string, b *vk.Buffer, off, n, esize int64) error {
	if b == nil {
		return fmt.Errorf("%s: no buffer", what)
	}
	end, ok := checked.Add(off, n)
	if ok {
		end, ok = checked.Mul(end, esize)
	}
	if !ok || end > b.Size() {
		return fmt.Errorf("%s: %d elements from element %d lie outside a buffer of %d bytes", what, n, off, b.Size())
	}
	return nil
}

// index32 reports a size, offset or stride that the kernels' 32-bit
// indices and push constants cannot hold. Bounding every operand so also
// keeps the extents computed from them (sums of a few products of two) from
// overflowing int64 unnoticed: they can only wrap to negative values, which
// fitsSized refuses.
func index32(what string, vals ...int) error {
	for _, v := range vals {
		if v < 0 || v > math.MaxInt32 {
			return fmt.Errorf("%s: %d is outside the kernels' 32-bit index range", what, v)
		}
	}
	return nil
}

// capElems is the most elements one binding may span wherever it starts
// (4-byte elements, so also a safe bound for half ones).
func (o *Ops) capElems() int64 {
	return (o.maxRange - (o.align - 4)) / 4
}

// bind returns a binding of b covering the n elements from element off, with
// its start rounded down to the offset alignment, and the element offset of
// off inside the binding.
func (o *Ops) bind(b *vk.Buffer, off, n int64, write bool) (vk.Binding, uint32, error) {
	return o.bindSized(b, off, n, 4, write)
}

// bindSized is bind for elements of esize bytes (2 or 4; the offset
// alignment is a multiple of 4, so the element offset is exact).
func (o *Ops) bindSized(b *vk.Buffer, off, n, esize int64, write bool) (vk.Binding, uint32, error) {
	if n < 1 {
		n = 1
	}
	start := off * esize
	start -= start % o.align
	size := off*esize + n*esize - start
	if size > o.maxRange {
		return vk.Binding{}, 0, fmt.Errorf("ops: internal error: binding of %d bytes exceeds the range limit %d", size, o.maxRange)
	}
	if start+size > b.Size() {
		return vk.Binding{}, 0, fmt.Errorf("ops: internal error: binding [%d, %d) outside a buffer of %d bytes", start, start+size, b.Size())
	}
	return vk.Binding{Buf: b, Offset: start, Size: size, Write: write}, uint32(off - start/esize), nil
}

// dummyBinding is the binding that stands in for an absent operand.
func (o *Ops) dummyBinding() vk.Binding {
	return vk.Binding{Buf: o.dummy, Size: 16}
}

// maxCount returns the largest n in [1, limit] with (n-1)*stride + rest <= capacity,
// or 0 when even n = 1 does not fit. A zero stride allows limit.
func maxCount(stride, rest, capacity, limit int64) int64 {
	if rest > capacity || limit < 1 {
		return 0
	}
	if stride <= 0 {
		return limit
	}
	return min((capacity-rest)/stride+1, limit)
}

// ceilDiv returns ceil(a / b) for positive b.
func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// ceilDivInt is ceilDiv for int.
func ceilDivInt(a, b int) int { return (a + b - 1) / b }

// grid2D spreads n workgroups over x and y with x at most maxX, for kernels
// that flatten their workgroup index.
func grid2D(n int64, maxX uint32) [3]uint32 {
	x := min(n, int64(maxX))
	return [3]uint32{uint32(x), uint32(ceilDiv(n, x)), 1}
}

// nextPow2 returns the smallest power of two >= n (1 for n <= 1).
func nextPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// lavapipeLoopBudget is how many loop iterations ops lets one invocation of
// a kernel run on CPU devices. llvmpipe (lavapipe's compiler) ends every
// loop of an invocation once the invocation has run 65535 loop iterations in
// all (LP_MAX_TGSI_LOOP_ITERATIONS, a guard against endless loops shared by
// every loop of a shader), silently leaving the rest of the work undone.
// Loops that the compiler unrolls do not count. ops keeps its estimates
// below half of that limit by giving each workgroup less work: more key
// splits in attention, wider workgroups in softmax, other tiles in matmul.
const lavapipeLoopBudget = 32768

// isCPU reports whether o picks configurations for a CPU rasteriser such as
// lavapipe.
func (o *Ops) isCPU() bool { return o.cpu }

// setCPU chooses the CPU (lavapipe) or the GPU configurations; tests use it
// to run the GPU configurations on lavapipe too.
func (o *Ops) setCPU(cpu bool) {
	o.cpu = cpu
	if cpu {
		o.target = 2 * runtime.NumCPU()
	} else {
		o.target = 1024
	}
}
