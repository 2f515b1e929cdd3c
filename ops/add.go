package ops

import (
	"fmt"
	"math"

	"github.com/isab-vk/isab-vk/shaders"
	"github.com/isab-vk/isab-vk/vk"
)

// addWG is add.comp's workgroup size: one invocation per element.
const addWG = 64

// Add records y = a + b, or y = a + relu(b) when relu is set, elementwise
// over rows x cols matrices: the residual connections of the Set
// Transformer's MAB. b and y have the same shape; a has it too, or has fewer
// rows that divide y's, and then repeats along y (row r of y uses row
// r % a.Rows of a), as a parameter shared by every batch element. y must
// not overlap a or b. The operands are all float32 or all half (Mat.Half,
// summed in float32).
func (o *Ops) Add(seq *vk.Sequence, a, b, y Mat, relu bool) error {
	for _, m := range []struct {
		what string
		m    Mat
	}{{"ops: Add a", a}, {"ops: Add b", b}, {"ops: Add y", y}} {
		if err := m.m.check(m.what); err != nil {
			return err
		}
	}
	rows, cols := y.Rows, y.Cols
	if b.Rows != rows || b.Cols != cols {
		return fmt.Errorf("ops: Add: b is %dx%d, want %dx%d like y", b.Rows, b.Cols, rows, cols)
	}
	if a.Cols != cols || a.Rows > rows || rows%a.Rows != 0 {
		return fmt.Errorf("ops: Add: a is %dx%d, want %d columns and a number of rows that divides %d", a.Rows, a.Cols, cols, rows)
	}
	repeat := a.Rows < rows
	kernel, es, err := o.elemKernel("Add", shaders.Add, shaders.AddF16, y.Half, a.Half, b.Half)
	if err != nil {
		return err
	}
	k, err := kernelFor[addPush](o, kernel, addWG)
	if err != nil {
		return err
	}
	lda, ldb, ldy := int64(a.ld()), int64(b.ld()), int64(y.ld())
	capacity := o.capElems()
	maxGroups := int64(o.groups[0]) * int64(o.groups[1])
	// Rows per piece: every binding fits, the element count fits 32 bits and
	// the workgroups fit the grid.
	rc := min(maxCount(ldb, int64(cols), capacity, int64(rows)), maxCount(ldy, int64(cols), capacity, int64(rows)),
		int64(math.MaxUint32-addWG)/int64(cols), maxGroups*addWG/int64(cols))
	// A repeated a that fits one binding is bound whole; else every piece
	// stays within one period of a and binds the rows it uses.
	wrap := repeat && int64(a.Rows-1)*lda+int64(cols) <= capacity
	if !wrap {
		rc = min(rc, maxCount(lda, int64(cols), capacity, int64(rows)))
	}
	if rc < 1 {
		return fmt.Errorf("ops: Add: a row of %d elements does not fit one binding of at most %d bytes", cols, o.maxRange)
	}
	for r0 := int64(0); r0 < int64(rows); {
		r := min(rc, int64(rows)-r0)
		var ab vk.Binding
		var aoff, aRows, aRow0 uint32
		switch {
		case wrap:
			ab, aoff, err = o.bindSized(a.Buf, int64(a.Off), int64(a.Rows-1)*lda+int64(cols), es, false)
			aRows, aRow0 = uint32(a.Rows), uint32(r0%int64(a.Rows))
		case repeat:
			ar0 := r0 % int64(a.Rows)
			r = min(r, int64(a.Rows)-ar0)
			ab, aoff, err = o.bindSized(a.Buf, int64(a.Off)+ar0*lda, (r-1)*lda+int64(cols), es, false)
		default:
			ab, aoff, err = o.bindSized(a.Buf, int64(a.Off)+r0*lda, (r-1)*lda+int64(cols), es, false)
		}
		if err != nil {
			return err
		}
		bb, boff, err := o.bindSized(b.Buf, int64(b.Off)+r0*ldb, (r-1)*ldb+int64(cols), es, false)
		if err != nil {
			return err
		}
		yb, yoff, err := o.bindSized(y.Buf, int64(y.Off)+r0*ldy, (r-1)*ldy+int64(cols), es, true)
		if err != nil {
			return err
		}
		push := addPush{Rows: uint32(r), Cols: uint32(cols), LdA: uint32(lda), LdB: uint32(ldb), LdY: uint32(ldy),
			AOff: aoff, BOff: boff, YOff: yoff, ARows: aRows, ARow0: aRow0, ReLU: flag(relu)}
		if err := seq.Dispatch(k, grid2D(ceilDiv(r*int64(cols), addWG), o.groups[0]), vk.PushStruct(&push), ab, bb, yb); err != nil {
			return fmt.Errorf("ops: Add: %w", err)
		}
		r0 += r
	}
	return nil
}
