package ops

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

// nmseBound is the largest normalised mean squared error accepted between a
// float32 kernel and the float64 reference. fp32 rounding alone gives about
// 1e-14; the bound leaves room for the devices' approximate exp.
const nmseBound = 1e-10

var (
	devOnce sync.Once
	dev     *vk.Device
	devErr  error
)

func TestMain(m *testing.M) {
	// The lavapipe settings the kernels are tuned with, as the isab
	// command uses them (testutil.LavapipeDefaults).
	if err := vk.UseLavapipeDefaults(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if dev != nil {
		dev.Close()
	}
	os.Exit(code)
}

// testDevice returns the shared test device, opened with the validation
// layer on; it skips when there is no Vulkan device. Any validation message
// fails the test that caused it.
func testDevice(t testing.TB) *vk.Device {
	t.Helper()
	devOnce.Do(func() { dev, devErr = vk.Open(testutil.Options()) })
	if devErr != nil {
		if errors.Is(devErr, vk.ErrNoVulkan) {
			t.Skipf("no Vulkan device: %v", devErr)
		}
		t.Fatalf("vk.Open: %v", devErr)
	}
	for _, m := range vk.ValidationMessages() {
		t.Errorf("validation (before this test): %s", m)
	}
	t.Cleanup(func() {
		for _, m := range vk.ValidationMessages() {
			t.Errorf("validation: %s", m)
		}
	})
	return dev
}

// testOps returns Ops for the test device, closed when the test ends.
func testOps(t testing.TB, opts ...Option) *Ops {
	t.Helper()
	d := testDevice(t)
	o, err := New(d, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Close)
	return o
}

// bothConfigs runs f with the configurations tuned for CPU rasterisers and
// with those for GPUs, whatever the device, so both are tested on lavapipe;
// and once more with the GPU configurations and no loop budget, which is
// exactly what a GPU runs (the data of the tests stays within lavapipe's
// loop limit, see lavapipeLoopBudget).
func bothConfigs(t *testing.T, f func(t *testing.T, o *Ops), opts ...Option) {
	configs(t, f, true, opts...)
}

// smallBindings lowers the binding range limit (MaxBindingRange) so that
// the ops run in pieces on small data: to bytes plus the device's storage
// offset alignment less 16, so that a piece holds as many elements on a
// device that aligns binding offsets to 256 bytes (SwiftShader) as on one
// that aligns them to 16 (lavapipe), and the rows of the tests fit.
func smallBindings(bytes int64) Option {
	return func(o *Ops) { MaxBindingRange(bytes + max(o.align, 16) - 16)(o) }
}

// configs is bothConfigs, without the unbudgeted run unless asked.
func configs(t *testing.T, f func(t *testing.T, o *Ops), unbudgeted bool, opts ...Option) {
	for _, name := range []string{"cpu-config", "gpu-config", "gpu-config-no-loop-budget"} {
		if name == "gpu-config-no-loop-budget" && !unbudgeted {
			continue
		}
		t.Run(name, func(t *testing.T) {
			o := testOps(t, opts...)
			o.setCPU(name == "cpu-config")
			if name == "gpu-config-no-loop-budget" {
				o.loopBudget = 0
			}
			f(t, o)
		})
	}
}

// upload allocates a buffer holding data (freed when the test ends).
func upload[T vk.Number](t testing.TB, d *vk.Device, data []T) *vk.Buffer {
	t.Helper()
	b, err := vk.BufferFrom(d, data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Free)
	return b
}

// newBuf allocates a zeroed buffer of n float32 elements.
func newBuf(t testing.TB, d *vk.Device, n int) *vk.Buffer {
	t.Helper()
	return upload(t, d, make([]float32, n))
}

// scratchFor returns a scratch allocator whose buffers the test frees.
func scratchFor(t testing.TB, d *vk.Device) func(int64) (*vk.Buffer, error) {
	return func(n int64) (*vk.Buffer, error) {
		b, err := d.NewBuffer(n)
		if err == nil {
			t.Cleanup(b.Free)
		}
		return b, err
	}
}

// run records with rec into a fresh sequence and runs it.
func run(t testing.TB, d *vk.Device, rec func(seq *vk.Sequence) error) *vk.Sequence {
	t.Helper()
	seq := d.NewSequence()
	t.Cleanup(seq.Close)
	if err := rec(seq); err != nil {
		t.Fatal(err)
	}
	if err := seq.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return seq
}

// strided is a rows x cols matrix of random values stored with row stride ld
// after off leading elements: host holds the float32 layout, dense the
// logical matrix in float64.
type strided struct {
	host  []float32
	dense []float64
}

func randMat(rng *rand.Rand, off, rows, cols, ld int, scale float64) strided {
	s := strided{host: make([]float32, off+(rows-1)*ld+cols+3), dense: make([]float64, rows*cols)}
	for i := range s.host {
		s.host[i] = float32(rng.NormFloat64()) // padding too, to catch stray reads
	}
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			v := float32(rng.NormFloat64() * scale)
			s.host[off+r*ld+c] = v
			s.dense[r*cols+c] = float64(v)
		}
	}
	return s
}

// readMat downloads the logical rows x cols matrix of a strided view, float32
// or (m.Half) half, as float32.
func readMat(t testing.TB, m Mat) []float32 {
	t.Helper()
	var all []float32
	if m.Half {
		bits, err := vk.Download[uint16](m.Buf, 0, int(m.Buf.Size()/2))
		if err != nil {
			t.Fatal(err)
		}
		all = make([]float32, len(bits))
		for i, h := range bits {
			all[i] = safetensors.F16ToFloat32(h)
		}
	} else {
		var err error
		if all, err = vk.Download[float32](m.Buf, 0, int(m.Buf.Size()/4)); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]float32, 0, m.Rows*m.Cols)
	for r := 0; r < m.Rows; r++ {
		out = append(out, all[m.Off+r*m.ld():m.Off+r*m.ld()+m.Cols]...)
	}
	return out
}

func checkNMSE(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	checkNMSEBound(t, what, got, want, nmseBound)
}

// checkNMSEBound fails t when got is farther than bound (NMSE) from want.
func checkNMSEBound(t *testing.T, what string, got []float32, want []float64, bound float64) {
	t.Helper()
	e := ref.NMSE(got, want)
	t.Logf("%s: NMSE %.3g", what, e)
	if !(e <= bound) {
		t.Errorf("%s: NMSE %.3g > %.0g", what, e, bound)
	}
}

func TestLinear(t *testing.T) { bothConfigs(t, testLinear) }

func testLinear(t *testing.T, o *Ops) {
	d := o.Device()
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		m, k, n int
		bias    bool
		pad     int // extra row stride and offset
	}{
		{1, 1, 1, false, 0},
		{1, 1, 1, true, 3},
		{7, 33, 5, true, 1},
		{33, 7, 257, false, 0},
		{257, 64, 33, true, 5},
		{1000, 33, 7, true, 0},
		{64, 1000, 64, false, 0},
		{129, 96, 100, true, 2},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%dx%dx%d_bias%v_pad%d", c.m, c.k, c.n, c.bias, c.pad), func(t *testing.T) {
			l := newLinearOperands(t, d, rng, linearHalfCase(c), c.k, false)
			run(t, d, func(seq *vk.Sequence) error { return o.Linear(seq, l.x, l.w, l.b, l.y) })
			l.check(t, "Linear")
		})
	}
}

// TestLinearAligned covers the vec4 path of the CPU kernel: offsets and row
// strides that are multiples of 4 with an inner size that is not (a tail
// after the vec4 loop), and ragged row and column blocks.
func TestLinearAligned(t *testing.T) { bothConfigs(t, testLinearAligned) }

func testLinearAligned(t *testing.T, o *Ops) {
	d := o.Device()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct{ m, k, n int }{{1, 1, 1}, {13, 7, 9}, {25, 257, 65}, {7, 1000, 130}, {40, 1027, 3}} {
		t.Run(fmt.Sprintf("%dx%dx%d", c.m, c.k, c.n), func(t *testing.T) {
			ldx, ldw := (c.k+3)/4*4+4, (c.k+3)/4*4+8
			x := randMat(rng, 4, c.m, c.k, ldx, 1)
			w := randMat(rng, 8, c.n, c.k, ldw, 1/math.Sqrt(float64(c.k)))
			b := randMat(rng, 1, 1, c.n, c.n, 1)
			xm := Mat{Buf: upload(t, d, x.host), Off: 4, Rows: c.m, Cols: c.k, Ld: ldx}
			wm := Mat{Buf: upload(t, d, w.host), Off: 8, Rows: c.n, Cols: c.k, Ld: ldw}
			bm := &Mat{Buf: upload(t, d, b.host), Off: 1, Rows: 1, Cols: c.n}
			ym := Mat{Buf: newBuf(t, d, 2+c.m*(c.n+1)), Off: 2, Rows: c.m, Cols: c.n, Ld: c.n + 1}
			run(t, d, func(seq *vk.Sequence) error { return o.Linear(seq, xm, wm, bm, ym) })
			checkNMSE(t, "Linear", readMat(t, ym), ref.Linear(x.dense, c.m, c.k, w.dense, c.n, b.dense))
		})
	}
}

// softmaxWant is the reference for a softmax whose row r uses mask row
// r / rpm (keep nil for none).
func softmaxWant(x []float64, rows, cols int, scale float64, keep [][]bool, rpm int) []float64 {
	if keep == nil {
		return ref.MaskedSoftmax(x, rows, cols, scale, nil)
	}
	out := make([]float64, 0, len(x))
	for r := 0; r < rows; r++ {
		out = append(out, ref.MaskedSoftmax(x[r*cols:(r+1)*cols], 1, cols, scale, keep[r/rpm])...)
	}
	return out
}

// randMask returns mrows x cols keep flags (about a quarter dropped), with
// the mask rows listed in full fully masked, and their uint32 form.
func randMask(rng *rand.Rand, mrows, cols int, full ...int) ([][]bool, []uint32) {
	keep := make([][]bool, mrows)
	u := make([]uint32, mrows*cols)
	for r := range keep {
		keep[r] = make([]bool, cols)
		for c := range keep[r] {
			keep[r][c] = rng.IntN(4) != 0
		}
	}
	for _, r := range full {
		for c := range keep[r] {
			keep[r][c] = false
		}
	}
	for r := range keep {
		for c, k := range keep[r] {
			if k {
				u[r*cols+c] = uint32(1 + rng.IntN(5)) // any nonzero keeps
			}
		}
	}
	return keep, u
}

func TestSoftmax(t *testing.T) { bothConfigs(t, testSoftmax) }

func testSoftmax(t *testing.T, o *Ops) {
	d := o.Device()
	rng := rand.New(rand.NewPCG(3, 4))
	cases := []struct {
		rows, cols int
		rpm        int // rows per mask row; 0 = no mask
		full       []int
	}{
		{1, 1, 0, nil},
		{1, 1, 1, []int{0}},
		{7, 33, 0, nil},
		{33, 257, 1, []int{2, 5}},
		{257, 7, 3, []int{0}},
		{12, 1000, 4, []int{1}},
		{5, 3000, 0, nil},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%dx%d_rpm%d", c.rows, c.cols, c.rpm), func(t *testing.T) {
			ld := c.cols + 2
			x := randMat(rng, 1, c.rows, c.cols, ld, 3)
			xm := Mat{Buf: upload(t, d, x.host), Off: 1, Rows: c.rows, Cols: c.cols, Ld: ld}
			ym := Mat{Buf: newBuf(t, d, 5+c.rows*c.cols), Off: 5, Rows: c.rows, Cols: c.cols}
			var keep [][]bool
			var mb *vk.Buffer
			if c.rpm > 0 {
				var u []uint32
				keep, u = randMask(rng, (c.rows+c.rpm-1)/c.rpm, c.cols, c.full...)
				mb = upload(t, d, append(make([]uint32, 7), u...))
			}
			const scale = 0.37
			run(t, d, func(seq *vk.Sequence) error {
				return o.Softmax(seq, xm, ym, scale, mb, 7, max(c.rpm, 1), c.cols)
			})
			checkNMSE(t, "Softmax", readMat(t, ym), softmaxWant(x.dense, c.rows, c.cols, scale, keep, max(c.rpm, 1)))
		})
	}
}

func TestSoftmaxSharedMaskRow(t *testing.T) {
	o := testOps(t)
	d := o.Device()
	rng := rand.New(rand.NewPCG(5, 6))
	rows, cols := 9, 40
	x := randMat(rng, 0, rows, cols, cols, 2)
	keep, u := randMask(rng, 1, cols)
	xm := Dense(upload(t, d, x.host), 0, rows, cols)
	ym := Dense(newBuf(t, d, rows*cols), 0, rows, cols)
	run(t, d, func(seq *vk.Sequence) error { return o.Softmax(seq, xm, ym, 1, upload(t, d, u), 0, 1, 0) })
	checkNMSE(t, "Softmax", readMat(t, ym), ref.MaskedSoftmax(x.dense, rows, cols, 1, keep[0]))
}

// attnCase is one attention test: the queries are [batch][nq] rows of width
// heads*dh (shared when sharedQ), the keys and values rows [k | v] as to_kv
// produces them, in one or two sources.
// attnSource is the host side of one key/value source of an attention
// test: rows of width columns per batch element (one set when shared),
// keys at column kOff and values at vOff, and the keep flags per batch
// element (nil: no mask).
type attnSource struct {
	kv                strided
	keep              [][]bool
	nk                int
	kOff, vOff, width int
}

// attnReference is the float64 attention of case c: per batch element,
// the sources concatenated along the key axis.
func attnReference(c attnCase, q strided, srcs []attnSource, scale float64) []float64 {
	hd := c.heads * c.dh
	var want []float64
	for b := 0; b < c.batch; b++ {
		qb := q.dense
		if !c.sharedQ {
			qb = q.dense[b*c.nq*hd : (b+1)*c.nq*hd]
		}
		var k, v []float64
		var keep []bool
		nkAll := 0
		for s, sr := range srcs {
			w := sr.width
			kvb := sr.kv.dense
			if !c.sharedKV[s] {
				kvb = kvb[b*sr.nk*w : (b+1)*sr.nk*w]
			}
			for j := 0; j < sr.nk; j++ {
				k = append(k, kvb[j*w+sr.kOff:j*w+sr.kOff+hd]...)
				v = append(v, kvb[j*w+sr.vOff:j*w+sr.vOff+hd]...)
				keep = append(keep, sr.keep == nil || sr.keep[b][j])
			}
			nkAll += sr.nk
		}
		want = append(want, ref.Attention(qb, c.nq, k, v, nkAll, c.heads, c.dh, scale, keep)...)
	}
	return want
}

type attnCase struct {
	batch, nq, heads, dh int
	nk                   []int // keys per source
	sharedKV             []bool
	masked               []bool // source has a mask
	fullRows             []int  // batch elements whose keys are all masked
	sharedQ              bool
}

func (c attnCase) String() string {
	return fmt.Sprintf("b%d_q%d_h%d_d%d_k%v_shkv%v_mask%v_full%v_shq%v", c.batch, c.nq, c.heads, c.dh, c.nk, c.sharedKV, c.masked, c.fullRows, c.sharedQ)
}

// attnLayout places an attention test's operands in their buffers: Q, KV
// and Out start pad elements in, with rows pad elements wider than their
// data; the mask starts maskOff elements in; with swap a KV row holds the
// values, pad elements, then the keys. Out is surrounded by sentinels.
type attnLayout struct {
	pad, maskOff int
	swap, half   bool
}

// attnFixture is an attention test's device arguments and host data.
type attnFixture struct {
	a     AttnArgs
	q     strided
	srcs  []attnSource
	scale float64
	outN  int // elements of Out's buffer
}

// newAttnFixture builds case c's random operands with layout l.
func newAttnFixture(t *testing.T, d *vk.Device, rng *rand.Rand, c attnCase, l attnLayout) *attnFixture {
	t.Helper()
	hd, pad := c.heads*c.dh, l.pad
	f := &attnFixture{scale: 1 / math.Sqrt(float64(c.dh))}
	// up uploads a strided matrix, as halves with l.half (rounding its
	// logical values to them).
	up := func(m *strided, off, rows, cols, ld int) *vk.Buffer {
		if l.half {
			return upload(t, d, quantize(m, off, rows, cols, ld))
		}
		return upload(t, d, m.host)
	}
	qrows := c.batch * c.nq
	if c.sharedQ {
		qrows = c.nq
	}
	qld := hd + pad
	f.q = randMat(rng, pad, qrows, hd, qld, 1)
	f.a = AttnArgs{
		Q:     Mat{Buf: up(&f.q, pad, qrows, hd, qld), Off: pad, Rows: qrows, Cols: hd, Ld: qld, Half: l.half},
		Batch: c.batch, NQ: c.nq, Heads: c.heads, DimHead: c.dh, Scale: float32(f.scale),
	}
	if !c.sharedQ {
		f.a.QBatchStride = c.nq * qld
	}
	for s, nk := range c.nk {
		rows := c.batch * nk
		if c.sharedKV[s] {
			rows = nk
		}
		src := attnSource{nk: nk, kOff: 0, vOff: hd, width: 2 * hd}
		if l.swap {
			src.kOff, src.vOff, src.width = hd+pad, 0, 2*hd+pad
		}
		ld := src.width + pad
		src.kv = randMat(rng, pad, rows, src.width, ld, 1)
		ks := KVSource{
			KV:   Mat{Buf: up(&src.kv, pad, rows, src.width, ld), Off: pad, Rows: rows, Cols: src.width, Ld: ld, Half: l.half},
			KOff: src.kOff, VOff: src.vOff, NK: nk,
		}
		if !c.sharedKV[s] {
			ks.BatchStride = nk * ld
		}
		if c.masked[s] {
			var u []uint32
			src.keep, u = randMask(rng, c.batch, nk, c.fullRows...)
			ks.Mask = upload(t, d, append(make([]uint32, l.maskOff), u...))
			ks.MaskOff, ks.MaskBatchStride = l.maskOff, nk
		}
		f.a.Sources = append(f.a.Sources, ks)
		f.srcs = append(f.srcs, src)
	}
	ldo := hd + pad
	f.outN = pad + c.batch*c.nq*ldo + pad
	if l.half {
		f.a.Out = Mat{Buf: newHalfBuf(t, d, f.outN), Off: pad, Rows: c.batch * c.nq, Cols: hd, Ld: ldo, Half: true}
	} else {
		host := make([]float32, f.outN)
		for i := range host {
			host[i] = sentinel
		}
		f.a.Out = Mat{Buf: upload(t, d, host), Off: pad, Rows: c.batch * c.nq, Cols: hd, Ld: ldo}
	}
	return f
}

// sentinel fills the output buffer around and between the rows of Out, to
// catch stores out of place.
const sentinel = float32(-12345.5)

// check compares Out with the float64 reference and, for float32, checks
// that nothing outside Out's rows was written.
func (f *attnFixture) check(t *testing.T, c attnCase) {
	t.Helper()
	want := attnReference(c, f.q, f.srcs, f.scale)
	if f.a.Out.Half {
		checkHalfNMSE(t, "Attention fp16", readMat(t, f.a.Out), want)
		return
	}
	checkNMSE(t, "Attention", readMat(t, f.a.Out), want)
	out := f.a.Out
	for i, x := range readMat(t, Mat{Buf: out.Buf, Rows: 1, Cols: f.outN}) {
		r, col := (i-out.Off)/out.Ld, (i-out.Off)%out.Ld
		inside := i >= out.Off && r < out.Rows && col < out.Cols
		if !inside && x != sentinel {
			t.Errorf("element %d outside Out's rows was written: %v", i, x)
			return
		}
	}
}

// runAttention runs c with o and compares it with the reference.
func runAttention(t *testing.T, o *Ops, rng *rand.Rand, c attnCase) {
	t.Helper()
	d := o.Device()
	f := newAttnFixture(t, d, rng, c, attnLayout{pad: 3, maskOff: 2})
	seq := run(t, d, func(seq *vk.Sequence) error { return o.Attention(seq, f.a, scratchFor(t, d)) })
	t.Logf("%d dispatches", seq.Len())
	f.check(t, c)
}

func TestAttention(t *testing.T) { bothConfigs(t, testAttention) }

func testAttention(t *testing.T, o *Ops) {
	rng := rand.New(rand.NewPCG(7, 8))
	f, tr := false, true
	cases := []attnCase{
		{batch: 1, nq: 1, heads: 1, dh: 1, nk: []int{1}, sharedKV: []bool{f}, masked: []bool{f}},
		{batch: 2, nq: 7, heads: 3, dh: 16, nk: []int{33}, sharedKV: []bool{f}, masked: []bool{tr}},
		{batch: 1, nq: 33, heads: 2, dh: 64, nk: []int{257}, sharedKV: []bool{f}, masked: []bool{f}},
		{batch: 3, nq: 16, heads: 2, dh: 33, nk: []int{1000}, sharedKV: []bool{f}, masked: []bool{tr}, fullRows: []int{1}},
		{batch: 2, nq: 257, heads: 4, dh: 8, nk: []int{7}, sharedKV: []bool{f}, masked: []bool{tr}, fullRows: []int{0}},
		{batch: 1, nq: 5, heads: 1, dh: 256, nk: []int{40}, sharedKV: []bool{f}, masked: []bool{f}},
		{batch: 1, nq: 3, heads: 2, dh: 200, nk: []int{65}, sharedKV: []bool{f}, masked: []bool{tr}},
		// Shared queries (latents) against per-batch keys, and the reverse.
		{batch: 3, nq: 9, heads: 2, dh: 16, nk: []int{100}, sharedKV: []bool{f}, masked: []bool{tr}, sharedQ: true},
		{batch: 2, nq: 20, heads: 2, dh: 16, nk: []int{9}, sharedKV: []bool{tr}, masked: []bool{f}},
		// Few queries, many keys: the automatic choice splits the keys.
		{batch: 1, nq: 1, heads: 1, dh: 64, nk: []int{2000}, sharedKV: []bool{f}, masked: []bool{tr}},
	}
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) { runAttention(t, o, rng, c) })
	}
}

// TestAttentionTwoSources is latent_self_attend: queries are the shared
// latents, the context is concat(latents, x) with x masked.
func TestAttentionTwoSources(t *testing.T) { bothConfigs(t, testAttentionTwoSources) }

func testAttentionTwoSources(t *testing.T, o *Ops) {
	rng := rand.New(rand.NewPCG(9, 10))
	f, tr := false, true
	cases := []attnCase{
		{batch: 2, nq: 7, heads: 2, dh: 16, nk: []int{7, 33}, sharedKV: []bool{tr, f}, masked: []bool{f, tr}, sharedQ: true},
		{batch: 3, nq: 4, heads: 1, dh: 33, nk: []int{4, 50}, sharedKV: []bool{tr, f}, masked: []bool{f, tr}, fullRows: []int{2}, sharedQ: true},
		{batch: 1, nq: 1, heads: 3, dh: 8, nk: []int{1, 1}, sharedKV: []bool{f, f}, masked: []bool{tr, tr}, fullRows: []int{0}},
	}
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) { runAttention(t, o, rng, c) })
	}
}

// TestAttentionLongKeys runs many keys through one workgroup (no splits),
// the case that exposed lavapipe's miscompilations of wide per-thread
// arrays and of one-query workgroups (see attnConfigFor).
func TestAttentionLongKeys(t *testing.T) {
	bothConfigs(t, func(t *testing.T, o *Ops) {
		rng := rand.New(rand.NewPCG(15, 16))
		f := false
		for _, dh := range []int{33, 64, 256} {
			for _, nq := range []int{1, 5} {
				c := attnCase{batch: 1, nq: nq, heads: 1, dh: dh, nk: []int{1500}, sharedKV: []bool{f}, masked: []bool{f}}
				t.Run(c.String(), func(t *testing.T) { runAttention(t, o, rng, c) })
			}
		}
	}, KeysPerSplit(1<<30))
}

// TestLoopBudget gives single rows of work long enough that lavapipe's cap
// on loop iterations per invocation (see lavapipeLoopBudget) would cut them
// short if ops did not divide the work: 40000 keys in one attention, an
// inner size of 60000 in Linear, and softmax rows of 1.5 million elements.
// KeysPerSplit asks for no key splits, which the budget overrides.
func TestLoopBudget(t *testing.T) {
	configs(t, func(t *testing.T, o *Ops) {
		d := o.Device()
		rng := rand.New(rand.NewPCG(19, 20))
		f := false
		c := attnCase{batch: 1, nq: 2, heads: 1, dh: 64, nk: []int{40000}, sharedKV: []bool{f}, masked: []bool{f}}
		t.Run(c.String(), func(t *testing.T) { runAttention(t, o, rng, c) })

		m, k, n := 13, 60000, 65 // full CPU tiles (12x8 per thread) and ragged ones
		x := randMat(rng, 0, m, k, k, 1)
		w := randMat(rng, 0, n, k, k, 0.01)
		ym := Dense(newBuf(t, d, m*n), 0, m, n)
		run(t, d, func(seq *vk.Sequence) error {
			return o.Linear(seq, Dense(upload(t, d, x.host), 0, m, k), Dense(upload(t, d, w.host), 0, n, k), nil, ym)
		})
		checkNMSE(t, "Linear", readMat(t, ym), ref.Linear(x.dense, m, k, w.dense, n, nil))

		// Rows that need 256 threads under the budget; half as long where
		// the device takes only 128 (ISAB_SPEC_MINIMUM).
		rows, cols := 2, 1500000*min(int(o.info.MaxWorkgroup), 256)/256
		xs := randMat(rng, 0, rows, cols, cols, 1)
		xm := Dense(upload(t, d, xs.host), 0, rows, cols)
		sm := Dense(newBuf(t, d, rows*cols), 0, rows, cols)
		run(t, d, func(seq *vk.Sequence) error { return o.Softmax(seq, xm, sm, 1, nil, 0, 1, 0) })
		checkNMSE(t, "Softmax", readMat(t, sm), ref.MaskedSoftmax(xs.dense, rows, cols, 1, nil))
	}, false, KeysPerSplit(1<<30))
}

// TestAttentionSplits forces key splits, so every case goes through the
// partial results and the combine kernel.
func TestAttentionSplits(t *testing.T) { bothConfigs(t, testAttentionSplits, KeysPerSplit(8)) }

func testAttentionSplits(t *testing.T, o *Ops) {
	rng := rand.New(rand.NewPCG(11, 12))
	f, tr := false, true
	cases := []attnCase{
		{batch: 2, nq: 7, heads: 3, dh: 16, nk: []int{33}, sharedKV: []bool{f}, masked: []bool{tr}, fullRows: []int{1}},
		{batch: 1, nq: 1, heads: 1, dh: 64, nk: []int{257}, sharedKV: []bool{f}, masked: []bool{f}},
		{batch: 2, nq: 5, heads: 2, dh: 16, nk: []int{9, 20}, sharedKV: []bool{tr, f}, masked: []bool{f, tr}, fullRows: []int{0}, sharedQ: true},
	}
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) { runAttention(t, o, rng, c) })
	}
}

// chunkingAttnCases are the attention cases that a 4 KiB binding limit cuts
// into pieces of batch, queries and keys.
var chunkingAttnCases = func() []attnCase {
	f, tr := false, true
	return []attnCase{
		{batch: 3, nq: 9, heads: 2, dh: 8, nk: []int{150}, sharedKV: []bool{f}, masked: []bool{tr}, fullRows: []int{2}},
		{batch: 2, nq: 40, heads: 2, dh: 16, nk: []int{5, 70}, sharedKV: []bool{tr, f}, masked: []bool{f, tr}, sharedQ: true},
		{batch: 2, nq: 100, heads: 1, dh: 8, nk: []int{3}, sharedKV: []bool{f}, masked: []bool{f}},
	}
}()

// TestChunking lowers the binding limit to 4 KiB so that every operation
// is cut into pieces, with bindings at aligned offsets and remainders.
func TestChunking(t *testing.T) { bothConfigs(t, testChunking, smallBindings(4096)) }

func testChunking(t *testing.T, o *Ops) {
	d := o.Device()
	rng := rand.New(rand.NewPCG(13, 14))

	t.Run("Linear", func(t *testing.T) {
		m, k, n := 100, 33, 70
		x := randMat(rng, 1, m, k, k, 1)
		w := randMat(rng, 0, n, k, k, 0.2)
		b := randMat(rng, 3, 1, n, n, 1)
		xm := Mat{Buf: upload(t, d, x.host), Off: 1, Rows: m, Cols: k}
		wm := Dense(upload(t, d, w.host), 0, n, k)
		bm := &Mat{Buf: upload(t, d, b.host), Off: 3, Rows: 1, Cols: n}
		ym := Mat{Buf: newBuf(t, d, 2+m*n), Off: 2, Rows: m, Cols: n}
		seq := run(t, d, func(seq *vk.Sequence) error { return o.Linear(seq, xm, wm, bm, ym) })
		if seq.Len() < 4 {
			t.Errorf("Linear recorded %d dispatches, want pieces", seq.Len())
		}
		checkNMSE(t, "Linear", readMat(t, ym), ref.Linear(x.dense, m, k, w.dense, n, b.dense))
	})

	t.Run("Softmax", func(t *testing.T) {
		for _, rpm := range []int{1, 3, 50} {
			rows, cols := 101, 77
			x := randMat(rng, 1, rows, cols, cols, 2)
			keep, u := randMask(rng, (rows+rpm-1)/rpm, cols, 1)
			xm := Mat{Buf: upload(t, d, x.host), Off: 1, Rows: rows, Cols: cols}
			ym := Dense(newBuf(t, d, rows*cols), 0, rows, cols)
			seq := run(t, d, func(seq *vk.Sequence) error {
				return o.Softmax(seq, xm, ym, 0.5, upload(t, d, append([]uint32{0}, u...)), 1, rpm, cols)
			})
			if seq.Len() < 2 {
				t.Errorf("Softmax recorded %d dispatches, want pieces", seq.Len())
			}
			checkNMSE(t, fmt.Sprintf("Softmax rpm %d", rpm), readMat(t, ym), softmaxWant(x.dense, rows, cols, 0.5, keep, rpm))
		}
	})

	t.Run("Attention", func(t *testing.T) {
		for _, c := range chunkingAttnCases {
			t.Run(c.String(), func(t *testing.T) { runAttention(t, o, rng, c) })
		}
	})

	t.Run("TooWide", func(t *testing.T) {
		k := 2000 // one row of 8000 bytes
		x := Dense(newBuf(t, d, k), 0, 1, k)
		w := Dense(newBuf(t, d, k), 0, 1, k)
		y := Dense(newBuf(t, d, 1), 0, 1, 1)
		seq := d.NewSequence()
		defer seq.Close()
		if err := o.Linear(seq, x, w, nil, y); err == nil || !strings.Contains(err.Error(), "does not fit") {
			t.Errorf("Linear with a row wider than the limit: %v", err)
		}
	})
}

// TestGridLimits lowers the workgroup count limits so that the 2-D grids
// of softmax and the combine kernel, and the grid-driven pieces of matmul
// and attention, run on small data.
func TestGridLimits(t *testing.T) {
	bothConfigs(t, func(t *testing.T, o *Ops) {
		o.groups = [3]uint32{3, 2, 2}
		d := o.Device()
		rng := rand.New(rand.NewPCG(17, 18))

		rows, cols := 23, 9
		x := randMat(rng, 0, rows, cols, cols, 1)
		xm := Dense(upload(t, d, x.host), 0, rows, cols)
		ym := Dense(newBuf(t, d, rows*cols), 0, rows, cols)
		run(t, d, func(seq *vk.Sequence) error { return o.Softmax(seq, xm, ym, 1, nil, 0, 1, 0) })
		checkNMSE(t, "Softmax", readMat(t, ym), ref.MaskedSoftmax(x.dense, rows, cols, 1, nil))

		m, k, n := 300, 5, 400
		xl := randMat(rng, 0, m, k, k, 1)
		wl := randMat(rng, 0, n, k, k, 1)
		yl := Dense(newBuf(t, d, m*n), 0, m, n)
		run(t, d, func(seq *vk.Sequence) error {
			return o.Linear(seq, Dense(upload(t, d, xl.host), 0, m, k), Dense(upload(t, d, wl.host), 0, n, k), nil, yl)
		})
		checkNMSE(t, "Linear", readMat(t, yl), ref.Linear(xl.dense, m, k, wl.dense, n, nil))

		f, tr := false, true
		for _, c := range []attnCase{
			{batch: 3, nq: 70, heads: 1, dh: 8, nk: []int{40}, sharedKV: []bool{f}, masked: []bool{tr}},
			{batch: 2, nq: 3, heads: 2, dh: 16, nk: []int{300, 5}, sharedKV: []bool{f, tr}, masked: []bool{tr, f}},
		} {
			t.Run(c.String(), func(t *testing.T) { runAttention(t, o, rng, c) })
		}
	}, KeysPerSplit(16))
}

func TestErrors(t *testing.T) {
	o := testOps(t)
	d := o.Device()
	b := newBuf(t, d, 64)
	seq := d.NewSequence()
	defer seq.Close()
	x := Dense(b, 0, 4, 4)
	w := Dense(b, 16, 3, 5)
	y := Dense(b, 32, 4, 3)
	if err := o.Linear(seq, x, w, nil, y); err == nil {
		t.Error("Linear with mismatched inner sizes succeeded")
	}
	if err := o.Linear(seq, x, Dense(b, 16, 3, 4), nil, Dense(b, 60, 4, 3)); err == nil {
		t.Error("Linear with y past the buffer succeeded")
	}
	if err := o.Softmax(seq, x, Dense(b, 32, 4, 5), 1, nil, 0, 1, 0); err == nil {
		t.Error("Softmax with mismatched shapes succeeded")
	}
	a := AttnArgs{Q: Dense(b, 0, 2, 4), Batch: 1, NQ: 2, Heads: 1, DimHead: 4, Out: Dense(b, 32, 2, 4)}
	if err := o.Attention(seq, a, scratchFor(t, d)); err == nil {
		t.Error("Attention without keys succeeded")
	}
	a.Sources = []KVSource{{KV: Dense(b, 16, 4, 8), KOff: 0, VOff: 4, NK: 7}}
	if err := o.Attention(seq, a, scratchFor(t, d)); err == nil {
		t.Error("Attention with keys past the buffer succeeded")
	}
	if seq.Len() != 0 {
		t.Errorf("failed calls recorded %d dispatches", seq.Len())
	}
}
