package ops

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/isab-vk/isab-vk/shaders"
	"github.com/isab-vk/isab-vk/vk"
)

// cpuAttnCase is one test of attention_cpu.comp: attnCase's shapes, with
// every offset and stride a multiple of align floats (4: vec4 loads, 8:
// u64vec4 loads where dh is a multiple of 8 too), or odd ones when align
// is 0.
type cpuAttnCase struct {
	attnCase
	align int
}

func (c cpuAttnCase) String() string {
	return fmt.Sprintf("%v_al%d", c.attnCase, c.align)
}

// wantVec is the load width (VEC) attnCPUFor should pick for c on o.
func (c cpuAttnCase) wantVec(o *Ops) int {
	switch {
	case c.align == 8 && c.dh%8 == 0 && o.tune.attnCPU.Vec8:
		return attnVec8
	case c.align > 0 && c.dh%4 == 0:
		return attnVec4
	}
	return attnVecScalar
}

// cpuAligns are the alignments worth testing for heads of dh: odd offsets
// always, multiples of 4 and 8 where dh is a multiple of 4 (dh not a
// multiple of 8 with offsets that are tests the fall-back to vec4 loads).
func cpuAligns(dh int) []int {
	if dh%4 != 0 {
		return []int{0}
	}
	return []int{0, 4, 8}
}

// runCPUAttention runs c on o, checks that attention_cpu.comp (not
// attention.comp) ran it with the loads c.wantVec says, compares
// the result with package ref and checks that nothing outside Out's rows
// was written.
func runCPUAttention(t *testing.T, o *Ops, rng *rand.Rand, c cpuAttnCase) {
	t.Helper()
	d := o.Device()
	pad := 3 // odd offsets, and strides wider than the rows
	if c.align > 0 {
		pad = c.align
	}
	f := newAttnFixture(t, d, rng, c.attnCase, attnLayout{pad: pad, maskOff: pad})
	cfg, ok := o.attnCPUFor(f.a, f.a.Sources)
	if !ok || cfg.cpu == nil {
		t.Fatalf("attention_cpu.comp does not take %v", c)
	}
	if k, ch, err := o.chooseAttention(f.a, f.a.Sources, false, false); err != nil || k.kernel != shaders.AttentionCPU {
		t.Fatalf("attention_cpu.comp would not run %v: %v (%v)", c, ch, err)
	}
	if want := c.wantVec(o); cfg.cpu.Vec != want {
		t.Fatalf("loads VEC = %d, want %d", cfg.cpu.Vec, want)
	}
	seq := run(t, d, func(seq *vk.Sequence) error { return o.Attention(seq, f.a, scratchFor(t, d)) })
	t.Logf("config %+v, %d dispatches", *cfg.cpu, seq.Len())
	f.check(t, c.attnCase)
}

// cpuTune is the Option that sets attention_cpu's knobs (share for every
// load width).
func cpuTune(qt, qtWide, bk int, share bool, pf int) Option {
	return withTuning(func(tu *tuning) {
		tu.attnCPU.QT, tu.attnCPU.QTWide, tu.attnCPU.BK = qt, qtWide, bk
		tu.attnCPU.Share, tu.attnCPU.Share8, tu.attnCPU.PF = share, share, pf
	})
}

// cpuOps returns Ops that pick the CPU configurations, whatever the device,
// with attention_tex.comp turned off, so that attention_cpu.comp runs every
// layout.
func cpuOps(t *testing.T, opts ...Option) *Ops {
	o := testOps(t, append(opts, turnOff("attention_tex"))...)
	o.setCPU(true)
	if o.info.SubgroupSize > 64 || !o.info.Int64 {
		t.Skipf("subgroup size %d, shaderInt64 %v: attention_cpu.comp is not used", o.info.SubgroupSize, o.info.Int64)
	}
	return o
}

// TestAttentionCPU checks attention_cpu.comp in its default configuration
// on odd and even sizes: 1, 7, 33 and 257 queries and keys, heads 1 to 128
// wide (odd ones with scalar loads, multiples of 4 with every load width
// their layout allows: see cpuAligns), masks with
// fully masked rows, shared queries or keys, and two sources.
func TestAttentionCPU(t *testing.T) {
	o := cpuOps(t)
	rng := rand.New(rand.NewPCG(31, 32))
	f, tr := false, true
	cases := []attnCase{
		{batch: 1, nq: 1, heads: 1, dh: 1, nk: []int{1}, sharedKV: []bool{f}, masked: []bool{f}},
		{batch: 2, nq: 7, heads: 3, dh: 7, nk: []int{33}, sharedKV: []bool{f}, masked: []bool{tr}, fullRows: []int{1}},
		{batch: 1, nq: 33, heads: 2, dh: 64, nk: []int{257}, sharedKV: []bool{f}, masked: []bool{f}},
		{batch: 3, nq: 257, heads: 1, dh: 33, nk: []int{7}, sharedKV: []bool{f}, masked: []bool{tr}, fullRows: []int{0, 2}},
		{batch: 2, nq: 33, heads: 2, dh: 128, nk: []int{33}, sharedKV: []bool{f}, masked: []bool{tr}, fullRows: []int{1}},
		{batch: 1, nq: 7, heads: 4, dh: 16, nk: []int{257}, sharedKV: []bool{f}, masked: []bool{tr}},
		{batch: 2, nq: 1, heads: 1, dh: 127, nk: []int{7}, sharedKV: []bool{f}, masked: []bool{f}},
		// 8-float loads: dh 8 (one piece for the whole subgroup); dh 12
		// and 20 with offsets multiples of 8 fall back to vec4 loads.
		{batch: 2, nq: 33, heads: 3, dh: 8, nk: []int{33}, sharedKV: []bool{f}, masked: []bool{tr}, fullRows: []int{0}},
		{batch: 1, nq: 9, heads: 2, dh: 12, nk: []int{7}, sharedKV: []bool{f}, masked: []bool{f}},
		{batch: 2, nq: 7, heads: 1, dh: 20, nk: []int{33}, sharedKV: []bool{f}, masked: []bool{tr}},
		// Shared latent queries against per-batch keys, and the reverse.
		{batch: 3, nq: 7, heads: 2, dh: 16, nk: []int{100}, sharedKV: []bool{f}, masked: []bool{tr}, sharedQ: true},
		{batch: 2, nq: 33, heads: 2, dh: 64, nk: []int{9}, sharedKV: []bool{tr}, masked: []bool{f}},
		// latent_self_attend: concat(latents, x), x masked.
		{batch: 2, nq: 7, heads: 2, dh: 64, nk: []int{7, 257}, sharedKV: []bool{tr, f}, masked: []bool{f, tr}, fullRows: []int{1}, sharedQ: true},
		{batch: 3, nq: 33, heads: 1, dh: 33, nk: []int{33, 1}, sharedKV: []bool{tr, f}, masked: []bool{f, tr}, fullRows: []int{2}, sharedQ: true},
	}
	for _, c := range cases {
		for _, al := range cpuAligns(c.dh) {
			cc := cpuAttnCase{c, al}
			t.Run(cc.String(), func(t *testing.T) { runCPUAttention(t, o, rng, cc) })
		}
	}
}

// TestAttentionCPUConfigs runs other configurations of attention_cpu.comp
// (queries per invocation, keys per block that do not divide the key
// counts, row loads shared or not, rows touched ahead or not) with every
// load width and forced key splits too, so every
// case also goes through the partial results and the combine kernel.
func TestAttentionCPUConfigs(t *testing.T) {
	f, tr := false, true
	cases := []attnCase{
		{batch: 2, nq: 7, heads: 2, dh: 7, nk: []int{33}, sharedKV: []bool{f}, masked: []bool{tr}, fullRows: []int{0}},
		{batch: 1, nq: 33, heads: 3, dh: 64, nk: []int{257}, sharedKV: []bool{f}, masked: []bool{tr}},
		{batch: 2, nq: 9, heads: 1, dh: 20, nk: []int{7, 33}, sharedKV: []bool{tr, f}, masked: []bool{f, tr}, fullRows: []int{1}, sharedQ: true},
	}
	for _, tune := range []struct {
		qt, bk int
		share  bool
		pf     int
	}{{1, 1, false, 0}, {3, 2, true, 1}, {2, 3, false, 2}, {1, 4, true, 3}} {
		for _, split := range []int{0, 8} {
			t.Run(fmt.Sprintf("qt%d_bk%d_share%v_pf%d_split%d", tune.qt, tune.bk, tune.share, tune.pf, split), func(t *testing.T) {
				o := cpuOps(t, KeysPerSplit(split), cpuTune(tune.qt, tune.qt, tune.bk, tune.share, tune.pf))
				rng := rand.New(rand.NewPCG(33, 34))
				for _, c := range cases {
					for _, al := range cpuAligns(c.dh) {
						cc := cpuAttnCase{c, al}
						t.Run(cc.String(), func(t *testing.T) { runCPUAttention(t, o, rng, cc) })
					}
				}
			})
		}
	}
}

// TestAttentionCPULongKeys gives attention_cpu.comp key counts at and just
// past what one workgroup may take under lavapipe's loop budget (see
// lavapipeLoopBudget), and more, asking for no splits: ops must split
// where the budget demands, and the kernel must not count more loop
// iterations than attnCPUItersPerBlock says (lavapipe would silently stop
// it early, and the result would be wrong).
func TestAttentionCPULongKeys(t *testing.T) {
	o := cpuOps(t, KeysPerSplit(1<<30))
	if o.loopBudget == 0 {
		o.loopBudget = lavapipeLoopBudget
	}
	rng := rand.New(rand.NewPCG(35, 36))
	f, tr := false, true
	bk := o.tune.attnCPU.BK
	maxKeys := int((o.loopBudget-64)/attnCPUItersPerBlock) * bk
	for _, c := range []attnCase{
		{batch: 1, nq: 3, heads: 1, dh: 64, nk: []int{maxKeys}, sharedKV: []bool{f}, masked: []bool{f}},
		{batch: 1, nq: 9, heads: 1, dh: 33, nk: []int{maxKeys + 1}, sharedKV: []bool{f}, masked: []bool{tr}},
		{batch: 1, nq: 2, heads: 2, dh: 8, nk: []int{7, 3*maxKeys + 5}, sharedKV: []bool{tr, f}, masked: []bool{f, tr}, sharedQ: true},
	} {
		for _, al := range cpuAligns(c.dh) {
			cc := cpuAttnCase{c, al}
			t.Run(cc.String(), func(t *testing.T) { runCPUAttention(t, o, rng, cc) })
		}
	}
}

// TestAttentionCPUFallback checks which attentions attention_cpu.comp
// takes: on CPU configurations, heads up to attnCPUMaxDH wide, and not
// with a configuration forced by a test.
func TestAttentionCPUFallback(t *testing.T) {
	o := testOps(t)
	a := AttnArgs{DimHead: 64, Q: Mat{Cols: 512}}
	o.setCPU(false)
	if _, ok := o.attnCPUFor(a, nil); ok {
		t.Error("GPU configuration took attention_cpu.comp")
	}
	o.setCPU(true)
	if o.info.SubgroupSize > 64 || !o.info.Int64 {
		t.Skipf("subgroup size %d, shaderInt64 %v", o.info.SubgroupSize, o.info.Int64)
	}
	if c, ok := o.attnCPUFor(a, nil); !ok || c.cpu == nil || c.BQ != c.cpu.WG*c.cpu.QT || c.BK != c.cpu.BK {
		t.Errorf("CPU configuration for dh 64: %+v, %v", c, ok)
	}
	// 8-float loads need every offset and stride a multiple of 8; else vec4
	// or scalar loads. Without shaderInt64 (the module declares Int64)
	// attention.comp runs.
	a8 := AttnArgs{DimHead: 64, Q: Mat{Cols: 512, Ld: 512}, QBatchStride: 8 * 512}
	src := KVSource{KV: Mat{Cols: 1024, Ld: 1024}, VOff: 512, BatchStride: 1024}
	for _, tc := range []struct {
		int64     bool
		qoff, kld int
		want      int
	}{{true, 0, 1024, attnVec8}, {false, 0, 1024, attnVec4}, {true, 4, 1024, attnVec4}, {true, 0, 1028, attnVec4}, {true, 2, 1024, attnVecScalar}} {
		saved := o.info.Int64
		o.info.Int64 = tc.int64
		a8.Q.Off, src.KV.Ld = tc.qoff, tc.kld
		c, ok := o.attnCPUFor(a8, []KVSource{src})
		o.info.Int64 = saved
		if !tc.int64 {
			if ok {
				t.Errorf("attention_cpu.comp taken without shaderInt64: %+v", c.cpu)
			}
			continue
		}
		if !ok || c.cpu == nil || c.cpu.Vec != tc.want {
			t.Errorf("Int64 %v, Q offset %d, KV stride %d: %+v, %v, want VEC %d", tc.int64, tc.qoff, tc.kld, c.cpu, ok, tc.want)
		}
	}
	a.DimHead = attnCPUMaxDH + 1
	if _, ok := o.attnCPUFor(a, nil); ok {
		t.Errorf("attention_cpu.comp took heads of %d", a.DimHead)
	}
	a.DimHead = 64
	o.tune.attnGeneric = func(nq, dh int) attnConfig { return attnConfig{BQ: 2, MaxDH: 64, WG: 8, BK: 8} }
	if _, ok := o.attnCPUFor(a, nil); ok {
		t.Error("attention_cpu.comp ignored a forced configuration")
	}
}
