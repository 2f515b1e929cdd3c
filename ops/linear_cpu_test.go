package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/vk"
)

// linearCase runs one Linear on random data and checks it against the
// float64 reference: x is m x k with row stride ldx after xoff elements, w
// is n x k with stride ldw after woff, y is m x n with stride n+1 after 2,
// and b (when bias) n elements after 3. It returns the recorded sequence.
func linearCase(t *testing.T, o *Ops, rng *rand.Rand, m, k, n, xoff, ldx, woff, ldw int, bias bool) *vk.Sequence {
	t.Helper()
	d := o.Device()
	x := randMat(rng, xoff, m, k, ldx, 1)
	w := randMat(rng, woff, n, k, ldw, 1/math.Sqrt(float64(k)))
	xm := Mat{Buf: upload(t, d, x.host), Off: xoff, Rows: m, Cols: k, Ld: ldx}
	wm := Mat{Buf: upload(t, d, w.host), Off: woff, Rows: n, Cols: k, Ld: ldw}
	ym := Mat{Buf: newBuf(t, d, 2+m*(n+1)), Off: 2, Rows: m, Cols: n, Ld: n + 1}
	var bm *Mat
	var bd []float64
	if bias {
		b := randMat(rng, 3, 1, n, n, 1)
		bm = &Mat{Buf: upload(t, d, b.host), Off: 3, Rows: 1, Cols: n}
		bd = b.dense
	}
	seq := run(t, d, func(seq *vk.Sequence) error { return o.Linear(seq, xm, wm, bm, ym) })
	checkNMSE(t, "Linear", readMat(t, ym), ref.Linear(x.dense, m, k, w.dense, n, bd))
	return seq
}

// linearCPUOps returns Ops with the CPU (lavapipe) configurations, whatever the
// device.
func linearCPUOps(t testing.TB, opts ...Option) *Ops {
	t.Helper()
	return linTexOps(t, append(opts, turnOff("matmul_tex"))...) // matmul_cpu.comp, not matmul_tex.comp
}

// TestLinearCPUSizes runs the CPU kernel (matmul_cpu.comp) over every
// combination of the odd sizes 1, 7, 33 and 257 for M, N and K, with dense
// operands (scalar loads, as K is not a multiple of 4), with offsets and
// strides that are not multiples of 4 (scalar loads), with 16-byte aligned
// ones that are not all multiples of 8 (vec4 loads and a scalar tail), and
// with 32-byte aligned ones (u64vec4 loads and a scalar tail), bias on and
// off.
func TestLinearCPUSizes(t *testing.T) {
	o := linearCPUOps(t)
	rng := rand.New(rand.NewPCG(31, 32))
	sizes := []int{1, 7, 33, 257}
	i := 0
	for _, m := range sizes {
		for _, n := range sizes {
			for _, k := range sizes {
				i++
				bias := i%2 == 0
				t.Run(fmt.Sprintf("%dx%dx%d", m, n, k), func(t *testing.T) {
					if m*n*k > 1<<20 && testing.Short() {
						t.Skip("large case in -short mode")
					}
					t.Run("dense", func(t *testing.T) { linearCase(t, o, rng, m, k, n, 0, k, 0, k, bias) })
					t.Run("odd", func(t *testing.T) { linearCase(t, o, rng, m, k, n, 1, k+3, 5, k+2, !bias) })
					a := (k+7)/8*8 + 4 // a multiple of 4, not of 8
					t.Run("aligned4", func(t *testing.T) { linearCase(t, o, rng, m, k, n, 4, a, 8, a+4, bias) })
					a8 := (k+7)/8*8 + 8
					t.Run("aligned8", func(t *testing.T) { linearCase(t, o, rng, m, k, n, 8, a8, 16, a8+8, !bias) })
				})
			}
		}
	}
}

// TestLinearCPUVec checks which loads matmul_cpu.comp gets: u64vec4 only
// when the offsets and strides of x and w are all multiples of 8 and the
// device has shaderInt64 (as the ISAB shapes, dense with K = 512 or 1024),
// vec4 when they are multiples of 4, scalar otherwise; and that without
// shaderInt64 the CPU configuration leaves Linear to matmul.comp, which
// still computes it.
func TestLinearCPUVec(t *testing.T) {
	o := linearCPUOps(t)
	if !o.info.Int64 {
		t.Skip("device without shaderInt64")
	}
	for _, c := range []struct{ xoff, ldx, woff, ldw, want int }{
		{0, 512, 0, 512, 2},
		{0, 1024, 0, 1024, 2},
		{8, 520, 16, 1024, 2},
		{4, 512, 0, 512, 1},
		{0, 516, 0, 512, 1},
		{0, 512, 12, 512, 1},
		{0, 512, 0, 1028, 1},
		{1, 512, 0, 512, 0},
		{0, 512, 0, 514, 0},
	} {
		if got := o.cpuVec(c.xoff, c.ldx, c.woff, c.ldw); got != c.want {
			t.Errorf("cpuVec(%d, %d, %d, %d) = %d, want %d", c.xoff, c.ldx, c.woff, c.ldw, got, c.want)
		}
	}
	for _, s := range []struct{ m, n, k int }{{16384, 1024, 512}, {16384, 512, 512}, {128, 512, 512}, {128, 1024, 512}, {4096, 512, 1024}} {
		if c, ok := o.linearCPU(s.m, s.n, s.k, o.cpuVec(0, s.k, 0, s.k)); !ok || c.VEC != 2 {
			t.Errorf("linearCPU(%d, %d, %d) = %+v, %v; want VEC 2", s.m, s.n, s.k, c, ok)
		}
	}

	o.info.Int64 = false
	if got := o.cpuVec(0, 512, 0, 512); got != 1 {
		t.Errorf("without shaderInt64, cpuVec(0, 512, 0, 512) = %d, want 1", got)
	}
	if _, ok := o.linearCPU(33, 33, 512, 1); ok {
		t.Errorf("without shaderInt64, linearCPU ok = true, want matmul.comp")
	}
	linearCase(t, o, rand.New(rand.NewPCG(37, 38)), 33, 64, 33, 0, 64, 0, 64, true)
}

// TestLinearCPUChunking lowers the binding limit to 4 KiB so that the CPU
// kernel runs in row and column pieces, each binding starting at an
// aligned offset with the remainder as element offset: with 8-aligned
// operands (u64vec4 loads in every piece), 4-aligned ones (vec4 loads)
// and odd ones (scalar loads).
func TestLinearCPUChunking(t *testing.T) {
	o := linearCPUOps(t, smallBindings(4096))
	rng := rand.New(rand.NewPCG(33, 34))
	for _, c := range []struct{ m, k, n, xoff, ldx, woff, ldw int }{
		{257, 36, 33, 4, 40, 8, 36},
		{257, 36, 33, 8, 40, 16, 48},
		{100, 33, 70, 1, 33, 0, 33},
		{33, 257, 7, 3, 259, 2, 261},
		{33, 257, 70, 8, 264, 24, 272},
		{7, 1000, 257, 4, 1000, 4, 1004},
		{7, 1000, 257, 8, 1000, 0, 1008},
	} {
		t.Run(fmt.Sprintf("%dx%dx%d_off%d_%d_ld%d_%d", c.m, c.k, c.n, c.xoff, c.woff, c.ldx, c.ldw), func(t *testing.T) {
			seq := linearCase(t, o, rng, c.m, c.k, c.n, c.xoff, c.ldx, c.woff, c.ldw, true)
			if seq.Len() < 2 {
				t.Errorf("Linear recorded %d dispatches, want pieces", seq.Len())
			}
		})
	}
}

// TestLinearCPULongK runs inner sizes at both sides of the CPU kernel's
// loop budget (about K/8 + 8 iterations per invocation with u64vec4 loads,
// K/4 + 4 with vec4 and scalar ones): the longest K that matmul_cpu.comp
// takes with each kind of load, and the first one that goes to matmul.comp
// instead.
func TestLinearCPULongK(t *testing.T) {
	if testing.Short() {
		t.Skip("long inner sizes in -short mode")
	}
	o := linearCPUOps(t)
	if !o.info.Int64 {
		t.Skip("device without shaderInt64")
	}
	rng := rand.New(rand.NewPCG(35, 36))
	k8 := 8 * (lavapipeLoopBudget - 8) // ceil(K/8) + 8 <= budget
	k4 := 4 * (lavapipeLoopBudget - 4) // ceil(K/4) + 4 <= budget
	for _, c := range []struct {
		k, xoff, ldx, woff, ldw, vec int
		cpu                          bool
	}{
		{k8, 0, k8, 0, k8, 2, true},
		{k8 + 8, 0, k8 + 8, 0, k8 + 8, 2, false},
		{k8 - 1, 8, k8 + 8, 0, k8, 2, true},
		{k4, 4, k4 + 4, 0, k4, 1, true},
		{k4 + 4, 4, k4 + 8, 0, k4 + 4, 1, false},
		{k4 - 1, 1, k4, 1, k4 - 1, 0, true},
	} {
		t.Run(fmt.Sprintf("K%d_vec%d", c.k, c.vec), func(t *testing.T) {
			m, n := 13, 9 // a full row block and a ragged column one
			vec := o.cpuVec(c.xoff, c.ldx, c.woff, c.ldw)
			if vec != c.vec {
				t.Fatalf("cpuVec = %d, want %d", vec, c.vec)
			}
			if _, ok := o.linearCPU(m, n, c.k, vec); ok != c.cpu {
				t.Fatalf("linearCPU(%d, %d, %d, %d) ok = %v, want %v", m, n, c.k, vec, ok, c.cpu)
			}
			linearCase(t, o, rng, m, c.k, n, c.xoff, c.ldx, c.woff, c.ldw, c.xoff == 0)
		})
	}
}
