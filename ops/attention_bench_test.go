package ops

import "testing"

// BenchmarkAttentionISAB times the two attentions of the README's ISAB
// shape (b=1, n=16384, 8 heads of 64, 128 latents, latent_self_attend):
// 128 latent queries against concat(latents, x) of 128 + 16384 keys, and
// 16384 queries against the 128 latents' keys.
func BenchmarkAttentionISAB(b *testing.B) { benchAttentionISAB(b) }

func benchAttentionISAB(b *testing.B, opts ...Option) {
	b.Run("latents_128x16512", func(b *testing.B) {
		benchAttention(b, 128, true, []int{128, 16384}, []bool{true, false}, opts...)
	})
	b.Run("inputs_16384x128", func(b *testing.B) {
		benchAttention(b, 16384, false, []int{128}, []bool{false}, opts...)
	})
}

// BenchmarkAttentionISABCPU is BenchmarkAttentionISAB on attention_cpu.comp
// (attention_tex.comp turned off), in its default configuration: 8-float
// loads, unshared, rows touched ahead on lavapipe.
func BenchmarkAttentionISABCPU(b *testing.B) {
	benchAttentionISAB(b, turnOff("attention_tex"))
}
