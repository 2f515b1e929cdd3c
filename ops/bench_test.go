package ops

import (
	"context"
	"fmt"
	"testing"

	"github.com/isab-vk/isab-vk/vk"
)

// benchRun records once and times replays of the sequence, reporting
// GFLOP/s for flops floating-point operations per run.
func benchRun(b *testing.B, d *vk.Device, flops float64, rec func(seq *vk.Sequence) error) {
	seq := d.NewSequence()
	defer seq.Close()
	if err := rec(seq); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := seq.Run(ctx); err != nil { // records and warms up
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := seq.Run(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkLinear is to_kv of the isab-pytorch README's example:
// [1024, 512] x [1024, 512]^T.
func BenchmarkLinear(b *testing.B) {
	o := testOps(b)
	d := o.Device()
	m, k, n := 1024, 512, 1024
	x := Dense(newBuf(b, d, m*k), 0, m, k)
	w := Dense(newBuf(b, d, n*k), 0, n, k)
	y := Dense(newBuf(b, d, m*n), 0, m, n)
	benchRun(b, d, 2*float64(m*n*k), func(seq *vk.Sequence) error { return o.Linear(seq, x, w, nil, y) })
}

// BenchmarkLinearISAB times the ISAB shapes: the projections of 16 sets of
// 1024 elements of width 512 (to_kv's 1024 outputs, to_q's and to_out's
// 512), and the 128 latents' projections, with bias. On CPU devices that is
// matmul_tex.comp (BenchmarkLinearISABCPU: matmul_cpu.comp).
func BenchmarkLinearISAB(b *testing.B) { benchLinearISAB(b, testOps) }

// BenchmarkLinearISABCPU is BenchmarkLinearISAB on matmul_cpu.comp, the
// CPU kernel for operands that are not texel-aligned.
func BenchmarkLinearISABCPU(b *testing.B) {
	benchLinearISAB(b, linearCPUOps)
}

func benchLinearISAB(b *testing.B, newOps func(testing.TB, ...Option) *Ops) {
	for _, s := range []struct{ m, n, k int }{{16384, 1024, 512}, {16384, 512, 512}, {128, 512, 512}, {128, 1024, 512}} {
		b.Run(fmt.Sprintf("%dx%dx%d", s.m, s.n, s.k), func(b *testing.B) {
			o := newOps(b)
			d := o.Device()
			x := Dense(newBuf(b, d, s.m*s.k), 0, s.m, s.k)
			w := Dense(newBuf(b, d, s.n*s.k), 0, s.n, s.k)
			bias := Dense(newBuf(b, d, s.n), 0, 1, s.n)
			y := Dense(newBuf(b, d, s.m*s.n), 0, s.m, s.n)
			benchRun(b, d, 2*float64(s.m*s.n*s.k), func(seq *vk.Sequence) error { return o.Linear(seq, x, w, &bias, y) })
		})
	}
}

// BenchmarkSoftmax is a masked softmax over 8 heads x 128 x 1024 scores.
func BenchmarkSoftmax(b *testing.B) {
	o := testOps(b)
	d := o.Device()
	rows, cols := 8*128, 1024
	x := Dense(newBuf(b, d, rows*cols), 0, rows, cols)
	y := Dense(newBuf(b, d, rows*cols), 0, rows, cols)
	mask := upload(b, d, make([]uint32, cols))
	benchRun(b, d, 5*float64(rows*cols), func(seq *vk.Sequence) error { return o.Softmax(seq, x, y, 0.125, mask, 0, rows, 0) })
}

// benchAttention times one attention of the README's example shape
// (8 heads of 64): nq queries against the given sources' keys.
func benchAttention(b *testing.B, nq int, sharedQ bool, nk []int, sharedKV []bool, opts ...Option) {
	o := testOps(b, opts...)
	d := o.Device()
	const heads, dh = 8, 64
	hd := heads * dh
	a := AttnArgs{Q: Dense(newBuf(b, d, nq*hd), 0, nq, hd), Batch: 1, NQ: nq, Heads: heads, DimHead: dh, Scale: 0.125,
		Out: Dense(newBuf(b, d, nq*hd), 0, nq, hd)}
	total := 0
	for i, n := range nk {
		s := KVSource{KV: Dense(newBuf(b, d, n*2*hd), 0, n, 2*hd), VOff: hd, NK: n}
		if !sharedKV[i] {
			s.BatchStride = n * 2 * hd
			s.Mask = upload(b, d, make([]uint32, n))
		}
		a.Sources = append(a.Sources, s)
		total += n
	}
	if !sharedQ {
		a.QBatchStride = nq * hd
	}
	benchRun(b, d, 4*float64(nq*total*hd), func(seq *vk.Sequence) error { return o.Attention(seq, a, scratchFor(b, d)) })
}

// BenchmarkAttentionLatents is attn1 with latent_self_attend: 128 latent
// queries against concat(latents, x) of 128 + 1024 keys, x masked.
func BenchmarkAttentionLatents(b *testing.B) {
	benchAttention(b, 128, true, []int{128, 1024}, []bool{true, false})
}

// BenchmarkAttentionInputs is attn2: 1024 queries against 128 latents.
func BenchmarkAttentionInputs(b *testing.B) {
	benchAttention(b, 1024, false, []int{128}, []bool{false})
}
