package ops

import (
	"errors"
	"fmt"

	"github.com/isab-vk/isab-vk/vk"
)

// linearImpls are Linear's implementations, most specialised first (see
// choice.go): cooperative matrices for fp16 where the device has them, the
// texel-buffer kernel on CPU rasterisers, the CPU kernel for float32, and
// matmul.comp (and its fp16 variant) everywhere else.
var linearImpls = []linearImpl{linearCoop{}, linearTex{}, linearCPUImpl{}, linearGeneric{}}

// linearImpl is one implementation of Linear: plan says whether it supports
// the device and the operands (a reason when it does not) and, when it does,
// which kernel runs with which tiles and how the work is cut into pieces;
// Linear's shared piece loop (linearRecord) binds and dispatches.
type linearImpl interface {
	name() string
	plan(o *Ops, l *linArgs) (linPlan, decline)
}

// linArgs is one Linear's checked operands.
type linArgs struct {
	x, w, y Mat
	b       *Mat
	half    bool
	esize   int64
	M, K, N int
}

// linPlan is how an implementation runs one Linear: its kernel (texel
// bindings marked), the output block of one workgroup, the alignment its
// loads need in every piece's element offsets and strides (1 for any),
// and the columns and rows per piece.
type linPlan struct {
	spec     vk.KernelSpec
	bm, bn   int64
	vecAlign uint32
	texel    bool // x, w and y are bound as texel buffers (linTexBind)
	nc, rc   int64
}

// Linear records y = x w^T (+ b), PyTorch's Linear: x is [rows, in], w is
// [out, in], y is [rows, out], and b (nil for none) holds out consecutive
// elements from b.Off. y must not overlap x, w or b. Large operands are
// processed in row and column pieces whose bindings fit the device's range
// limit; a single row of x or w longer than that limit is an error. The
// kernel is the first of linearImpls that supports the device and the
// operands (see OnChoice and ExplainLinear).
func (o *Ops) Linear(seq *vk.Sequence, x, w Mat, b *Mat, y Mat) error {
	l, err := o.linearArgs(x, w, b, y)
	if err != nil {
		return err
	}
	p, _, err := o.linearPlan(l, false)
	if err != nil {
		return err
	}
	return o.linearRecord(seq, l, p)
}

// linearArgs checks Linear's operands.
func (o *Ops) linearArgs(x, w Mat, b *Mat, y Mat) (*linArgs, error) {
	half := x.Half
	if w.Half != half || y.Half != half || (b != nil && b.Half != half) {
		return nil, errors.New("ops: Linear: x, w, y and the bias must all be half or all float32")
	}
	l := &linArgs{x: x, w: w, b: b, y: y, half: half, esize: 4, M: x.Rows, K: x.Cols, N: w.Rows}
	if half {
		if err := o.needHalf("Linear"); err != nil {
			return nil, err
		}
		l.esize = 2
	}
	if err := x.check("ops: Linear x"); err != nil {
		return nil, err
	}
	if err := w.check("ops: Linear w"); err != nil {
		return nil, err
	}
	if err := y.check("ops: Linear y"); err != nil {
		return nil, err
	}
	if w.Cols != l.K {
		return nil, fmt.Errorf("ops: Linear: x is %dx%d but w is %dx%d (want %d columns)", x.Rows, x.Cols, w.Rows, w.Cols, l.K)
	}
	if y.Rows != l.M || y.Cols != l.N {
		return nil, fmt.Errorf("ops: Linear: y is %dx%d, want %dx%d", y.Rows, y.Cols, l.M, l.N)
	}
	if b != nil {
		if err := b.check("ops: Linear b"); err != nil {
			return nil, err
		}
		if b.Rows*b.Cols != l.N || (b.Rows > 1 && b.ld() != b.Cols) {
			return nil, fmt.Errorf("ops: Linear: bias is a %dx%d view (stride %d), want %d consecutive elements", b.Rows, b.Cols, b.ld(), l.N)
		}
	}
	return l, nil
}

// linearPlan chooses the implementation of l (with all, asking every
// candidate, for ExplainLinear) and returns its plan.
func (o *Ops) linearPlan(l *linArgs, all bool) (linPlan, Choice, error) {
	names := make([]string, len(linearImpls))
	for i, im := range linearImpls {
		names[i] = im.name()
	}
	plans := make([]linPlan, len(linearImpls))
	c, i := o.choose("Linear", names, all, func(i int) (string, decline) {
		p, why := linearImpls[i].plan(o, l)
		plans[i] = p
		return p.spec.Name, why
	})
	if i < 0 {
		return linPlan{}, c, c.noImpl()
	}
	return plans[i], c, nil
}

// ExplainLinear says which implementation Linear would choose on o's device
// for dense operands x [m, k], w [n, k] and y [m, n] (float32, or fp16 with
// half), and why every other candidate declines or ranks below it. Nothing
// is allocated or recorded.
func (o *Ops) ExplainLinear(m, k, n int, half bool) Choice {
	x := Mat{Rows: m, Cols: k, Ld: k, Half: half}
	w := Mat{Rows: n, Cols: k, Ld: k, Half: half}
	y := Mat{Rows: m, Cols: n, Ld: n, Half: half}
	l := &linArgs{x: x, w: w, y: y, half: half, esize: x.esize(), M: m, K: k, N: n}
	_, c, _ := o.linearPlan(l, true)
	return c
}

// bufBytes is the size of m's buffer, or, for the buffer-less views of the
// Explain methods, the end of m's dense extent.
func bufBytes(m Mat) int64 {
	if m.Buf == nil {
		return (int64(m.Off) + int64(m.Rows-1)*int64(m.ld()) + int64(m.Cols)) * m.esize()
	}
	return m.Buf.Size()
}

// linearPieces returns the columns (rows of w) and rows (of x and y) of a
// Linear's pieces for an output block of bm x bn per workgroup: x and w
// rows span kext elements and bind at most xwCap elements, y rows at most
// yCap, and column pieces are multiples of colMult (whole texels of y for
// the texel kernel). Either is 0 when a row does not fit.
func (o *Ops) linearPieces(l *linArgs, kext, xwCap, yCap, bm, bn, colMult int64) (nc, rc int64) {
	ldx, ldw, ldy := int64(l.x.ld()), int64(l.w.ld()), int64(l.y.ld())
	M, N := int64(l.M), int64(l.N)
	capacity := o.capElems()
	// Column pieces: rows of w (and columns of y and b).
	nc = min(maxCount(ldw, kext, xwCap, N), capacity, int64(o.groups[0])*bn)
	// Row pieces: rows of x and y.
	rc = min(maxCount(ldx, kext, xwCap, M), maxCount(ldy, nc, yCap, M), int64(o.groups[1])*bm)
	if nc < 1 || rc < 1 {
		return 0, 0
	}
	if nc < N && nc >= bn {
		nc -= nc % bn
	}
	nc -= nc % colMult
	if nc < 1 {
		return 0, 0
	}
	if rc < M && rc >= bm {
		rc -= rc % bm
	}
	return nc, rc
}

// storagePieces is linearPieces for kernels that bind storage buffers, and
// its reason when a row does not fit.
func (o *Ops) storagePieces(l *linArgs, p *linPlan) decline {
	capacity := o.capElems()
	p.nc, p.rc = o.linearPieces(l, int64(l.K), capacity, capacity, p.bm, p.bn, 1)
	if p.nc < 1 || p.rc < 1 {
		return declinef("a row of %d elements does not fit one binding of at most %d bytes", l.K, o.maxRange)
	}
	return ""
}

// linearRecord records l with plan p: column pieces of w, b and y, and row
// pieces of x and y within them, one dispatch each.
func (o *Ops) linearRecord(seq *vk.Sequence, l *linArgs, p linPlan) error {
	k, err := o.kernelSpec(p.spec)
	if err != nil {
		return err
	}
	x, w, b, y, esize := l.x, l.w, l.b, l.y, l.esize
	ldx, ldw, ldy := int64(x.ld()), int64(w.ld()), int64(y.ld())
	M, K, N := int64(l.M), int64(l.K), int64(l.N)
	kext := K
	bindIn := func(buf *vk.Buffer, off, n int64) (vk.Binding, uint32, error) {
		return o.bindSized(buf, off, n, esize, false)
	}
	bindOut := func(buf *vk.Buffer, off, n int64) (vk.Binding, uint32, error) {
		return o.bindSized(buf, off, n, esize, true)
	}
	if p.texel {
		kext = ceilDiv(K, 4) * 4 // whole texels of x and w
		bindIn = func(buf *vk.Buffer, off, n int64) (vk.Binding, uint32, error) {
			return o.linTexBind(buf, off, n, esize)
		}
		bindOut = func(buf *vk.Buffer, off, n int64) (vk.Binding, uint32, error) {
			bd, eoff, err := o.linTexBind(buf, off, n, esize)
			bd.Write = true
			return bd, eoff, err
		}
	}
	for n0 := int64(0); n0 < N; n0 += p.nc {
		n := min(p.nc, N-n0)
		wb, woff, err := bindIn(w.Buf, int64(w.Off)+n0*ldw, (n-1)*ldw+kext)
		if err != nil {
			return err
		}
		bb, boff := o.dummyBinding(), uint32(0)
		if b != nil {
			if bb, boff, err = o.bindSized(b.Buf, int64(b.Off)+n0, n, esize, false); err != nil {
				return err
			}
		}
		for r0 := int64(0); r0 < M; r0 += p.rc {
			r := min(p.rc, M-r0)
			xb, xoff, err := bindIn(x.Buf, int64(x.Off)+r0*ldx, (r-1)*ldx+kext)
			if err != nil {
				return err
			}
			yb, yoff, err := bindOut(y.Buf, int64(y.Off)+r0*ldy+n0, (r-1)*ldy+n)
			if err != nil {
				return err
			}
			push := matmulPush{M: uint32(r), N: uint32(n), K: uint32(K), LdX: uint32(ldx), LdW: uint32(ldw), LdY: uint32(ldy),
				XOff: xoff, WOff: woff, BOff: boff, YOff: yoff, HasBias: flag(b != nil)}
			groups := [3]uint32{uint32(ceilDiv(n, p.bn)), uint32(ceilDiv(r, p.bm)), 1}
			if a := p.vecAlign; a > 1 && (xoff|woff|uint32(ldx)|uint32(ldw))%a != 0 {
				return fmt.Errorf("ops: internal error: Linear piece offsets %d, %d or strides %d, %d not multiples of %d", xoff, woff, ldx, ldw, a)
			}
			if err := seq.Dispatch(k, groups, vk.PushStruct(&push), xb, wb, bb, yb); err != nil {
				return fmt.Errorf("ops: Linear (%s): %w", p.spec.Name, err)
			}
		}
	}
	return nil
}
