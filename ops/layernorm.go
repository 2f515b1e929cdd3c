package ops

import (
	"fmt"

	"github.com/isab-vk/isab-vk/shaders"
	"github.com/isab-vk/isab-vk/vk"
)

// LayerNorm records PyTorch's LayerNorm over each row of x, written to y:
// y = (x - mean) / sqrt(var + eps) * weight + bias, with the biased
// variance of the row. weight and bias hold x.Cols consecutive elements from
// their Off (their Rows*Cols must equal x.Cols). x and y have the same shape
// and y must not overlap the others. The operands are all float32 or all
// half (Mat.Half; the statistics are float32).
func (o *Ops) LayerNorm(seq *vk.Sequence, x, y, weight, bias Mat, eps float32) error {
	for _, m := range []struct {
		what string
		m    Mat
	}{{"ops: LayerNorm x", x}, {"ops: LayerNorm y", y}, {"ops: LayerNorm weight", weight}, {"ops: LayerNorm bias", bias}} {
		if err := m.m.check(m.what); err != nil {
			return err
		}
	}
	rows, cols := x.Rows, x.Cols
	if y.Rows != rows || y.Cols != cols {
		return fmt.Errorf("ops: LayerNorm: y is %dx%d, want %dx%d", y.Rows, y.Cols, rows, cols)
	}
	for _, v := range []struct {
		what string
		m    Mat
	}{{"weight", weight}, {"bias", bias}} {
		if v.m.Rows*v.m.Cols != cols || (v.m.Rows > 1 && v.m.ld() != v.m.Cols) {
			return fmt.Errorf("ops: LayerNorm: %s is a %dx%d view (stride %d), want %d consecutive elements", v.what, v.m.Rows, v.m.Cols, v.m.ld(), cols)
		}
	}
	if !(eps >= 0) {
		return fmt.Errorf("ops: LayerNorm: eps %g must be at least 0", eps)
	}
	wg, err := o.rowWG("LayerNorm", cols)
	if err != nil {
		return err
	}
	kernel, es, err := o.elemKernel("LayerNorm", shaders.Layernorm, shaders.LayernormF16, y.Half, x.Half, weight.Half, bias.Half)
	if err != nil {
		return err
	}
	k, err := kernelFor[layerNormPush](o, kernel, uint32(wg))
	if err != nil {
		return err
	}
	ldx, ldy := int64(x.ld()), int64(y.ld())
	capacity := o.capElems()
	if int64(cols) > capacity {
		return fmt.Errorf("ops: LayerNorm: a row of %d elements does not fit one binding of at most %d bytes", cols, o.maxRange)
	}
	maxGroups := int64(o.groups[0]) * int64(o.groups[1])
	rc := min(maxCount(ldx, int64(cols), capacity, int64(rows)), maxCount(ldy, int64(cols), capacity, int64(rows)), maxGroups)
	if rc < 1 {
		return fmt.Errorf("ops: LayerNorm: a row of %d elements does not fit one binding of at most %d bytes", cols, o.maxRange)
	}
	wb, woff, err := o.bindSized(weight.Buf, int64(weight.Off), int64(cols), es, false)
	if err != nil {
		return err
	}
	bb, boff, err := o.bindSized(bias.Buf, int64(bias.Off), int64(cols), es, false)
	if err != nil {
		return err
	}
	for r0 := int64(0); r0 < int64(rows); {
		r := min(rc, int64(rows)-r0)
		xb, xoff, err := o.bindSized(x.Buf, int64(x.Off)+r0*ldx, (r-1)*ldx+int64(cols), es, false)
		if err != nil {
			return err
		}
		yb, yoff, err := o.bindSized(y.Buf, int64(y.Off)+r0*ldy, (r-1)*ldy+int64(cols), es, true)
		if err != nil {
			return err
		}
		push := layerNormPush{Rows: uint32(r), Cols: uint32(cols), LdX: uint32(ldx), LdY: uint32(ldy),
			XOff: xoff, YOff: yoff, WOff: woff, BOff: boff, Eps: eps}
		if err := seq.Dispatch(k, grid2D(r, o.groups[0]), vk.PushStruct(&push), xb, wb, bb, yb); err != nil {
			return fmt.Errorf("ops: LayerNorm: %w", err)
		}
		r0 += r
	}
	return nil
}
