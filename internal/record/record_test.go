package record

import (
	"context"
	"math/rand"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/ops"
	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/vk"
)

// TestViews checks the matrices that views of an activation give: rows
// and columns of a strided activation, and which views are adjacent.
func TestViews(t *testing.T) {
	const batch = 3
	a := Act{N: 33, D: 10, Stride: 40} // 33 rows used of 40 per batch element
	if a.adjacent() || a.IsShared() {
		t.Errorf("%+v: adjacent %v, shared %v; want neither", a, a.adjacent(), a.IsShared())
	}
	v := a.Rows(7, 5).Cols(4, 3)
	if v.Off != 7*10+4 || v.N != 5 || v.D != 3 || v.ld() != 10 || v.batchStride() != 400 {
		t.Errorf("rows 7..11, cols 4..6 of %+v: %+v", a, v)
	}
	if m := v.elem(2); m.Off != 7*10+4+2*400 || m.Rows != 5 || m.Cols != 3 || m.Ld != 10 {
		t.Errorf("batch element 2 of %+v: %+v", v, m)
	}
	if m := v.span(batch); m.Rows != 2*40+5 {
		t.Errorf("span of %+v: %d rows, want %d", v, m.Rows, 2*40+5)
	}
	d := Batched(nil, 7, 2, true)
	if !d.adjacent() || d.all(batch).Rows != 21 || !d.all(batch).Half || d.elems(batch) != 42 {
		t.Errorf("dense %+v: adjacent %v, all %+v, elems %d", d, d.adjacent(), d.all(batch), d.elems(batch))
	}
	s := Shared(nil, 1, 5, false)
	if !s.IsShared() || !s.adjacent() || s.all(batch).Rows != 1 || s.batchStride() != 0 || s.elems(batch) != 5 {
		t.Errorf("shared %+v: all %+v, elems %d", s, s.all(batch), s.elems(batch))
	}
	if _, err := Keys(Batched(nil, 3, 5, false)).source(batch); err == nil {
		t.Error("keys and values of an odd width were accepted")
	}
}

func upload(t *testing.T, d *vk.Device, v []float32) *vk.Buffer {
	t.Helper()
	b, err := vk.BufferFrom(d, v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Free)
	return b
}

func random(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// TestLinearViews records Linear from strided row views of a batch into
// column views of a wider activation (one Linear per batch element), from
// a shared set (one Linear), and Add with a shared left operand, and checks
// them against the float64 reference, with odd sizes.
func TestLinearViews(t *testing.T) {
	d := testutil.Device(t)
	o, err := ops.New(d)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	const batch, stride, first, n, in, out = 2, 9, 1, 7, 5, 3
	r := rand.New(rand.NewSource(1))
	xs, ws, bs := random(r, batch*stride*in), random(r, out*in), random(r, out)
	ss, ws2 := random(r, n*out), random(r, out*out)
	x := Act{Buf: upload(t, d, xs), N: stride, D: in, Stride: stride}.Rows(first, n)
	lin := Linear{W: upload(t, d, ws), B: upload(t, d, bs), In: in, Out: out}
	shared := Shared(upload(t, d, ss), n, out, false)
	lin2 := Linear{W: upload(t, d, ws2), In: out, Out: out}

	rec := New(o, batch, false)
	defer rec.Close()
	rec.Step("linear")
	wide := rec.Alloc(n, 2*out+1, false)
	rec.LinearInto(x, lin, wide.Cols(out, out)) // columns out .. 2*out-1
	rec.Step("add")
	sum := rec.Add(shared, rec.Linear(shared, lin2), true) // shared + relu(lin2(shared)), shared too
	if err := rec.Err(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Seq().Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, l := range rec.Labels() {
		if l != "linear" && l != "add" {
			t.Errorf("dispatch %d labelled %q", i, l)
		}
	}
	got, err := vk.Download[float32](wide.Buf, 0, batch*n*(2*out+1))
	if err != nil {
		t.Fatal(err)
	}
	for b := 0; b < batch; b++ {
		xb := f64(xs[(b*stride+first)*in : (b*stride+first+n)*in])
		want := ref.Linear(xb, n, in, f64(ws), out, f64(bs))
		var gb []float32
		for i := 0; i < n; i++ {
			row := (b*n + i) * (2*out + 1)
			gb = append(gb, got[row+out:row+2*out]...)
		}
		if e := ref.NMSE(gb, want); !(e < 1e-10) {
			t.Errorf("batch element %d: NMSE %.3g", b, e)
		}
	}
	gotSum, err := vk.Download[float32](sum.Buf, 0, n*out)
	if err != nil {
		t.Fatal(err)
	}
	want := ref.Linear(f64(ss), n, out, f64(ws2), out, nil)
	for i := range want {
		want[i] = float64(ss[i]) + max(want[i], 0)
	}
	if e := ref.NMSE(gotSum, want); !(e < 1e-10) {
		t.Errorf("shared add: NMSE %.3g", e)
	}
}

// TestStickyError checks that the first error is kept with its step, that
// later operations record nothing, and that the activation counters count
// what was allocated.
func TestStickyError(t *testing.T) {
	d := testutil.Device(t)
	o, err := ops.New(d)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	rec := New(o, 2, false)
	defer rec.Close()
	x := rec.Alloc(3, 4, false)
	if got := rec.ActivationBytes(); got != 2*3*4*4 {
		t.Errorf("ActivationBytes %d after one [2, 3, 4] activation, want %d", got, 2*3*4*4)
	}
	w := upload(t, d, make([]float32, 5*6))
	rec.Step("bad")
	y := rec.Linear(x, Linear{W: w, In: 6, Out: 5}) // x has 4 features, not 6
	rec.Step("later")
	rec.Linear(y, Linear{W: w, In: 6, Out: 5})
	err = rec.Err()
	if err == nil || !strings.Contains(err.Error(), "step bad") {
		t.Fatalf("error %v, want one naming step bad", err)
	}
	if n := rec.Seq().Len(); n != 0 || len(rec.Labels()) != 0 {
		t.Errorf("%d dispatches and %d labels recorded after the error", n, len(rec.Labels()))
	}
	if rec.ScratchBytes() != 0 {
		t.Errorf("ScratchBytes %d without an attention", rec.ScratchBytes())
	}
}
