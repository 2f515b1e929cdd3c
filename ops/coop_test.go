package ops

// Tests of the cooperative-matrix kernels (linear_coop.go, attention_coop.go)
// and of how Ops chooses them (coop.go).

import (
	"math/rand/v2"
	"testing"

	"github.com/isab-vk/isab-vk/vk"
)

// coopOps returns Ops with the cooperative-matrix Linear forced on, or skips
// when the test device has no usable shape (Debian 12's lavapipe has none;
// scripts/trixie.sh run gives one that has).
func coopOps(t *testing.T, opts ...Option) *Ops {
	t.Helper()
	o := testOps(t, append(opts, CoopMatrices(true))...)
	if _, ok := o.useCoop(); !ok {
		t.Skipf("%s reports no fp16 x fp16 + fp32 subgroup cooperative-matrix shape (%v): the cooperative-matrix Linear is untested here; "+
			"run the test binary under scripts/trixie.sh run for lavapipe with VK_KHR_cooperative_matrix", o.info.Name, o.info.CoopMatrix)
	}
	return o
}

// linearCoopCases are linearHalfCases plus shapes that cover several
// workgroups, ragged block edges and K longer than one staged tile, with
// vec4 (pad 0 or 4) and scalar (odd pad) loads.
var linearCoopCases = append(append([]linearHalfCase{}, linearHalfCases...),
	linearHalfCase{257, 96, 130, true, 4},
	linearHalfCase{65, 257, 63, false, 1},
	linearHalfCase{128, 512, 192, true, 0},
)

func TestLinearCoop(t *testing.T) {
	o := coopOps(t)
	shape, _ := o.useCoop()
	for _, c := range linearCoopCases {
		if _, ok := o.coopFor(shape, c.k, c.pad, c.k+c.pad, 2*c.pad, c.k+2*c.pad); !ok {
			t.Fatalf("%v: coopFor declined %dx%dx%d", shape, c.m, c.k, c.n)
		}
	}
	testLinearHalf(t, o, linearCoopCases)
}

// TestLinearCoopChunking cuts the cooperative-matrix Linear into pieces of
// at most 4 KiB bindings, at aligned offsets with odd half remainders.
func TestLinearCoopChunking(t *testing.T) {
	testLinearHalf(t, coopOps(t, smallBindings(4096)), linearCoopCases[2:6])
}

// TestLinearCoopRounding checks that results are rounded to the nearest
// half: y = x*1 with x exactly between two halves (in float32) cannot be
// tested through half inputs, so it sums two halves whose exact sum lies
// between two halves and expects round-to-nearest-even.
func TestLinearCoopRounding(t *testing.T) {
	o := coopOps(t)
	d := o.Device()
	// 1 + 2^-11 lies halfway between 1 and 1 + 2^-10 (rounds to 1, even);
	// 1 + 3*2^-11 halfway between 1 + 2^-10 and 1 + 2^-9 (rounds up).
	xs := []float32{1, 0x1p-11, 1 + 0x1p-10, 0x1p-11}
	x := Mat{Buf: upload(t, d, quantizeSlice(xs)), Rows: 2, Cols: 2, Half: true}
	w := Mat{Buf: upload(t, d, quantizeSlice([]float32{1, 1})), Rows: 1, Cols: 2, Half: true}
	y := Mat{Buf: newHalfBuf(t, d, 2), Rows: 2, Cols: 1, Half: true}
	run(t, d, func(seq *vk.Sequence) error { return o.Linear(seq, x, w, nil, y) })
	got := readMat(t, y)
	want := []float32{1, 1 + 0x1p-9}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("y[%d] = %.10g, want %.10g (round to nearest even)", i, got[i], want[i])
		}
	}
}

// quantizeSlice converts float32 values to half bits.
func quantizeSlice(v []float32) []uint16 {
	h := make([]uint16, len(v))
	for i, f := range v {
		h[i] = halfBits(f)
	}
	return h
}

func TestCoopShape(t *testing.T) {
	f16 := func(m, n, k uint32, c string, sub bool) vk.CoopMatrixShape {
		return vk.CoopMatrixShape{M: m, N: n, K: k, A: "f16", B: "f16", C: c, Result: c, Subgroup: sub}
	}
	nvidia := vk.Info{CoopMatrix: []vk.CoopMatrixShape{
		f16(16, 8, 16, "f32", true), f16(16, 16, 16, "f16", true), f16(16, 8, 8, "f32", true),
		f16(16, 16, 16, "f32", true), {M: 16, N: 16, K: 32, A: "i8", B: "i8", C: "i32", Result: "i32", Subgroup: true},
	}}
	if s, ok := CoopShape(nvidia); !ok || s != f16(16, 16, 16, "f32", true) {
		t.Errorf("CoopShape(NVIDIA-like) = %v, %v; want 16x16x16 with f32", s, ok)
	}
	for _, info := range []vk.Info{
		{},
		{CoopMatrix: []vk.CoopMatrixShape{f16(16, 16, 16, "f16", true)}},
		{CoopMatrix: []vk.CoopMatrixShape{f16(16, 16, 16, "f32", false)}},
		{CoopMatrix: []vk.CoopMatrixShape{f16(128, 16, 16, "f32", true)}},
	} {
		if s, ok := CoopShape(info); ok {
			t.Errorf("CoopShape(%v) = %v, want none", info.CoopMatrix, s)
		}
	}
}

func TestCoopFor(t *testing.T) {
	shape := vk.CoopMatrixShape{M: 16, N: 16, K: 16, A: "f16", B: "f16", C: "f32", Result: "f32", Subgroup: true}
	o := &Ops{info: vk.Info{SubgroupSize: 32, SharedMemory: 48 << 10, MaxWorkgroup: 1024}}
	c, ok := o.coopFor(shape, 512, 0, 512, 0, 512)
	if !ok || c.bm() != 64 || c.bn() != 64 || c.bk() != 32 || c.WG != 128 || c.VEC != 4 {
		t.Errorf("coopFor(16x16x16, 48 KiB) = %+v, %v; want 64x64x32 blocks of 128 invocations, vec4", c, ok)
	}
	if c.sharedBytes() > 48<<10 {
		t.Errorf("shared memory %d > 48 KiB", c.sharedBytes())
	}
	if c, _ := o.coopFor(shape, 513, 0, 513, 0, 513); c.VEC != 1 {
		t.Errorf("K = 513: VEC = %d, want 1", c.VEC)
	}
	if c, _ := o.coopFor(shape, 512, 2, 512, 0, 512); c.VEC != 1 {
		t.Errorf("x offset 2: VEC = %d, want 1", c.VEC)
	}
	// Less shared memory and a smaller workgroup limit shrink the block.
	o.info.SharedMemory, o.info.MaxWorkgroup = 8<<10, 64
	c, ok = o.coopFor(shape, 512, 0, 512, 0, 512)
	if !ok || c.sharedBytes() > 8<<10 || c.WG > 64 {
		t.Errorf("coopFor(8 KiB, 64 invocations) = %+v (%d bytes), %v", c, c.sharedBytes(), ok)
	}
	o.info.SharedMemory = 512
	if c, ok := o.coopFor(shape, 512, 0, 512, 0, 512); ok {
		t.Errorf("coopFor(512 bytes of shared memory) = %+v, want declined", c)
	}
	// On lavapipe the K loop must stay within the loop budget.
	o.info.SharedMemory = 48 << 10
	o.loopBudget = lavapipeLoopBudget
	if _, ok := o.coopFor(shape, 4096, 0, 4096, 0, 4096); !ok {
		t.Error("coopFor(K = 4096) declined under the loop budget")
	}
	if _, ok := o.coopFor(shape, 1<<22, 0, 1<<22, 0, 1<<22); ok {
		t.Error("coopFor(K = 4M) accepted past the loop budget")
	}
}

func TestParseCoopMode(t *testing.T) {
	for s, want := range map[string]coopMode{
		"": coopAuto, "auto": coopAuto, "on": coopOn, " ON ": coopOn, "1": coopOn, "off": coopOff, "0": coopOff, "bogus": coopAuto,
	} {
		if got := parseCoopMode(s); got != want {
			t.Errorf("parseCoopMode(%q) = %d, want %d", s, got, want)
		}
	}
}

// TestCoopMatricesOption checks who decides: the option over the default,
// which keeps CPU devices off.
func TestCoopMatricesOption(t *testing.T) {
	shape := vk.CoopMatrixShape{M: 8, N: 8, K: 8, A: "f16", B: "f16", C: "f32", Result: "f32", Subgroup: true}
	info := vk.Info{Float16: true, Storage16: true, SubgroupSize: 16, MinSubgroupSize: 16, MaxSubgroupSize: 16, CoopMatrix: []vk.CoopMatrixShape{shape}}
	for _, c := range []struct {
		mode coopMode
		cpu  bool
		want bool
	}{
		{coopAuto, false, true}, {coopAuto, true, false}, {coopOn, true, true}, {coopOff, false, false},
	} {
		o := &Ops{info: info, coop: c.mode, cpu: c.cpu}
		if _, got := o.useCoop(); got != c.want {
			t.Errorf("mode %d, cpu %v: useCoop = %v, want %v", c.mode, c.cpu, got, c.want)
		}
	}
	o := &Ops{info: vk.Info{Storage16: true, SubgroupSize: 16, CoopMatrix: []vk.CoopMatrixShape{shape}}, coop: coopOn}
	if _, ok := o.useCoop(); ok {
		t.Error("useCoop without shaderFloat16 = true")
	}
	// A device that may run subgroups of 8 to 64 lanes: the kernels'
	// workgroups are whole subgroups of the reported size only where the
	// pipeline can require it.
	varying := info
	varying.MinSubgroupSize, varying.MaxSubgroupSize = 8, 64
	if _, ok := (&Ops{info: varying, coop: coopOn}).useCoop(); ok {
		t.Error("useCoop = true where the subgroup size may vary and cannot be required")
	}
	varying.RequiredSubgroupSize = true
	if _, ok := (&Ops{info: varying, coop: coopOn}).useCoop(); !ok {
		t.Error("useCoop = false where the subgroup size can be required")
	}
	var opt Ops
	CoopMatrices(false)(&opt)
	if opt.coop != coopOff {
		t.Errorf("CoopMatrices(false) left mode %d", opt.coop)
	}
}

// attnCoopCases are halfAttnCases plus wide and odd heads, more queries
// than one workgroup takes, and a fully masked batch element.
var attnCoopCases = append(append([]attnCase{}, halfAttnCases...),
	attnCase{batch: 2, nq: 130, heads: 2, dh: 72, nk: []int{77}, sharedKV: []bool{false}, masked: []bool{true}, fullRows: []int{0}},
	attnCase{batch: 1, nq: 65, heads: 1, dh: 128, nk: []int{40, 9}, sharedKV: []bool{false, true}, masked: []bool{false, true}},
	attnCase{batch: 1, nq: 20, heads: 4, dh: 5, nk: []int{300}, sharedKV: []bool{false}, masked: []bool{false}},
)

// testAttentionCoop runs attnCoopCases (from skip on) on o, checking that
// attention_coop.comp takes every one of them.
func testAttentionCoop(t *testing.T, o *Ops, seed uint64, skip int) {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	for _, c := range attnCoopCases[skip:] {
		t.Run(c.String(), func(t *testing.T) {
			a := AttnArgs{Q: Mat{Half: true}, Out: Mat{Half: true}, Sources: []KVSource{{KV: Mat{Half: true}}},
				NQ: c.nq, Heads: c.heads, DimHead: c.dh}
			if _, ok := o.attnCoopFor(a); !ok {
				t.Fatalf("attnCoopFor declined dh %d", c.dh)
			}
			runAttentionHalf(t, o, rng, c)
		})
	}
}

func TestAttentionCoop(t *testing.T) { testAttentionCoop(t, coopOps(t), 51, 0) }

// TestAttentionCoopSplits forces key splits (and partial blocks at their
// ends): float32 partials merged by attn_combine.
func TestAttentionCoopSplits(t *testing.T) {
	testAttentionCoop(t, coopOps(t, KeysPerSplit(24)), 53, 1)
}

// TestAttentionCoopChunking cuts batch, queries and keys into pieces of at
// most 4 KiB bindings (TestChunking's attention cases, in fp16).
func TestAttentionCoopChunking(t *testing.T) {
	o := coopOps(t, smallBindings(4096))
	rng := rand.New(rand.NewPCG(55, 56))
	for _, c := range chunkingAttnCases {
		t.Run(c.String(), func(t *testing.T) { runAttentionHalf(t, o, rng, c) })
	}
}

func TestAttnCoopFor(t *testing.T) {
	shape := vk.CoopMatrixShape{M: 16, N: 16, K: 16, A: "f16", B: "f16", C: "f32", Result: "f32", Subgroup: true}
	info := vk.Info{Float16: true, Storage16: true, SubgroupSize: 32, MinSubgroupSize: 32, MaxSubgroupSize: 32,
		SharedMemory: 48 << 10, MaxWorkgroup: 1024, CoopMatrix: []vk.CoopMatrixShape{shape}}
	o := &Ops{info: info}
	half := func(nq, dh int) AttnArgs {
		return AttnArgs{Q: Mat{Half: true}, Out: Mat{Half: true}, NQ: nq, DimHead: dh}
	}
	for _, c := range []struct{ nq, dh, bq, bk, dhp int }{
		{16384, 64, 64, 16, 64}, {128, 64, 64, 16, 64}, {7, 64, 16, 32, 64}, {1000, 72, 64, 16, 80},
		{1000, 128, 32, 16, 128}, {1000, 256, 16, 16, 256}, {1000, 1, 64, 32, 16},
	} {
		cfg, ok := o.attnCoopFor(half(c.nq, c.dh))
		if !ok || cfg.coop == nil {
			t.Errorf("nq %d dh %d: declined", c.nq, c.dh)
			continue
		}
		k := cfg.coop
		if k.BQ != c.bq || k.BK != c.bk || k.DH != c.dhp || k.WG != 128 || cfg.BQ != k.BQ || cfg.BK != k.BK {
			t.Errorf("nq %d dh %d: BQ %d BK %d DH %d WG %d, want %d %d %d 128", c.nq, c.dh, k.BQ, k.BK, k.DH, k.WG, c.bq, c.bk, c.dhp)
		}
		if k.shared() > 48<<10 {
			t.Errorf("nq %d dh %d: %d bytes of shared memory", c.nq, c.dh, k.shared())
		}
	}
	if _, ok := o.attnCoopFor(half(100, 257)); ok {
		t.Error("dh 257 accepted")
	}
	if _, ok := o.attnCoopFor(AttnArgs{NQ: 100, DimHead: 64}); ok {
		t.Error("float32 operands accepted")
	}
	o.info.SharedMemory = 4 << 10
	if _, ok := o.attnCoopFor(half(100, 128)); ok {
		t.Error("accepted with 4 KiB of shared memory")
	}
	o.info = vk.Info{Float16: true, Storage16: true, SubgroupSize: 32, SharedMemory: 48 << 10, MaxWorkgroup: 1024}
	if _, ok := o.attnCoopFor(half(100, 64)); ok {
		t.Error("accepted without cooperative matrices")
	}
}
