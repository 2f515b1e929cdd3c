package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

// linTexOps returns Ops with the CPU (lavapipe) configurations, whatever the
// device, and cooperative matrices off, so that linearTexel applies.
func linTexOps(t testing.TB, opts ...Option) *Ops {
	t.Helper()
	o := testOps(t, append(opts, CoopMatrices(false))...)
	o.setCPU(true)
	o.loopBudget = lavapipeLoopBudget
	return o
}

// linTexCase is one Linear for linearTexel: x is m x k with row stride ldx
// after xoff elements, w is n x k with stride ldw after woff, y is m x n
// with stride ldy after yoff (ldy 0: stride n+4 after 4 elements), b (when
// bias) n elements after 3.
type linTexCase struct {
	m, k, n    int
	xoff, ldx  int
	woff, ldw  int
	yoff, ldy  int
	bias       bool
	wantHandle bool
}

// yLayout returns y's offset and row stride.
func (c linTexCase) yLayout() (off, ld int) {
	if c.ldy == 0 {
		return 4, c.n + 4
	}
	return c.yoff, c.ldy
}

func (c linTexCase) String() string {
	return fmt.Sprintf("%dx%dx%d_x%d+%d_w%d+%d_bias%v", c.m, c.n, c.k, c.xoff, c.ldx, c.woff, c.ldw, c.bias)
}

// runLinTexCase runs c through linearTexel on random data and checks it
// against the float64 reference, or, when c.wantHandle is false, that
// linearTexel declines it and records nothing.
func runLinTexCase(t *testing.T, o *Ops, rng *rand.Rand, c linTexCase) {
	t.Helper()
	d := o.Device()
	x := randMat(rng, c.xoff, c.m, c.k, c.ldx, 1)
	w := randMat(rng, c.woff, c.n, c.k, c.ldw, 1/math.Sqrt(float64(c.k)))
	xm := Mat{Buf: upload(t, d, x.host), Off: c.xoff, Rows: c.m, Cols: c.k, Ld: c.ldx}
	wm := Mat{Buf: upload(t, d, w.host), Off: c.woff, Rows: c.n, Cols: c.k, Ld: c.ldw}
	yoff, ldy := c.yLayout()
	ylen := yoff + (c.m-1)*ldy + c.n + 4
	const sentinel = 7.25
	fill := make([]float32, ylen)
	for i := range fill {
		fill[i] = sentinel
	}
	ym := Mat{Buf: upload(t, d, fill), Off: yoff, Rows: c.m, Cols: c.n, Ld: ldy}
	var bm *Mat
	var bd []float64
	if c.bias {
		b := randMat(rng, 3, 1, c.n, c.n, 1)
		bm = &Mat{Buf: upload(t, d, b.host), Off: 3, Rows: 1, Cols: c.n}
		bd = b.dense
	}
	if !runTexel(t, o, xm, wm, bm, ym, c.wantHandle) {
		return
	}
	checkNMSE(t, "Linear (texel)", readMat(t, ym), ref.Linear(x.dense, c.m, c.k, w.dense, c.n, bd))
	// Whole texels are stored: nothing outside y's view may change.
	all := readMat(t, Mat{Buf: ym.Buf, Rows: 1, Cols: ylen})
	for i, v := range all {
		r, col := (i-yoff)/ldy, (i-yoff)%ldy
		inside := i >= yoff && r < c.m && col < c.n
		if !inside && v != sentinel {
			t.Fatalf("element %d outside y's view (offset %d, stride %d) changed to %v", i, yoff, ldy, v)
		}
	}
}

// linearTexel records Linear with matmul_tex.comp alone: handled is false,
// with nothing recorded, where it declines (invalid views included).
func (o *Ops) linearTexel(seq *vk.Sequence, x, w Mat, b *Mat, y Mat) (handled bool, err error) {
	l, err := o.linearArgs(x, w, b, y)
	if err != nil {
		return false, nil
	}
	p, why := linearTex{}.plan(o, l)
	if why != "" {
		return false, nil
	}
	return true, o.linearRecord(seq, l, p)
}

// runTexel records x w^T (+ b) into y with linearTexel, checks that it
// handled the call exactly when want (recording nothing when it declined),
// runs it, and reports whether it ran.
func runTexel(t *testing.T, o *Ops, x, w Mat, b *Mat, y Mat, want bool) bool {
	t.Helper()
	seq := o.Device().NewSequence()
	defer seq.Close()
	handled, err := o.linearTexel(seq, x, w, b, y)
	if err != nil {
		t.Fatal(err)
	}
	if handled != want {
		t.Fatalf("handled = %v, want %v", handled, want)
	}
	if !handled {
		if n := seq.Len(); n != 0 {
			t.Fatalf("declined but recorded %d dispatches", n)
		}
		return false
	}
	if err := seq.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	return true
}

// TestLinearTexSizes runs matmul_tex over every combination of the sizes
// 1, 7, 33 and 257 for M, N and K, bias on and off, with offsets and row
// strides that are multiples of 4 floats but not of 8 (so texel bindings
// start inside their alignment unit), and with dense operands whose K is
// rounded up to a multiple of 4.
func TestLinearTexSizes(t *testing.T) {
	o := linTexOps(t)
	rng := rand.New(rand.NewPCG(71, 72))
	sizes := []int{1, 7, 33, 257}
	i := 0
	for _, m := range sizes {
		for _, n := range sizes {
			for _, k := range sizes {
				i++
				k4 := (k + 3) / 4 * 4
				ldx := k4 // 4 mod 8
				if k4%8 == 0 {
					ldx = k4 + 4
				}
				// y is n+4 wide with n columns: an odd n leaves y's rows
				// off texels (Linear's other kernels take it).
				c := linTexCase{m: m, k: k, n: n, xoff: 4, ldx: ldx, woff: 12, ldw: ldx + 8, bias: i%2 == 0, wantHandle: n%4 == 0}
				t.Run(c.String(), func(t *testing.T) { runLinTexCase(t, o, rng, c) })
				// Dense, K and n multiples of 4 (so the last row of each
				// buffer ends on a texel).
				n4 := (n + 3) / 4 * 4
				c = linTexCase{m: m, k: k4, n: n4, xoff: 0, ldx: k4, woff: 0, ldw: k4, yoff: 0, ldy: n4, bias: i%2 == 1, wantHandle: true}
				t.Run(c.String(), func(t *testing.T) { runLinTexCase(t, o, rng, c) })
			}
		}
	}
}

// TestLinearTexDeclines checks that linearTexel leaves to Linear's other
// kernels what it cannot run: unaligned offsets or strides, GPUs, half
// operands, windows that would leave their buffers, K past the loop budget
// and invalid views.
func TestLinearTexDeclines(t *testing.T) {
	o := linTexOps(t)
	rng := rand.New(rand.NewPCG(73, 74))
	for _, c := range []linTexCase{
		{m: 7, k: 33, n: 9, xoff: 1, ldx: 36, woff: 0, ldw: 36},
		{m: 7, k: 33, n: 9, xoff: 0, ldx: 34, woff: 0, ldw: 36},
		{m: 7, k: 33, n: 9, xoff: 0, ldx: 36, woff: 2, ldw: 36},
		{m: 7, k: 33, n: 9, xoff: 0, ldx: 36, woff: 0, ldw: 33},
		{m: 7, k: 7, n: 9, xoff: 0, ldx: 7, woff: 0, ldw: 7},
	} {
		t.Run(c.String(), func(t *testing.T) { runLinTexCase(t, o, rng, c) })
	}

	d := o.Device()
	x := Dense(newBuf(t, d, 8*16), 0, 8, 16)
	w := Dense(newBuf(t, d, 8*16), 0, 8, 16)
	y := Dense(newBuf(t, d, 8*8), 0, 8, 8)
	seq := d.NewSequence()
	defer seq.Close()
	decline := func(what string, o *Ops, x, w Mat, b *Mat, y Mat) {
		t.Helper()
		handled, err := o.linearTexel(seq, x, w, b, y)
		if handled || err != nil {
			t.Errorf("%s: handled %v, err %v; want declined", what, handled, err)
		}
	}
	// The last row of x, rounded up to a whole texel, leaves its buffer.
	xs := Mat{Buf: newBuf(t, d, 3*16+15), Rows: 4, Cols: 15, Ld: 16}
	decline("window past the buffer", o, xs, Mat{Buf: w.Buf, Rows: 8, Cols: 15, Ld: 16}, nil, Dense(y.Buf, 0, 4, 8))
	decline("wrong shapes", o, x, Dense(w.Buf, 0, 8, 12), nil, y)
	decline("view past the buffer", o, Dense(x.Buf, 4, 8, 16), w, nil, y)
	bad := Dense(newBuf(t, d, 7), 0, 1, 7)
	decline("bias length", o, x, w, &bad, y)
	h := x
	h.Half = true
	decline("half x", o, h, w, nil, y)
	g := testOps(t)
	g.setCPU(false)
	decline("GPU configuration", g, x, w, nil, y)
	long := linTexOps(t)
	long.loopBudget = 3 // x has K 16: 4 iterations
	decline("K past the loop budget", long, x, w, nil, y)
	if n := seq.Len(); n != 0 {
		t.Errorf("declined calls recorded %d dispatches", n)
	}
}

// TestLinearTexChunking lowers the binding range so that x, w and y are cut
// into row and column pieces (texel and storage windows alike).
func TestLinearTexChunking(t *testing.T) {
	o := linTexOps(t, smallBindings(4096))
	rng := rand.New(rand.NewPCG(75, 76))
	for _, c := range []linTexCase{
		{m: 300, k: 65, n: 72, xoff: 4, ldx: 68, woff: 8, ldw: 76, bias: true, wantHandle: true},
		{m: 33, k: 129, n: 132, xoff: 12, ldx: 132, woff: 4, ldw: 140, bias: false, wantHandle: true},
		// w windows of fewer than 4 rows cannot feed whole texels of y.
		{m: 33, k: 257, n: 132, xoff: 12, ldx: 260, woff: 4, ldw: 268, bias: false, wantHandle: false},
		{m: 1, k: 200, n: 8, xoff: 4, ldx: 200, woff: 4, ldw: 204, bias: true, wantHandle: true},
	} {
		t.Run(c.String(), func(t *testing.T) { runLinTexCase(t, o, rng, c) })
	}
	// A row longer than a binding: declined.
	runLinTexCase(t, o, rng, linTexCase{m: 2, k: 1100, n: 3, xoff: 0, ldx: 1100, woff: 0, ldw: 1100})
}

// TestLinearTexTexelLimit lowers the device's texel-buffer limit (not the
// range limit) so that only the texel windows of x and w force pieces.
func TestLinearTexTexelLimit(t *testing.T) {
	o := linTexOps(t)
	// 1200 floats from any offset, whatever the texel offset alignment.
	o.info.MaxTexelBufferElements = 300 + max(o.info.MinTexelBufferOffsetAlignment, 16)/16 - 1
	rng := rand.New(rand.NewPCG(81, 82))
	for _, c := range []linTexCase{
		{m: 100, k: 130, n: 52, xoff: 4, ldx: 132, woff: 8, ldw: 140, bias: true, wantHandle: true},
		{m: 3, k: 290, n: 8, xoff: 4, ldx: 292, woff: 4, ldw: 292, bias: false, wantHandle: true},
		{m: 3, k: 1201, n: 4, xoff: 4, ldx: 1204, woff: 4, ldw: 1204, bias: false, wantHandle: false},
	} {
		t.Run(c.String(), func(t *testing.T) { runLinTexCase(t, o, rng, c) })
	}
}

// TestLinearTexLongK runs an inner size near the loop budget: about K/4
// iterations of the main loop.
func TestLinearTexLongK(t *testing.T) {
	o := linTexOps(t)
	rng := rand.New(rand.NewPCG(77, 78))
	k := 4*(lavapipeLoopBudget-8) + 3
	if c, _ := o.linTexConfig(3, 12, k); c.loops(k) > o.loopBudget {
		t.Fatalf("K = %d loops %d times, past the budget %d", k, c.loops(k), o.loopBudget)
	}
	// y's texels need four rows of w in one texel binding: on a device with
	// the spec's minimum texel limit (65536 texels, SwiftShader) they do not
	// fit, and the call is declined.
	fits := 3*int64(k+1)+int64(k+1) <= o.linTexCapElems(4)
	if !fits {
		t.Logf("four rows of %d floats exceed the device's texel binding of %d floats: declined", k+1, o.linTexCapElems(4))
	}
	runLinTexCase(t, o, rng, linTexCase{m: 3, k: k, n: 12, xoff: 4, ldx: k + 1, woff: 8, ldw: k + 1, bias: true, wantHandle: fits})
	k2 := 4 * (lavapipeLoopBudget + 8)
	runLinTexCase(t, o, rng, linTexCase{m: 1, k: k2, n: 1, xoff: 0, ldx: k2, woff: 0, ldw: k2})
}

// TestLinearTexLarge is the ISAB's largest projection, 16384 x 1024 x 512,
// with bias.
func TestLinearTexLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large")
	}
	o := linTexOps(t)
	rng := rand.New(rand.NewPCG(79, 80))
	runLinTexCase(t, o, rng, linTexCase{m: 16384, k: 512, n: 1024, xoff: 4, ldx: 516, woff: 0, ldw: 512, bias: true, wantHandle: true})
}

// TestLinearTexHalf runs matmul_tex_f16 (half texel views, fp32 arithmetic)
// on texel-aligned half operands, small and large tiles, with the odd K
// remainders and row pieces of TestLinearTexSizes, and checks that it
// declines half layouts off texels.
func TestLinearTexHalf(t *testing.T) {
	o := linTexOps(t)
	if !o.SupportsHalf() {
		t.Skip("no 16-bit storage")
	}
	d := o.Device()
	rng := rand.New(rand.NewPCG(83, 84))
	for _, c := range []struct {
		m, k, n, pad int
		bias, want   bool
	}{
		{1, 1, 4, 4, true, true},
		{7, 33, 8, 8, false, true},
		{33, 257, 36, 4, true, true},
		{300, 64, 260, 4, true, true},
		{257, 130, 256, 0, false, true},
		{7, 33, 8, 2, false, false}, // offsets off texels
		{7, 32, 6, 4, false, false}, // y's width off texels
	} {
		t.Run(fmt.Sprintf("%dx%dx%d_pad%d_bias%v", c.m, c.k, c.n, c.pad, c.bias), func(t *testing.T) {
			h := newHalfLinear(t, d, rng, linearHalfCase{m: c.m, k: c.k, n: c.n, bias: c.bias, pad: c.pad}, (c.k+3)/4*4)
			if !runTexel(t, o, h.x, h.w, h.b, h.y, c.want) {
				return
			}
			h.check(t, "Linear (texel, fp16)")
		})
	}
}

// TestLinearTexHalfRounding checks that matmul_tex_f16 rounds its results
// to the nearest half (ties to even), as the generic fp16 kernels do: each
// row of y is a + b for halves a and b whose float32 sum falls between two
// halves (lavapipe's conversion to a half image alone truncates).
func TestLinearTexHalfRounding(t *testing.T) {
	o := linTexOps(t)
	if !o.SupportsHalf() {
		t.Skip("no 16-bit storage")
	}
	d := o.Device()
	pairs := [][2]float32{
		{1, 1.0/2048 + 1.0/8192},   // 0.625 ulp above 1: up
		{1, 1.0/2048 - 1.0/8192},   // 0.375 ulp: down
		{-1, -1.0/2048 - 1.0/8192}, // negative, up in magnitude
		{1, 1.0 / 2048},            // a tie: to even (1)
		{1 + 1.0/1024, 1.0 / 2048}, // a tie: to even (1 + 2/1024)
		{3, 1.0 / 512},             // below 3's half spacing: down
	}
	const n = 4
	var xs, ws []uint16
	for _, p := range pairs {
		xs = append(xs, halfBits(p[0]), halfBits(p[1]), 0, 0)
	}
	for i := 0; i < n; i++ {
		ws = append(ws, halfBits(1), halfBits(1), 0, 0)
	}
	m := len(pairs)
	xm := Mat{Buf: upload(t, d, xs), Rows: m, Cols: 4, Half: true}
	wm := Mat{Buf: upload(t, d, ws), Rows: n, Cols: 4, Half: true}
	ym := Mat{Buf: newHalfBuf(t, d, m*n), Rows: m, Cols: n, Half: true}
	runTexel(t, o, xm, wm, nil, ym, true)
	got, err := vk.Download[uint16](ym.Buf, 0, m*n)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pairs {
		sum := safetensors.F16ToFloat32(halfBits(p[0])) + safetensors.F16ToFloat32(halfBits(p[1]))
		if want := halfBits(sum); got[i*n] != want {
			t.Errorf("%v + %v = %v stored as %#04x, want %#04x", p[0], p[1], sum, got[i*n], want)
		}
	}
}
