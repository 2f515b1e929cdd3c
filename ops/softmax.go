package ops

import (
	"fmt"

	"github.com/isab-vk/isab-vk/shaders"
	"github.com/isab-vk/isab-vk/vk"
)

// rowWG picks the workgroup size of a one-workgroup-per-row kernel
// (softmax.comp, layernorm.comp) for rows of cols elements: a power of two
// from 32 to 256 on GPUs, from 8 to 64 on CPUs (never past the device's
// maxComputeWorkGroupInvocations), and wider where the loop
// budget (see lavapipeLoopBudget) needs it: each thread runs three loops of
// cols/WG iterations and two reductions of log2(WG). op names the operation
// in errors.
func (o *Ops) rowWG(op string, cols int) (int, error) {
	lo, hi := 32, 256
	if o.isCPU() {
		lo, hi = 8, 64
	}
	// The largest power of two the device takes in one workgroup.
	limit := 1
	for limit*2 <= int(o.info.MaxWorkgroup) {
		limit *= 2
	}
	hi = min(hi, limit)
	wg := min(max(nextPow2(cols), lo), hi)
	if o.loopBudget > 0 {
		for wg < limit && o.softmaxIters(cols, wg) > o.loopBudget {
			wg *= 2
		}
		if o.softmaxIters(cols, wg) > o.loopBudget {
			return 0, fmt.Errorf("ops: %s: rows of %d elements exceed what one workgroup of %s may loop over", op, cols, o.info.Name)
		}
	}
	return wg, nil
}

// softmaxIters estimates the loop iterations of one softmax invocation.
func (o *Ops) softmaxIters(cols, wg int) int64 {
	lg := int64(0)
	for p := 1; p < wg; p *= 2 {
		lg++
	}
	return 3*ceilDiv(int64(cols), int64(wg)) + 4*lg + 4
}

// Softmax records y = softmax(x * scale) over each row of x, where columns
// whose mask element is zero get the logit -FLT_MAX first (a row with every
// column masked becomes uniform). x and y have the same shape and must not
// overlap. mask is nil for none, else a uint32 buffer in which row r of x
// uses the cols elements from maskOff + (r / rowsPerMask) * ldMask
// (rowsPerMask >= 1; ldMask 0 shares one mask row by every row). x and y
// are both float32 or both half (Mat.Half; computed in float32).
func (o *Ops) Softmax(seq *vk.Sequence, x, y Mat, scale float32, mask *vk.Buffer, maskOff, rowsPerMask, ldMask int) error {
	if err := x.check("ops: Softmax x"); err != nil {
		return err
	}
	if err := y.check("ops: Softmax y"); err != nil {
		return err
	}
	rows, cols := x.Rows, x.Cols
	if y.Rows != rows || y.Cols != cols {
		return fmt.Errorf("ops: Softmax: y is %dx%d, want %dx%d", y.Rows, y.Cols, rows, cols)
	}
	rpm := int64(max(rowsPerMask, 1))
	ldm := int64(ldMask)
	if err := checkSoftmaxMask(rows, cols, mask, maskOff, rowsPerMask, ldMask); err != nil {
		return err
	}

	wg, err := o.rowWG("Softmax", cols)
	if err != nil {
		return err
	}
	kernel, es, err := o.elemKernel("Softmax", shaders.Softmax, shaders.SoftmaxF16, y.Half, x.Half)
	if err != nil {
		return err
	}
	k, err := kernelFor[softmaxPush](o, kernel, uint32(wg))
	if err != nil {
		return err
	}
	ldx, ldy := int64(x.ld()), int64(y.ld())
	if rc := o.softmaxPiece(x, y, mask != nil, rpm, ldm); rc < 1 {
		return fmt.Errorf("ops: Softmax: a row of %d elements does not fit one binding of at most %d bytes", cols, o.maxRange)
	}

	rc := o.softmaxPiece(x, y, mask != nil, rpm, ldm)
	for r0 := int64(0); r0 < int64(rows); {
		r := min(rc, int64(rows)-r0)
		kernelRPM := rpm
		if mask != nil {
			if r0%rpm != 0 || r < rpm {
				// Within one mask row: stop at its end and let every row
				// of the piece read mask row 0 of the binding.
				r = min(r, (r0/rpm+1)*rpm-r0)
				kernelRPM = r
			} else if r0+r < int64(rows) {
				r -= r % rpm // whole mask rows, so the next piece starts one
			}
		}
		xb, xoff, err := o.bindSized(x.Buf, int64(x.Off)+r0*ldx, (r-1)*ldx+int64(cols), es, false)
		if err != nil {
			return err
		}
		yb, yoff, err := o.bindSized(y.Buf, int64(y.Off)+r0*ldy, (r-1)*ldy+int64(cols), es, true)
		if err != nil {
			return err
		}
		mb, moff := o.dummyBinding(), uint32(0)
		if mask != nil {
			m0 := r0 / rpm
			m1 := (r0 + r - 1) / rpm
			if mb, moff, err = o.bind(mask, int64(maskOff)+m0*ldm, (m1-m0)*ldm+int64(cols), false); err != nil {
				return err
			}
		}
		push := softmaxPush{Rows: uint32(r), Cols: uint32(cols), LdX: uint32(ldx), LdY: uint32(ldy),
			XOff: xoff, YOff: yoff, MaskOff: moff, RowsPerMask: uint32(kernelRPM), LdMask: uint32(ldm),
			HasMask: flag(mask != nil), Scale: scale}
		if err := seq.Dispatch(k, grid2D(r, o.groups[0]), vk.PushStruct(&push), xb, mb, yb); err != nil {
			return fmt.Errorf("ops: Softmax: %w", err)
		}
		r0 += r
	}
	return nil
}

// checkSoftmaxMask reports a mask layout of Softmax (see there) that is
// invalid or reaches past its buffer; a nil mask is valid.
func checkSoftmaxMask(rows, cols int, mask *vk.Buffer, maskOff, rowsPerMask, ldMask int) error {
	if mask == nil {
		return nil
	}
	if rowsPerMask < 1 || ldMask < 0 || maskOff < 0 {
		return fmt.Errorf("ops: Softmax: bad mask layout (offset %d, %d rows per mask row, stride %d)", maskOff, rowsPerMask, ldMask)
	}
	last := int64(rows-1) / int64(rowsPerMask)
	return fits("ops: Softmax mask", mask, int64(maskOff), last*int64(ldMask)+int64(cols))
}

// softmaxPiece is the most rows of one Softmax piece: its x and y rows
// (and with a mask of ldm elements per rpm rows, its mask rows) fit one
// binding each, and one workgroup takes each row. 0 when a row does not fit.
func (o *Ops) softmaxPiece(x, y Mat, masked bool, rpm, ldm int64) int64 {
	rows, cols := int64(x.Rows), int64(x.Cols)
	capacity := o.capElems()
	maxGroups := int64(o.groups[0]) * int64(o.groups[1])
	rc := min(maxCount(int64(x.ld()), cols, capacity, rows), maxCount(int64(y.ld()), cols, capacity, rows), maxGroups)
	if masked && ldm > 0 {
		// A piece of rc rows whose first row starts a mask row spans
		// ceil(rc / rpm) mask rows.
		mrows := maxCount(ldm, cols, capacity, rows)
		rc = min(rc, mrows*rpm)
	}
	return rc
}
