package ops

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/vk"
)

// Tests of the Set Transformer's small kernels: Add (the residual
// connections) and LayerNorm.

func TestAdd(t *testing.T) { bothConfigs(t, testAdd) }

// TestAddChunking cuts the operands into many bindings.
func TestAddChunking(t *testing.T) { bothConfigs(t, testAdd, smallBindings(4096)) }

func testAdd(t *testing.T, o *Ops) {
	d := o.Device()
	rng := rand.New(rand.NewPCG(3, 4))
	cases := []struct {
		rows, cols, aRows int
		relu              bool
		pad               int
	}{
		{1, 1, 1, false, 0},
		{7, 33, 7, true, 3},
		{33, 7, 33, false, 1},
		{257, 33, 257, true, 0},
		{257, 7, 1, true, 2},
		{66, 33, 33, false, 5},
		{1000, 257, 8, true, 1},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%dx%d_a%d_relu%v_pad%d", c.rows, c.cols, c.aRows, c.relu, c.pad), func(t *testing.T) {
			ld := c.cols + c.pad
			a := randMat(rng, c.pad, c.aRows, c.cols, ld, 1)
			b := randMat(rng, 2*c.pad, c.rows, c.cols, ld, 1)
			ab, bb := upload(t, d, a.host), upload(t, d, b.host)
			y := Mat{Buf: newBuf(t, d, c.pad+c.rows*ld), Off: c.pad, Rows: c.rows, Cols: c.cols, Ld: ld}
			run(t, d, func(seq *vk.Sequence) error {
				return o.Add(seq, Mat{Buf: ab, Off: c.pad, Rows: c.aRows, Cols: c.cols, Ld: ld},
					Mat{Buf: bb, Off: 2 * c.pad, Rows: c.rows, Cols: c.cols, Ld: ld}, y, c.relu)
			})
			want := make([]float64, c.rows*c.cols)
			for r := 0; r < c.rows; r++ {
				for j := 0; j < c.cols; j++ {
					v := b.dense[r*c.cols+j]
					if c.relu {
						v = max(v, 0)
					}
					want[r*c.cols+j] = a.dense[(r%c.aRows)*c.cols+j] + v
				}
			}
			checkNMSE(t, "Add", readMat(t, y), want)
		})
	}
}

func TestLayerNorm(t *testing.T) { bothConfigs(t, testLayerNorm) }

// TestLayerNormChunking cuts the rows into many bindings.
func TestLayerNormChunking(t *testing.T) { bothConfigs(t, testLayerNorm, smallBindings(4096)) }

func testLayerNorm(t *testing.T, o *Ops) {
	d := o.Device()
	rng := rand.New(rand.NewPCG(5, 6))
	cases := []struct{ rows, cols, pad int }{
		{1, 1, 0}, {7, 7, 1}, {33, 33, 0}, {257, 7, 3}, {7, 257, 2}, {300, 128, 0}, {3, 1000, 1},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%dx%d_pad%d", c.rows, c.cols, c.pad), func(t *testing.T) {
			ld := c.cols + c.pad
			// An offset mean checks that the variance does not cancel.
			x := randMat(rng, c.pad, c.rows, c.cols, ld, 3)
			for i := range x.dense {
				x.dense[i] += 10
			}
			for r := 0; r < c.rows; r++ {
				for j := 0; j < c.cols; j++ {
					x.host[c.pad+r*ld+j] += 10
					x.dense[r*c.cols+j] = float64(x.host[c.pad+r*ld+j])
				}
			}
			w := randMat(rng, 1, 1, c.cols, c.cols, 1)
			b := randMat(rng, 2, 1, c.cols, c.cols, 1)
			xb, wb, bb := upload(t, d, x.host), upload(t, d, w.host), upload(t, d, b.host)
			y := Mat{Buf: newBuf(t, d, c.rows*ld), Rows: c.rows, Cols: c.cols, Ld: ld}
			run(t, d, func(seq *vk.Sequence) error {
				return o.LayerNorm(seq, Mat{Buf: xb, Off: c.pad, Rows: c.rows, Cols: c.cols, Ld: ld}, y,
					Dense(wb, 1, 1, c.cols), Dense(bb, 2, 1, c.cols), 1e-5)
			})
			want := ref.LayerNorm(x.dense, c.rows, c.cols, w.dense, b.dense, 1e-5)
			checkNMSE(t, "LayerNorm", readMat(t, y), want)
		})
	}
}

func TestSetOpsErrors(t *testing.T) {
	o := testOps(t)
	d := o.Device()
	buf := newBuf(t, d, 64)
	seq := d.NewSequence()
	defer seq.Close()
	m := func(rows, cols int) Mat { return Dense(buf, 0, rows, cols) }
	other := newBuf(t, d, 64)
	y := Dense(other, 0, 4, 4)
	for name, err := range map[string]error{
		"add b shape":     o.Add(seq, m(4, 4), m(3, 4), y, false),
		"add a rows":      o.Add(seq, m(3, 4), m(4, 4), y, false),
		"add a cols":      o.Add(seq, m(4, 3), m(4, 4), y, false),
		"add outside":     o.Add(seq, m(4, 40), m(4, 4), y, false),
		"ln y shape":      o.LayerNorm(seq, m(4, 4), Dense(other, 0, 3, 4), m(1, 4), m(1, 4), 1e-5),
		"ln weight width": o.LayerNorm(seq, m(4, 4), y, m(1, 3), m(1, 4), 1e-5),
		"ln negative eps": o.LayerNorm(seq, m(4, 4), y, m(1, 4), m(1, 4), -1),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if seq.Len() != 0 {
		t.Errorf("failed calls recorded %d dispatches", seq.Len())
	}
}
