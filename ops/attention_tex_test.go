package ops

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/isab-vk/isab-vk/shaders"
	"github.com/isab-vk/isab-vk/vk"
)

// texOps returns Ops that pick the CPU configurations, whatever the device,
// with cooperative matrices off, skipping where attention_tex.comp cannot
// run.
func texOps(t *testing.T, opts ...Option) *Ops {
	t.Helper()
	o := testOps(t, append(opts, CoopMatrices(false))...)
	o.setCPU(true)
	if o.info.SubgroupSize > 64 || !o.texelAligned() {
		t.Skipf("subgroup size %d, binding alignment %d: attention_tex.comp is not used", o.info.SubgroupSize, o.align)
	}
	return o
}

// runTexAttention runs c on o with every offset and stride of Q and KV a
// multiple of pad floats (odd when pad is 3), the keys after the values in
// a KV row, checks that Attention ran attention_tex.comp exactly when
// wantTex, compares the result with package ref and checks that nothing
// outside Out's rows was written.
func runTexAttention(t *testing.T, o *Ops, rng *rand.Rand, c attnCase, pad int, wantTex bool) {
	t.Helper()
	d := o.Device()
	f := newAttnFixture(t, d, rng, c, attnLayout{pad: pad, maskOff: 5, swap: true})
	if _, _, _, ok := o.attnTexFor(f.a, f.a.Sources); ok != wantTex {
		t.Fatalf("attnTexFor took %v: %v, want %v", c, ok, wantTex)
	}
	seq := run(t, d, func(seq *vk.Sequence) error { return o.Attention(seq, f.a, scratchFor(t, d)) })
	if got := slices.Contains(seq.Names(), "attention_tex"); got != wantTex {
		t.Fatalf("dispatches %v: attention_tex ran %v, want %v", seq.Names(), got, wantTex)
	}
	t.Logf("%d dispatches", seq.Len())
	f.check(t, c)
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

// TestAttentionTexQT runs other query counts per invocation and key-block
// sizes (Ops.tune.attnTex, with the fast configurations at every size): blocks
// of 1, 3, 4 and 8 keys against key counts and splits that leave partial
// blocks.
func TestAttentionTexQT(t *testing.T) {
	f, tr := false, true
	cases := []attnCase{
		{batch: 2, nq: 33, heads: 2, dh: 20, nk: []int{33}, sharedKV: []bool{f}, masked: []bool{tr}, fullRows: []int{0}},
		{batch: 2, nq: 9, heads: 1, dh: 12, nk: []int{7, 33}, sharedKV: []bool{tr, f}, masked: []bool{f, tr}, fullRows: []int{1}, sharedQ: true},
	}
	// The defaults for large attentions (8, 4) and the quick-to-compile
	// configuration (attnTexQuickQT, 1) among them.
	for i, qt := range []int{1, 3, 8, 8, attnTexQuickQT} {
		bk := []int{3, 8, 1, 4, 1}[i]
		for _, split := range []int{0, 5} {
			t.Run(fmt.Sprintf("qt%d_bk%d_split%d", qt, bk, split), func(t *testing.T) {
				o := texOps(t, KeysPerSplit(split), FastKernelsFrom(0),
					withTuning(func(tu *tuning) { tu.attnTex.QT, tu.attnTex.QTWide, tu.attnTex.BK = qt, qt, bk }))
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
	o := testOps(t, FastKernelsFrom(0))
	if o.info.SubgroupSize > 64 || !o.texelAligned() {
		t.Skipf("subgroup size %d, binding alignment %d: attention_tex.comp is not used", o.info.SubgroupSize, o.align)
	}
	base := func() (AttnArgs, []KVSource) {
		srcs := []KVSource{{KV: Mat{Off: 8, Cols: 1024, Ld: 1032}, VOff: 512, NK: 9, BatchStride: 9 * 1032}}
		return AttnArgs{DimHead: 64, Heads: 8, Q: Mat{Off: 4, Cols: 512, Ld: 516}, QBatchStride: 16 * 516, Sources: srcs,
			Out: Mat{Off: 8, Cols: 512, Ld: 520}}, srcs
	}
	o.setCPU(false)
	a, srcs := base()
	if _, _, _, ok := o.attnTexFor(a, srcs); ok {
		t.Error("GPU configuration took attention_tex.comp")
	}
	o.setCPU(true)
	c, name, texel, ok := o.attnTexFor(a, srcs)
	if !ok || name != shaders.AttentionTex || texel != 3 || c.cpu == nil || c.BQ != c.cpu.WG*c.cpu.QT || c.BK != o.tune.attnTex.BK || c.cpu.BK != o.tune.attnTex.BK || c.cpu.DH != 64 || c.MaxDH != 64 {
		t.Fatalf("CPU configuration for dh 64: %+v %v %#x %v", c, name, texel, ok)
	}
	if c.WG < 8 || c.WG < int(o.info.SubgroupSize) || c.cpu.QT != o.tune.attnTex.QT {
		t.Errorf("workgroup %d, %d queries per invocation", c.WG, c.cpu.QT)
	}
	// Half operands take attention_tex_f16 where the device can store to
	// images declared without a format.
	h, hsrcs := base()
	h.Q.Half, hsrcs[0].KV.Half, h.Out.Half = true, true, true
	if _, name, _, ok := o.attnTexFor(h, hsrcs); ok != o.info.WriteWithoutFormat || (ok && name != shaders.AttentionTexF16) {
		t.Errorf("half operands: %q %v with shaderStorageImageWriteWithoutFormat %v", name, ok, o.info.WriteWithoutFormat)
	}
	saved := o.info.WriteWithoutFormat
	o.info.WriteWithoutFormat = false
	if _, _, _, ok := o.attnTexFor(h, hsrcs); ok {
		t.Error("half operands taken without shaderStorageImageWriteWithoutFormat")
	}
	o.info.WriteWithoutFormat = saved
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
		"Out offset 2":   func(a *AttnArgs, s *KVSource) { a.Out.Off = 2 },
		"Out stride 518": func(a *AttnArgs, s *KVSource) { a.Out.Ld = 518 },
	} {
		a, srcs := base()
		change(&a, &srcs[0])
		if _, _, _, ok := o.attnTexFor(a, srcs); ok {
			t.Errorf("%s: attention_tex.comp took it", what)
		}
	}
	a, srcs = base()
	a.DimHead = 128
	if c, _, _, ok := o.attnTexFor(a, srcs); !ok || c.cpu.QT != o.tune.attnTex.QTWide {
		t.Errorf("dh 128: %+v, %v", c, ok)
	}
	// Below the fast kernels' size, the quick-to-compile configuration;
	// from it, the fast one.
	a, srcs = base()
	o.fastFLOPs = attnFLOPs(a, srcs) + 1
	if c, _, _, ok := o.attnTexFor(a, srcs); !ok || c.cpu.QT != attnTexQuickQT || c.cpu.BK != 1 {
		t.Errorf("small attention: %+v, %v; want %d queries per invocation, blocks of 1 key", c, ok, attnTexQuickQT)
	}
	o.fastFLOPs = attnFLOPs(a, srcs)
	if c, _, _, ok := o.attnTexFor(a, srcs); !ok || c.cpu.QT != o.tune.attnTex.QT || c.cpu.BK != o.tune.attnTex.BK {
		t.Errorf("attention at the fast size: %+v, %v", c, ok)
	}
	o.tune.attnGeneric = func(nq, dh int) attnConfig { return attnConfig{BQ: 2, MaxDH: 64, WG: 8, BK: 8} }
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

// TestAttentionTexHalf runs attention_tex_f16 (half texel views of Q and
// KV, the output as halves or, split, as float32 partials) on texCases with
// offsets and strides that are multiples of 4 and 8 halves, with automatic
// and forced key splits.
func TestAttentionTexHalf(t *testing.T) {
	for _, split := range []int{0, 8} {
		o := texOps(t, KeysPerSplit(split))
		if !o.SupportsHalf() || !o.info.WriteWithoutFormat {
			t.Skip("no 16-bit storage or no shaderStorageImageWriteWithoutFormat")
		}
		rng := rand.New(rand.NewPCG(47, 48))
		d := o.Device()
		for _, c := range texCases() {
			for _, pad := range []int{4, 8} {
				t.Run(fmt.Sprintf("%v_pad%d_split%d", c, pad, split), func(t *testing.T) {
					f := newAttnFixture(t, d, rng, c, attnLayout{pad: pad, maskOff: 5, swap: true, half: true})
					seq := run(t, d, func(seq *vk.Sequence) error { return o.Attention(seq, f.a, scratchFor(t, d)) })
					if !slices.Contains(seq.Names(), "attention_tex_f16") {
						t.Fatalf("dispatches %v: attention_tex_f16 did not run", seq.Names())
					}
					f.check(t, c)
				})
			}
		}
	}
}
