package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/vk"
)

// texOps returns Ops that pick the CPU configurations, whatever the device,
// skipping where attention_tex.comp cannot run.
func texOps(t *testing.T, opts ...Option) *Ops {
	t.Helper()
	o := testOps(t, opts...)
	o.setCPU(true)
	if o.info.SubgroupSize > 64 || !o.texelAligned() {
		t.Skipf("subgroup size %d, binding alignment %d: attention_tex.comp is not used", o.info.SubgroupSize, o.align)
	}
	return o
}

// runTexAttention runs c on o with every offset and stride of Q and KV a
// multiple of pad floats (odd when pad is 3), checks that Attention ran
// attention_tex.comp exactly when wantTex, compares the result with
// package ref and checks that nothing outside Out's rows was written.
func runTexAttention(t *testing.T, o *Ops, rng *rand.Rand, c attnCase, pad int, wantTex bool) {
	t.Helper()
	d := o.Device()
	hd := c.heads * c.dh
	scale := 1 / math.Sqrt(float64(c.dh))
	qrows := c.batch * c.nq
	if c.sharedQ {
		qrows = c.nq
	}
	qld := hd + pad
	q := randMat(rng, pad, qrows, hd, qld, 1)
	a := AttnArgs{
		Q:     Mat{Buf: upload(t, d, q.host), Off: pad, Rows: qrows, Cols: hd, Ld: qld},
		Batch: c.batch, NQ: c.nq, Heads: c.heads, DimHead: c.dh, Scale: float32(scale),
	}
	if !c.sharedQ {
		a.QBatchStride = c.nq * qld
	}
	type src struct {
		kv   strided
		keep [][]bool
		nk   int
	}
	var srcs []src
	for s, nk := range c.nk {
		rows := c.batch * nk
		if c.sharedKV[s] {
			rows = nk
		}
		// Rows [pad | v | k] with the keys after the values, then pad.
		ld := 2*hd + 2*pad
		kv := randMat(rng, pad, rows, 2*hd+pad, ld, 1)
		ks := KVSource{
			KV:   Mat{Buf: upload(t, d, kv.host), Off: pad, Rows: rows, Cols: 2*hd + pad, Ld: ld},
			KOff: hd + pad, VOff: 0, NK: nk,
		}
		if !c.sharedKV[s] {
			ks.BatchStride = nk * ld
		}
		var keep [][]bool
		if c.masked[s] {
			var u []uint32
			keep, u = randMask(rng, c.batch, nk, c.fullRows...)
			ks.Mask = upload(t, d, append(make([]uint32, 5), u...))
			ks.MaskOff, ks.MaskBatchStride = 5, nk
		}
		a.Sources = append(a.Sources, ks)
		srcs = append(srcs, src{kv: kv, keep: keep, nk: nk})
	}
	oldo := hd + 3
	outN := 3 + c.batch*c.nq*oldo + 3
	host := make([]float32, outN)
	for i := range host {
		host[i] = sentinel
	}
	a.Out = Mat{Buf: upload(t, d, host), Off: 3, Rows: c.batch * c.nq, Cols: hd, Ld: oldo}

	if _, _, _, ok := o.attnTexFor(a, a.Sources); ok != wantTex {
		t.Fatalf("attnTexFor took %v: %v, want %v", c, ok, wantTex)
	}
	seq := run(t, d, func(seq *vk.Sequence) error { return o.Attention(seq, a, scratchFor(t, d)) })
	if got := slices.Contains(seq.Names(), "attention_tex"); got != wantTex {
		t.Fatalf("dispatches %v: attention_tex ran %v, want %v", seq.Names(), got, wantTex)
	}
	t.Logf("%d dispatches", seq.Len())

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
			w := 2*hd + pad
			kvb := sr.kv.dense
			if !c.sharedKV[s] {
				kvb = kvb[b*sr.nk*w : (b+1)*sr.nk*w]
			}
			for j := 0; j < sr.nk; j++ {
				v = append(v, kvb[j*w:j*w+hd]...)
				k = append(k, kvb[j*w+hd+pad:j*w+2*hd+pad]...)
				keep = append(keep, sr.keep == nil || sr.keep[b][j])
			}
			nkAll += sr.nk
		}
		want = append(want, ref.Attention(qb, c.nq, k, v, nkAll, c.heads, c.dh, scale, keep)...)
	}
	checkNMSE(t, "Attention", readMat(t, a.Out), want)

	all := readMat(t, Mat{Buf: a.Out.Buf, Rows: 1, Cols: outN})
	for i, x := range all {
		r, col := (i-3)/oldo, (i-3)%oldo
		inside := i >= 3 && r < c.batch*c.nq && col < hd
		if !inside && x != sentinel {
			t.Errorf("element %d outside Out's rows was written: %v", i, x)
			break
		}
	}
}

// texCases are attentions of heads 4 to 128 wide (multiples of 4) on 1, 7,
// 33 and 257 queries and keys: masks with fully masked rows, shared
// queries or keys, two sources (latent_self_attend).
func texCases() []attnCase {
	f, tr := false, true
	return []attnCase{
		{batch: 1, nq: 1, heads: 1, dh: 4, nk: []int{1}, sharedKV: []bool{f}, masked: []bool{f}},
		{batch: 2, nq: 7, heads: 3, dh: 8, nk: []int{33}, sharedKV: []bool{f}, masked: []bool{tr}, fullRows: []int{1}},
		{batch: 1, nq: 33, heads: 2, dh: 64, nk: []int{257}, sharedKV: []bool{f}, masked: []bool{f}},
		{batch: 3, nq: 257, heads: 1, dh: 8, nk: []int{7}, sharedKV: []bool{f}, masked: []bool{tr}, fullRows: []int{0, 2}},
		{batch: 2, nq: 33, heads: 2, dh: 128, nk: []int{33}, sharedKV: []bool{f}, masked: []bool{tr}, fullRows: []int{1}},
		{batch: 1, nq: 7, heads: 4, dh: 4, nk: []int{257}, sharedKV: []bool{f}, masked: []bool{tr}},
		{batch: 2, nq: 1, heads: 1, dh: 128, nk: []int{7}, sharedKV: []bool{f}, masked: []bool{f}},
		{batch: 1, nq: 257, heads: 2, dh: 64, nk: []int{1}, sharedKV: []bool{f}, masked: []bool{tr}, fullRows: []int{0}},
		// Shared latent queries against per-batch keys, and the reverse.
		{batch: 3, nq: 7, heads: 2, dh: 8, nk: []int{100}, sharedKV: []bool{f}, masked: []bool{tr}, sharedQ: true},
		{batch: 2, nq: 33, heads: 2, dh: 64, nk: []int{9}, sharedKV: []bool{tr}, masked: []bool{f}},
		// latent_self_attend: concat(latents, x), x masked.
		{batch: 2, nq: 7, heads: 2, dh: 64, nk: []int{7, 257}, sharedKV: []bool{tr, f}, masked: []bool{f, tr}, fullRows: []int{1}, sharedQ: true},
		{batch: 3, nq: 33, heads: 1, dh: 128, nk: []int{33, 1}, sharedKV: []bool{tr, f}, masked: []bool{f, tr}, fullRows: []int{2}, sharedQ: true},
	}
}

// TestAttentionTex checks attention_tex.comp against the reference with
// offsets and strides that are multiples of 4 and 8 floats, with automatic
// and forced key splits (so the partials and the combine kernel run too).
func TestAttentionTex(t *testing.T) {
	for _, split := range []int{0, 8} {
		o := texOps(t, KeysPerSplit(split))
		rng := rand.New(rand.NewPCG(41, 42))
		for _, c := range texCases() {
			for _, pad := range []int{4, 8} {
				t.Run(fmt.Sprintf("%v_pad%d_split%d", c, pad, split), func(t *testing.T) { runTexAttention(t, o, rng, c, pad, true) })
			}
		}
	}
}

// TestAttentionTexQT runs other query counts per invocation (attnTexTune).
func TestAttentionTexQT(t *testing.T) {
	f, tr := false, true
	cases := []attnCase{
		{batch: 2, nq: 33, heads: 2, dh: 20, nk: []int{33}, sharedKV: []bool{f}, masked: []bool{tr}, fullRows: []int{0}},
		{batch: 2, nq: 9, heads: 1, dh: 12, nk: []int{7, 33}, sharedKV: []bool{tr, f}, masked: []bool{f, tr}, fullRows: []int{1}, sharedQ: true},
	}
	for _, qt := range []int{1, 3, 8} {
		for _, split := range []int{0, 5} {
			t.Run(fmt.Sprintf("qt%d_split%d", qt, split), func(t *testing.T) {
				o := texOps(t, KeysPerSplit(split))
				saved := attnTexTune
				defer func() { attnTexTune = saved }()
				attnTexTune.QT, attnTexTune.QTWide = qt, qt
				rng := rand.New(rand.NewPCG(43, 44))
				for _, c := range cases {
					t.Run(c.String(), func(t *testing.T) { runTexAttention(t, o, rng, c, 4, true) })
				}
			})
		}
	}
}

// TestAttentionTexFallback checks that layouts attention_tex.comp cannot
// read as whole texels (odd offsets and strides, heads not a multiple of 4
// or wider than attnTexMaxDH) go to the other kernels, and still give the
// right result.
func TestAttentionTexFallback(t *testing.T) {
	o := texOps(t)
	rng := rand.New(rand.NewPCG(45, 46))
	f, tr := false, true
	for _, c := range []attnCase{
		{batch: 2, nq: 7, heads: 2, dh: 64, nk: []int{33}, sharedKV: []bool{f}, masked: []bool{tr}, fullRows: []int{1}},
		{batch: 1, nq: 33, heads: 1, dh: 8, nk: []int{7, 9}, sharedKV: []bool{tr, f}, masked: []bool{f, tr}, sharedQ: true},
	} {
		t.Run(c.String()+"_pad3", func(t *testing.T) { runTexAttention(t, o, rng, c, 3, false) })
	}
	for _, c := range []attnCase{
		{batch: 1, nq: 7, heads: 2, dh: 6, nk: []int{33}, sharedKV: []bool{f}, masked: []bool{tr}},
		{batch: 1, nq: 7, heads: 1, dh: 7, nk: []int{9}, sharedKV: []bool{f}, masked: []bool{f}},
		{batch: 1, nq: 3, heads: 1, dh: attnTexMaxDH + 4, nk: []int{9}, sharedKV: []bool{f}, masked: []bool{f}},
	} {
		t.Run(c.String()+"_pad4", func(t *testing.T) { runTexAttention(t, o, rng, c, 4, false) })
	}
}

// TestAttentionTexFor checks attnTexFor's choice without running anything:
// CPU configurations only, float32 operands, no forced configuration, and
// every offset and stride of Q and KV a multiple of 4.
func TestAttentionTexFor(t *testing.T) {
	o := testOps(t)
	if o.info.SubgroupSize > 64 || !o.texelAligned() {
		t.Skipf("subgroup size %d, binding alignment %d: attention_tex.comp is not used", o.info.SubgroupSize, o.align)
	}
	base := func() (AttnArgs, []KVSource) {
		srcs := []KVSource{{KV: Mat{Off: 8, Cols: 1024, Ld: 1032}, VOff: 512, NK: 9, BatchStride: 9 * 1032}}
		return AttnArgs{DimHead: 64, Heads: 8, Q: Mat{Off: 4, Cols: 512, Ld: 516}, QBatchStride: 16 * 516, Sources: srcs}, srcs
	}
	o.setCPU(false)
	a, srcs := base()
	if _, _, _, ok := o.attnTexFor(a, srcs); ok {
		t.Error("GPU configuration took attention_tex.comp")
	}
	o.setCPU(true)
	c, name, texel, ok := o.attnTexFor(a, srcs)
	if !ok || name != "attention_tex" || texel != 3 || c.cpu == nil || c.BQ != c.cpu.WG*c.cpu.QT || c.BK != 1 || c.cpu.BK != 1 || c.cpu.DH != 64 || c.MaxDH != 64 {
		t.Fatalf("CPU configuration for dh 64: %+v %q %#x %v", c, name, texel, ok)
	}
	if c.WG < 8 || c.WG < int(o.info.SubgroupSize) || c.cpu.QT != attnTexTune.QT {
		t.Errorf("workgroup %d, %d queries per invocation", c.WG, c.cpu.QT)
	}
	for what, change := range map[string]func(a *AttnArgs, s *KVSource){
		"dh 6":           func(a *AttnArgs, s *KVSource) { a.DimHead = 6 },
		"dh 132":         func(a *AttnArgs, s *KVSource) { a.DimHead = attnTexMaxDH + 4 },
		"Q offset 2":     func(a *AttnArgs, s *KVSource) { a.Q.Off = 2 },
		"Q stride 514":   func(a *AttnArgs, s *KVSource) { a.Q.Ld = 514 },
		"Q batch stride": func(a *AttnArgs, s *KVSource) { a.QBatchStride = 3 },
		"KV offset 1":    func(a *AttnArgs, s *KVSource) { s.KV.Off = 1 },
		"KV stride 1030": func(a *AttnArgs, s *KVSource) { s.KV.Ld = 1030 },
		"KV batch":       func(a *AttnArgs, s *KVSource) { s.BatchStride = 6 },
		"KOff 2":         func(a *AttnArgs, s *KVSource) { s.KOff = 2 },
		"VOff 510":       func(a *AttnArgs, s *KVSource) { s.VOff = 510 },
		"half Q":         func(a *AttnArgs, s *KVSource) { a.Q.Half = true },
	} {
		a, srcs := base()
		change(&a, &srcs[0])
		if _, _, _, ok := o.attnTexFor(a, srcs); ok {
			t.Errorf("%s: attention_tex.comp took it", what)
		}
	}
	a, srcs = base()
	a.DimHead = 128
	if c, _, _, ok := o.attnTexFor(a, srcs); !ok || c.cpu.QT != attnTexTune.QTWide {
		t.Errorf("dh 128: %+v, %v", c, ok)
	}
	o.attnOverride = func(nq, dh int) attnConfig { return attnConfig{BQ: 2, MaxDH: 64, WG: 8, BK: 8} }
	if _, _, _, ok := o.attnTexFor(a, srcs); ok {
		t.Error("attention_tex.comp ignored a forced configuration")
	}
}

// TestAttentionTexLongKeys gives attention_tex.comp key counts at and just
// past what one workgroup may take under lavapipe's loop budget (see
// lavapipeLoopBudget), and more, asking for no splits: ops must split where
// the budget demands, and the kernel must not run more loop iterations than
// attnCPUItersPerBlock says per key (lavapipe would silently stop it early,
// and the result would be wrong).
func TestAttentionTexLongKeys(t *testing.T) {
	o := texOps(t, KeysPerSplit(1<<30))
	if o.loopBudget == 0 {
		o.loopBudget = lavapipeLoopBudget
	}
	rng := rand.New(rand.NewPCG(47, 48))
	f, tr := false, true
	maxKeys := int((o.loopBudget - 64) / attnCPUItersPerBlock)
	for _, c := range []attnCase{
		{batch: 1, nq: 3, heads: 1, dh: 64, nk: []int{maxKeys}, sharedKV: []bool{f}, masked: []bool{f}},
		{batch: 1, nq: 9, heads: 1, dh: 32, nk: []int{maxKeys + 1}, sharedKV: []bool{f}, masked: []bool{tr}},
		{batch: 1, nq: 2, heads: 2, dh: 8, nk: []int{7, 3*maxKeys + 5}, sharedKV: []bool{tr, f}, masked: []bool{f, tr}, sharedQ: true},
	} {
		t.Run(c.String(), func(t *testing.T) { runTexAttention(t, o, rng, c, 4, true) })
	}
}
