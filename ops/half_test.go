package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

// halfBound is the largest NMSE accepted between an fp16 kernel, given
// inputs that are exact in half, and the float64 reference on those
// inputs: the kernels accumulate in float32 and round only their output to
// half (relative error up to 2^-11, NMSE about 1e-7).
const halfBound = 1e-6

// halfBits converts f to IEEE half bits, rounding to nearest even; values
// beyond the half range become infinite, NaN stays NaN.
func halfBits(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	e := int(b>>23) & 0xff
	man := b & 0x7fffff
	if e == 0xff {
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	exp := e - 127 + 15
	if exp >= 31 {
		return sign | 0x7c00
	}
	if exp <= 0 { // subnormal half (or zero)
		if exp < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint(14 - exp)
		h := man >> shift
		rem := man & (1<<shift - 1)
		halfway := uint32(1) << (shift - 1)
		if rem > halfway || (rem == halfway && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // a carry into the exponent is still right (up to infinity)
	}
	return sign | uint16(h)
}

// roundHalf rounds f to the nearest half value.
func roundHalf(f float32) float32 { return safetensors.F16ToFloat32(halfBits(f)) }

func TestHalfBits(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := safetensors.F16ToFloat32(uint16(h))
		if f != f {
			continue
		}
		if got := halfBits(f); got != uint16(h) {
			t.Fatalf("halfBits(%g) = %#04x, want %#04x", f, got, h)
		}
	}
	for _, c := range []struct {
		f    float32
		want uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65519, 0x7bff}, {65520, 0x7c00}, {1e9, 0x7c00},
		{0x1p-24, 0x0001}, {0x1p-25, 0x0000}, {0x1.8p-25, 0x0001}, {1 + 0x1p-11, 0x3c00}, {1 + 0x3p-11, 0x3c02},
		{0x1p-14, 0x0400}, {0x1.ff8p-15, 0x03ff}, {0x1.ffcp-15, 0x0400},
	} {
		if got := halfBits(c.f); got != c.want {
			t.Errorf("halfBits(%g) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
}

// quantize rounds every value of s to half (so that the fp16 kernels get
// exactly the reference's inputs) and returns the half bits of s.host,
// padded to an even count.
func quantize(s *strided, off, rows, cols, ld int) []uint16 {
	bits := make([]uint16, len(s.host)+len(s.host)%2)
	for i, v := range s.host {
		bits[i] = halfBits(v)
		s.host[i] = safetensors.F16ToFloat32(bits[i])
	}
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			s.dense[r*cols+c] = float64(s.host[off+r*ld+c])
		}
	}
	return bits
}

// newHalfBuf allocates a zeroed buffer of n half elements.
func newHalfBuf(t testing.TB, d *vk.Device, n int) *vk.Buffer {
	t.Helper()
	return upload(t, d, make([]uint16, n+n%2))
}

func checkHalfNMSE(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	checkNMSEBound(t, what, got, want, halfBound)
}

// TestConvert converts float32 values of every magnitude (subnormal halves,
// values beyond the half range, signed zeros, infinities) to half and back,
// dense and strided, and compares bit for bit with round-to-nearest-even
// on the host.
func TestConvert(t *testing.T) {
	for _, name := range []string{"whole", "chunked"} {
		t.Run(name, func(t *testing.T) {
			var opts []Option
			if name == "chunked" {
				opts = append(opts, smallBindings(4096))
			}
			o := testOps(t, opts...)
			if !o.SupportsHalf() {
				t.Skip("no 16-bit storage")
			}
			testConvert(t, o)
		})
	}
}

func testConvert(t *testing.T, o *Ops) {
	d := o.Device()
	rng := rand.New(rand.NewPCG(31, 32))
	for _, c := range []struct{ rows, cols, pad int }{{1, 1, 0}, {1, 7, 3}, {33, 1, 0}, {7, 33, 5}, {257, 257, 0}, {3, 100003, 1}} {
		t.Run(fmt.Sprintf("%dx%d_pad%d", c.rows, c.cols, c.pad), func(t *testing.T) {
			ld := c.cols + c.pad
			n := c.pad + c.rows*ld
			src := make([]float32, n)
			for i := range src {
				switch i % 11 {
				case 0:
					src[i] = float32(rng.NormFloat64() * 1e5) // often beyond 65504
				case 1:
					src[i] = float32(rng.NormFloat64() * 1e-6) // subnormal halves
				case 2:
					src[i] = float32(math.Copysign(0, rng.NormFloat64()))
				case 3:
					src[i] = float32(math.Inf(int(rng.Int64N(2))*2 - 1))
				default:
					src[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(9)-4)))
				}
			}
			sm := Mat{Buf: upload(t, d, src), Off: c.pad, Rows: c.rows, Cols: c.cols, Ld: ld}
			hm := Mat{Buf: newHalfBuf(t, d, n), Off: c.pad, Rows: c.rows, Cols: c.cols, Ld: ld, Half: true}
			back := Mat{Buf: newBuf(t, d, n), Off: c.pad, Rows: c.rows, Cols: c.cols, Ld: ld}
			run(t, d, func(seq *vk.Sequence) error {
				if err := o.Convert(seq, sm, hm); err != nil {
					return err
				}
				return o.Convert(seq, hm, back)
			})
			halves := readMat(t, hm)
			got := readMat(t, back)
			bad := 0
			for r := 0; r < c.rows; r++ {
				for col := 0; col < c.cols; col++ {
					i := r*c.cols + col
					v := src[c.pad+r*ld+col]
					want := roundHalf(v)
					if math.Float32bits(halves[i]) != math.Float32bits(want) || math.Float32bits(got[i]) != math.Float32bits(want) {
						if bad++; bad <= 5 {
							t.Errorf("element (%d, %d): %g -> half %g -> %g, want %g", r, col, v, halves[i], got[i], want)
						}
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d elements wrong", bad, c.rows*c.cols)
			}
		})
	}
}

// linearHalfCase is one Linear test (fp16, and float32 through
// newLinearOperands): x [m, k], w [n, k], with pad
// extra elements of offset and row stride.
type linearHalfCase struct {
	m, k, n int
	bias    bool
	pad     int
}

var linearHalfCases = []linearHalfCase{
	{1, 1, 1, false, 0},
	{1, 1, 1, true, 3},
	{7, 33, 5, true, 1},
	{33, 7, 257, false, 0},
	{257, 64, 33, true, 5},
	{1000, 33, 7, true, 0},
	{64, 1000, 64, false, 0},
}

func TestLinearHalf(t *testing.T) {
	halfConfigs(t, func(t *testing.T, o *Ops) { testLinearHalf(t, o, linearHalfCases) })
}

// TestLinearHalfChunking cuts fp16 Linear into pieces of at most 4 KiB
// bindings, at aligned offsets with odd half remainders.
func TestLinearHalfChunking(t *testing.T) {
	halfConfigs(t, func(t *testing.T, o *Ops) { testLinearHalf(t, o, linearHalfCases[2:5]) }, smallBindings(4096))
}

// halfConfigs is bothConfigs for devices with 16-bit storage.
func halfConfigs(t *testing.T, f func(t *testing.T, o *Ops), opts ...Option) {
	if !testOps(t).SupportsHalf() {
		t.Skip("no 16-bit storage")
	}
	bothConfigs(t, f, opts...)
}

func testLinearHalf(t *testing.T, o *Ops, cases []linearHalfCase) {
	d := o.Device()
	rng := rand.New(rand.NewPCG(33, 34))
	for _, c := range cases {
		t.Run(fmt.Sprintf("%dx%dx%d_bias%v_pad%d", c.m, c.k, c.n, c.bias, c.pad), func(t *testing.T) {
			h := newHalfLinear(t, d, rng, c, c.k)
			run(t, d, func(seq *vk.Sequence) error { return o.Linear(seq, h.x, h.w, h.b, h.y) })
			h.check(t, "Linear fp16")
		})
	}
}

// linearOperands is one Linear's operands on the device (quantized to half
// when half) and the float64 inputs of its reference.
type linearOperands struct {
	x, w, y    Mat
	b          *Mat
	c          linearHalfCase
	xd, wd, bd []float64
}

// newHalfLinear is newLinearOperands in half.
func newHalfLinear(t *testing.T, d *vk.Device, rng *rand.Rand, c linearHalfCase, kld int) linearOperands {
	t.Helper()
	return newLinearOperands(t, d, rng, c, kld, true)
}

// newLinearOperands makes c's operands on d: x [m, k] with row stride
// kld + pad after pad elements, w [n, k] with stride kld + 2*pad after
// 2*pad, y [m, n] with stride n + pad after 3*pad (and a whole texel
// past its end), and the bias (when c.bias) n elements after pad; in half
// when half, else float32.
func newLinearOperands(t *testing.T, d *vk.Device, rng *rand.Rand, c linearHalfCase, kld int, half bool) linearOperands {
	t.Helper()
	up := func(m *strided, off, rows, cols, ld int) *vk.Buffer {
		if half {
			return upload(t, d, quantize(m, off, rows, cols, ld))
		}
		return upload(t, d, m.host)
	}
	x := randMat(rng, c.pad, c.m, c.k, kld+c.pad, 1)
	w := randMat(rng, 2*c.pad, c.n, c.k, kld+2*c.pad, 1/math.Sqrt(float64(c.k)))
	yn := 3*c.pad + c.m*(c.n+c.pad) + 4
	yb := newBuf(t, d, yn)
	if half {
		yb = newHalfBuf(t, d, yn)
	}
	h := linearOperands{
		x:  Mat{Buf: up(&x, c.pad, c.m, c.k, kld+c.pad), Off: c.pad, Rows: c.m, Cols: c.k, Ld: kld + c.pad, Half: half},
		w:  Mat{Buf: up(&w, 2*c.pad, c.n, c.k, kld+2*c.pad), Off: 2 * c.pad, Rows: c.n, Cols: c.k, Ld: kld + 2*c.pad, Half: half},
		y:  Mat{Buf: yb, Off: 3 * c.pad, Rows: c.m, Cols: c.n, Ld: c.n + c.pad, Half: half},
		c:  c,
		xd: x.dense,
		wd: w.dense,
	}
	if c.bias {
		b := randMat(rng, c.pad, 1, c.n, c.n, 1)
		h.b = &Mat{Buf: up(&b, c.pad, 1, c.n, c.n), Off: c.pad, Rows: 1, Cols: c.n, Half: half}
		h.bd = b.dense
	}
	return h
}

// check compares y with the float64 reference, with the bound of y's
// precision.
func (h linearOperands) check(t *testing.T, what string) {
	t.Helper()
	want := ref.Linear(h.xd, h.c.m, h.c.k, h.wd, h.c.n, h.bd)
	if h.y.Half {
		checkHalfNMSE(t, what, readMat(t, h.y), want)
		return
	}
	checkNMSE(t, what, readMat(t, h.y), want)
}

// runAttentionHalf is runAttention with half queries, keys, values and
// output.
func runAttentionHalf(t *testing.T, o *Ops, rng *rand.Rand, c attnCase) {
	t.Helper()
	d := o.Device()
	f := newAttnFixture(t, d, rng, c, attnLayout{pad: 1, maskOff: 2, half: true})
	seq := run(t, d, func(seq *vk.Sequence) error { return o.Attention(seq, f.a, scratchFor(t, d)) })
	t.Logf("%d dispatches", seq.Len())
	f.check(t, c)
}

var halfAttnCases = func() []attnCase {
	f, tr := false, true
	return []attnCase{
		{batch: 1, nq: 1, heads: 1, dh: 1, nk: []int{1}, sharedKV: []bool{f}, masked: []bool{f}},
		{batch: 2, nq: 7, heads: 3, dh: 16, nk: []int{33}, sharedKV: []bool{f}, masked: []bool{tr}},
		{batch: 1, nq: 33, heads: 2, dh: 64, nk: []int{257}, sharedKV: []bool{f}, masked: []bool{f}},
		{batch: 3, nq: 16, heads: 2, dh: 33, nk: []int{1000}, sharedKV: []bool{f}, masked: []bool{tr}, fullRows: []int{1}},
		{batch: 3, nq: 9, heads: 2, dh: 16, nk: []int{100}, sharedKV: []bool{f}, masked: []bool{tr}, sharedQ: true},
		{batch: 1, nq: 1, heads: 1, dh: 64, nk: []int{2000}, sharedKV: []bool{f}, masked: []bool{tr}},
		{batch: 2, nq: 7, heads: 2, dh: 16, nk: []int{7, 33}, sharedKV: []bool{tr, f}, masked: []bool{f, tr}, sharedQ: true},
	}
}()

func TestAttentionHalf(t *testing.T) {
	halfConfigs(t, func(t *testing.T, o *Ops) {
		rng := rand.New(rand.NewPCG(35, 36))
		for _, c := range halfAttnCases {
			t.Run(c.String(), func(t *testing.T) { runAttentionHalf(t, o, rng, c) })
		}
	})
}

// TestAttentionHalfSplits forces key splits: float32 partials merged by
// attn_combine's fp16 variant.
func TestAttentionHalfSplits(t *testing.T) {
	halfConfigs(t, func(t *testing.T, o *Ops) {
		rng := rand.New(rand.NewPCG(37, 38))
		for _, c := range halfAttnCases[1:] {
			t.Run(c.String(), func(t *testing.T) { runAttentionHalf(t, o, rng, c) })
		}
	}, KeysPerSplit(8))
}

// TestHalfErrors checks mixed operands and a simulated device without
// 16-bit storage.
func TestHalfErrors(t *testing.T) {
	o := testOps(t)
	d := o.Device()
	f32 := Dense(newBuf(t, d, 64), 0, 4, 4)
	f16 := DenseHalf(newHalfBuf(t, d, 64), 0, 4, 4)
	seq := d.NewSequence()
	defer seq.Close()
	attn := func(q, kv, out Mat) AttnArgs {
		kv.Cols = 8
		kv.Rows = 2
		return AttnArgs{Q: q, Sources: []KVSource{{KV: kv, KOff: 0, VOff: 4, NK: 2}}, Batch: 1, NQ: 4, Heads: 1, DimHead: 4, Scale: 1, Out: out}
	}
	noScratch := func(int64) (*vk.Buffer, error) { return nil, fmt.Errorf("no scratch") }
	for _, c := range []struct {
		what string
		err  error
		want string
	}{
		{"Linear mixed", o.Linear(seq, f16, f32, nil, f16), "half or all float32"},
		{"Linear half bias", o.Linear(seq, f32, f32, &f16, f32), "half or all float32"},
		{"Attention mixed", o.Attention(seq, attn(f16, f32, f16), noScratch), "half or all float32"},
		{"Attention half out", o.Attention(seq, attn(f32, f32, f16), noScratch), "half or all float32"},
		{"Convert same type", o.Convert(seq, f32, f32), "one must be half"},
		{"Convert shape", o.Convert(seq, f32, DenseHalf(f16.Buf, 0, 2, 8)), "src is 4x4"},
		{"Convert too long", o.Convert(seq, Dense(f32.Buf, 0, 1, 64), DenseHalf(f16.Buf, 0, 1, 65)), "outside"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.what, c.err, c.want)
		}
	}

	// The same calls on a device without 16-bit storage.
	o.info.Storage16 = false
	if o.SupportsHalf() {
		t.Fatal("SupportsHalf with Storage16 off")
	}
	for _, c := range []struct {
		what string
		err  error
	}{
		{"Linear", o.Linear(seq, f16, f16, nil, f16)},
		{"Attention", o.Attention(seq, attn(f16, f16, f16), noScratch)},
		{"Convert", o.Convert(seq, f32, f16)},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), "16-bit storage") {
			t.Errorf("%s without 16-bit storage: error %v, want one naming 16-bit storage", c.what, c.err)
		}
	}
	if seq.Len() != 0 {
		t.Errorf("failed calls recorded %d dispatches", seq.Len())
	}
}

// TestSetOpsHalf runs the fp16 variants of Add, LayerNorm and Softmax on
// odd sizes, whole and cut into 4 KiB bindings.
func TestSetOpsHalf(t *testing.T) {
	for _, name := range []string{"whole", "chunked"} {
		t.Run(name, func(t *testing.T) {
			var opts []Option
			if name == "chunked" {
				opts = append(opts, smallBindings(4096))
			}
			halfConfigs(t, testSetOpsHalf, opts...)
		})
	}
}

func testSetOpsHalf(t *testing.T, o *Ops) {
	d := o.Device()
	rng := rand.New(rand.NewPCG(39, 40))
	for _, c := range []struct{ rows, cols, aRows, pad int }{{1, 1, 1, 0}, {7, 33, 7, 3}, {257, 7, 1, 1}, {66, 257, 33, 0}} {
		t.Run(fmt.Sprintf("%dx%d_a%d_pad%d", c.rows, c.cols, c.aRows, c.pad), func(t *testing.T) {
			ld := c.cols + c.pad
			half := func(s *strided, off, rows int) Mat {
				return Mat{Buf: upload(t, d, quantize(s, off, rows, c.cols, ld)), Off: off, Rows: rows, Cols: c.cols, Ld: ld, Half: true}
			}
			out := func() Mat {
				return Mat{Buf: newHalfBuf(t, d, 1+c.rows*ld), Off: 1, Rows: c.rows, Cols: c.cols, Ld: ld, Half: true}
			}
			a := randMat(rng, c.pad, c.aRows, c.cols, ld, 1)
			b := randMat(rng, 2*c.pad, c.rows, c.cols, ld, 1)
			am, bm := half(&a, c.pad, c.aRows), half(&b, 2*c.pad, c.rows)
			x := randMat(rng, c.pad, c.rows, c.cols, ld, 3)
			xm := half(&x, c.pad, c.rows)
			lw := randMat(rng, 1, 1, c.cols, c.cols, 1)
			lb := randMat(rng, 0, 1, c.cols, c.cols, 1)
			lwm := Mat{Buf: upload(t, d, quantize(&lw, 1, 1, c.cols, c.cols)), Off: 1, Rows: 1, Cols: c.cols, Half: true}
			lbm := Mat{Buf: upload(t, d, quantize(&lb, 0, 1, c.cols, c.cols)), Rows: 1, Cols: c.cols, Half: true}
			keep, u := randMask(rng, c.rows, c.cols, 0)
			mask := upload(t, d, u)
			ay, ly, sy := out(), out(), out()
			run(t, d, func(seq *vk.Sequence) error {
				if err := o.Add(seq, am, bm, ay, true); err != nil {
					return err
				}
				if err := o.LayerNorm(seq, xm, ly, lwm, lbm, 1e-5); err != nil {
					return err
				}
				return o.Softmax(seq, xm, sy, 0.37, mask, 0, 1, c.cols)
			})
			want := make([]float64, c.rows*c.cols)
			for r := 0; r < c.rows; r++ {
				for j := 0; j < c.cols; j++ {
					want[r*c.cols+j] = a.dense[(r%c.aRows)*c.cols+j] + max(b.dense[r*c.cols+j], 0)
				}
			}
			checkHalfNMSE(t, "Add fp16", readMat(t, ay), want)
			checkHalfNMSE(t, "LayerNorm fp16", readMat(t, ly), ref.LayerNorm(x.dense, c.rows, c.cols, lw.dense, lb.dense, 1e-5))
			checkHalfNMSE(t, "Softmax fp16", readMat(t, sy), softmaxWant(x.dense, c.rows, c.cols, 0.37, keep, 1))
		})
	}
}

// TestSetOpsHalfErrors checks mixed operands of Add, LayerNorm and Softmax.
func TestSetOpsHalfErrors(t *testing.T) {
	o := testOps(t)
	d := o.Device()
	f32 := Dense(newBuf(t, d, 16), 0, 4, 4)
	f16 := DenseHalf(newHalfBuf(t, d, 16), 0, 4, 4)
	w32, w16 := Dense(newBuf(t, d, 4), 0, 1, 4), DenseHalf(newHalfBuf(t, d, 4), 0, 1, 4)
	seq := d.NewSequence()
	defer seq.Close()
	for _, c := range []struct {
		what string
		err  error
	}{
		{"Add", o.Add(seq, f32, f16, f16, false)},
		{"LayerNorm", o.LayerNorm(seq, f16, f16, w32, w16, 1e-5)},
		{"Softmax", o.Softmax(seq, f32, f16, 1, nil, 0, 1, 0)},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), "half or all float32") {
			t.Errorf("%s with mixed operands: error %v", c.what, c.err)
		}
	}
	o.info.Storage16 = false
	if err := o.Add(seq, f16, f16, DenseHalf(newHalfBuf(t, d, 16), 0, 4, 4), false); err == nil || !strings.Contains(err.Error(), "16-bit storage") {
		t.Errorf("Add without 16-bit storage: error %v", err)
	}
}
