package ops

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/isab-vk/isab-vk/vk"
)

// candidateOps returns Ops that run only the implementation name (with
// cooperative matrices allowed wherever the device has them, CPU devices
// included), fp16 or not, chunked into bindings of at most 4 KiB or not,
// and a function returning the implementation choices it made. It skips
// when half and the device lacks 16-bit storage.
func candidateOps(t *testing.T, name string, half, chunked bool) (*Ops, func() []Choice) {
	t.Helper()
	var mu sync.Mutex
	var choices []Choice
	opts := []Option{forceImpl(name), CoopMatrices(true), OnChoice(func(c Choice) {
		mu.Lock()
		choices = append(choices, c)
		mu.Unlock()
	})}
	if chunked {
		opts = append(opts, smallBindings(4096))
	}
	o := testOps(t, opts...)
	if half && !o.SupportsHalf() {
		t.Skip("no 16-bit storage (storageBuffer16BitAccess): no fp16 operands")
	}
	return o, func() []Choice {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(choices)
	}
}

// skipDeclined skips t, with the reason, when the forced implementation
// name declined the call that returned err; otherwise it fails t on err
// and checks that the implementation's kernel is what seq dispatched.
func skipDeclined(t *testing.T, name string, choices []Choice, seq *vk.Sequence, err error) {
	t.Helper()
	if len(choices) == 0 {
		t.Fatalf("no choice reported (err %v)", err)
	}
	c := choices[len(choices)-1]
	if c.Chosen == "" {
		for _, cand := range c.Candidates {
			if cand.Name == name {
				t.Skipf("%s declines on %s: %s", name, testDevice(t).Info().Name, cand.Why)
			}
		}
		t.Fatalf("%s is not a candidate of %s: %v", name, c.Op, c)
	}
	if err != nil {
		t.Fatal(err)
	}
	if c.Chosen != name || !slices.Contains(seq.Names(), c.Kernel) {
		t.Fatalf("chose %s (%s), dispatched %v; want %s", c.Chosen, c.Kernel, seq.Names(), name)
	}
}

// candidateRun records with rec into a fresh sequence, runs it unless
// the forced implementation declined (see skipDeclined), and returns the
// number of dispatches.
func candidateRun(t *testing.T, o *Ops, name string, choices func() []Choice, rec func(seq *vk.Sequence) error) int {
	t.Helper()
	seq := o.Device().NewSequence()
	t.Cleanup(func() { seq.Close() })
	err := rec(seq)
	skipDeclined(t, name, choices(), seq, err)
	if err := seq.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d dispatches", name, seq.Len())
	return seq.Len()
}

// checkPieces fails t when an op that had to be cut into pieces (chunked,
// on an operand over 4 KiB) ran in one dispatch.
func checkPieces(t *testing.T, chunked bool, bytes, dispatches int) {
	t.Helper()
	if chunked && bytes > 8192 && dispatches < 2 {
		t.Errorf("%d bytes in bindings of 4 KiB ran in %d dispatch", bytes, dispatches)
	}
}

// candidateLinearCases are Linear's shapes in TestCandidates: the odd sizes
// 1, 7, 33 and 257 with odd offsets and widths (which the texel kernel
// declines), and the same row counts with widths that are multiples of 4
// (which it takes).
var candidateLinearCases = []linearHalfCase{
	{m: 1, k: 1, n: 1, bias: true, pad: 1},
	{m: 7, k: 7, n: 7, bias: false, pad: 3},
	{m: 33, k: 33, n: 33, bias: true, pad: 1},
	{m: 257, k: 33, n: 7, bias: true, pad: 0},
	{m: 1, k: 64, n: 36, bias: true, pad: 0},
	{m: 7, k: 64, n: 36, bias: false, pad: 4},
	{m: 33, k: 64, n: 36, bias: true, pad: 4},
	{m: 257, k: 64, n: 36, bias: true, pad: 0},
}

// candidateAttnCases are Attention's shapes in TestCandidates: 1, 7, 33
// and 257 queries and keys, masked, with heads of 16 (multiples of 4
// everywhere) and of 7 (odd widths).
var candidateAttnCases = func() []attnCase {
	f, tr := false, true
	var cs []attnCase
	for _, s := range []int{1, 7, 33, 257} {
		cs = append(cs,
			attnCase{batch: 2, nq: s, heads: 2, dh: 16, nk: []int{s}, sharedKV: []bool{f}, masked: []bool{tr}},
			attnCase{batch: 2, nq: s, heads: 2, dh: 7, nk: []int{7, s}, sharedKV: []bool{tr, f}, masked: []bool{f, tr}, sharedQ: true},
		)
	}
	return cs
}()

// TestCandidates runs every implementation of Linear and Attention, forced
// (see forceImpl), in float32 and fp16, whole and chunked into small
// bindings, on the odd sizes of candidateLinearCases and candidateAttnCases,
// and compares each with the float64 reference. An implementation that
// declines a case on this device (the texel kernels on odd layouts, the
// CPU kernels on fp16, cooperative matrices where the device has none)
// skips it with its reason. The implementations run in parallel, each on
// Ops of its own (the device is safe for concurrent use; a validation
// message still fails the test, if perhaps another one of them).
func TestCandidates(t *testing.T) {
	for _, half := range []bool{false, true} {
		for _, chunked := range []bool{false, true} {
			prec := map[bool]string{false: "fp32", true: "fp16"}[half]
			cut := map[bool]string{false: "whole", true: "chunked"}[chunked]
			for _, im := range linearImpls {
				t.Run(fmt.Sprintf("Linear/%s/%s/%s", im.name(), prec, cut), func(t *testing.T) {
					t.Parallel()
					testCandidateLinear(t, im.name(), half, chunked)
				})
			}
			for _, im := range attnImpls {
				t.Run(fmt.Sprintf("Attention/%s/%s/%s", im.name(), prec, cut), func(t *testing.T) {
					t.Parallel()
					testCandidateAttention(t, im.name(), half, chunked)
				})
			}
		}
	}
}

func testCandidateLinear(t *testing.T, name string, half, chunked bool) {
	o, choices := candidateOps(t, name, half, chunked)
	d := o.Device()
	rng := rand.New(rand.NewPCG(61, 62))
	for _, c := range candidateLinearCases {
		t.Run(fmt.Sprintf("%dx%dx%d_pad%d", c.m, c.k, c.n, c.pad), func(t *testing.T) {
			if half {
				h := newHalfLinear(t, d, rng, c, c.k)
				n := candidateRun(t, o, name, choices, func(seq *vk.Sequence) error { return o.Linear(seq, h.x, h.w, h.b, h.y) })
				checkPieces(t, chunked, 2*c.m*(c.k+c.pad), n)
				h.check(t, "Linear fp16 "+name)
				return
			}
			l := newLinearOperands(t, d, rng, c, c.k, false)
			n := candidateRun(t, o, name, choices, func(seq *vk.Sequence) error { return o.Linear(seq, l.x, l.w, l.b, l.y) })
			checkPieces(t, chunked, 4*c.m*(c.k+c.pad), n)
			l.check(t, "Linear "+name)
		})
	}
}

func testCandidateAttention(t *testing.T, name string, half, chunked bool) {
	o, choices := candidateOps(t, name, half, chunked)
	d := o.Device()
	rng := rand.New(rand.NewPCG(63, 64))
	for _, c := range candidateAttnCases {
		t.Run(c.String(), func(t *testing.T) {
			f := newAttnFixture(t, d, rng, c, attnLayout{pad: 4, maskOff: 2, half: half})
			n := candidateRun(t, o, name, choices, func(seq *vk.Sequence) error { return o.Attention(seq, f.a, scratchFor(t, d)) })
			esize := map[bool]int{false: 4, true: 2}[half]
			checkPieces(t, chunked, esize*c.batch*c.nk[len(c.nk)-1]*(2*c.heads*c.dh+4), n)
			f.check(t, c)
		})
	}
}

// TestExplain checks the Explain methods at the README's shape: exactly
// one implementation chosen (the last one, the generic kernel, supports
// every call), every other with a reason, and the choice the same as
// what Linear and Attention record for such operands.
func TestExplain(t *testing.T) {
	o := testOps(t)
	for _, c := range []Choice{
		o.ExplainLinear(16384, 512, 1024, false),
		o.ExplainLinear(128, 512, 512, true),
		o.ExplainAttention(1, 128, []int{128, 16384}, 8, 64, false),
		o.ExplainAttention(1, 16384, []int{128}, 8, 64, true),
	} {
		t.Log(c)
		chosen := 0
		for _, cand := range c.Candidates {
			if cand.Chosen {
				chosen++
			} else if cand.Why == "" {
				t.Errorf("%s: %s has no reason", c.Op, cand.Name)
			}
		}
		if chosen != 1 || c.Chosen == "" || !strings.HasPrefix(c.Kernel, c.Chosen) {
			t.Errorf("%s: chosen %q (%q), %d marked", c.Op, c.Chosen, c.Kernel, chosen)
		}
	}
	// Forcing the generic kernel leaves the others untried.
	g := testOps(t, forceImpl("matmul"))
	c := g.ExplainLinear(33, 7, 5, false)
	if c.Chosen != "matmul" || c.Kernel != "matmul" {
		t.Errorf("forced matmul: %v", c)
	}
	// What Linear records is what ExplainLinear says.
	var got Choice
	r := testOps(t, OnChoice(func(ch Choice) { got = ch }))
	d := r.Device()
	x := Dense(newBuf(t, d, 7*64), 0, 7, 64)
	w := Dense(newBuf(t, d, 36*64), 0, 36, 64)
	y := Dense(newBuf(t, d, 7*36), 0, 7, 36)
	run(t, d, func(seq *vk.Sequence) error { return r.Linear(seq, x, w, nil, y) })
	recorded := got
	if want := r.ExplainLinear(7, 64, 36, false); recorded.Chosen != want.Chosen || recorded.Kernel != want.Kernel {
		t.Errorf("Linear chose %s (%s), ExplainLinear says %s (%s)", recorded.Chosen, recorded.Kernel, want.Chosen, want.Kernel)
	}
	if got.Op != recorded.Op || len(got.Candidates) != len(recorded.Candidates) || got.Candidates[len(got.Candidates)-1] != recorded.Candidates[len(got.Candidates)-1] {
		t.Errorf("ExplainLinear reported its choice to OnChoice: %v", got)
	}
}
