package ops

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/isab-vk/isab-vk/vk"
)

// BenchmarkAttentionTexISAB times BenchmarkAttentionISAB's two attentions
// (128 latent queries against 128 + 16384 keys, and 16384 queries against
// 128 keys, 8 heads of 64) on attention_tex.comp with 2, 4 and 8 queries per
// invocation, and with attention_tex.comp switched off ("cpu": whatever
// Attention picks without it, attention_cpu.comp on CPU devices). Unlike
// BenchmarkAttentionISAB it fills the operands with normal random numbers
// and keeps about 3 in 4 keys of the masked sources, so the running maxima
// change as they would on real data.
func BenchmarkAttentionTexISAB(b *testing.B) {
	shapes := []struct {
		name     string
		nq       int
		sharedQ  bool
		nk       []int
		sharedKV []bool
	}{
		{"latents_128x16512", 128, true, []int{128, 16384}, []bool{true, false}},
		{"inputs_16384x128", 16384, false, []int{128}, []bool{false}},
	}
	for _, s := range shapes {
		for _, qt := range []int{0, 2, 4, 8} {
			name := fmt.Sprintf("%s/tex_qt%d", s.name, qt)
			if qt == 0 {
				name = s.name + "/cpu"
			}
			b.Run(name, func(b *testing.B) {
				opt := turnOff("attention_tex")
				if qt > 0 {
					opt = withTuning(func(tu *tuning) { tu.attnTex.QT, tu.attnTex.QTWide = qt, qt })
				}
				benchAttentionRand(b, s.nq, s.sharedQ, s.nk, s.sharedKV, opt)
			})
		}
	}
}

// benchAttentionRand is benchAttention (batch 1, 8 heads of 64, the
// sources that are not shared masked) on random data.
func benchAttentionRand(b *testing.B, nq int, sharedQ bool, nk []int, sharedKV []bool, opts ...Option) {
	o := testOps(b, opts...)
	d := o.Device()
	rng := rand.New(rand.NewPCG(51, 52))
	randBuf := func(n int) *vk.Buffer {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return upload(b, d, x)
	}
	const heads, dh = 8, 64
	hd := heads * dh
	a := AttnArgs{Q: Dense(randBuf(nq*hd), 0, nq, hd), Batch: 1, NQ: nq, Heads: heads, DimHead: dh, Scale: 0.125,
		Out: Dense(newBuf(b, d, nq*hd), 0, nq, hd)}
	total := 0
	for i, n := range nk {
		s := KVSource{KV: Dense(randBuf(n*2*hd), 0, n, 2*hd), VOff: hd, NK: n}
		if !sharedKV[i] {
			s.BatchStride = n * 2 * hd
			_, mask := randMask(rng, 1, n)
			s.Mask = upload(b, d, mask)
		}
		a.Sources = append(a.Sources, s)
		total += n
	}
	if !sharedQ {
		a.QBatchStride = nq * hd
	}
	benchRun(b, d, 4*float64(nq*total*hd), func(seq *vk.Sequence) error { return o.Attention(seq, a, scratchFor(b, d)) })
}
