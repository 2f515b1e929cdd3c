package ops

import (
	"fmt"
	"testing"

	"github.com/isab-vk/isab-vk/vk"
)

// BenchmarkLinearTex times linearTexel (matmul_tex.comp, x and w read as
// texel buffers) on the shapes of BenchmarkLinearISAB, with bias, with the
// CPU configurations whatever the device.
func BenchmarkLinearTex(b *testing.B) {
	for _, s := range []struct{ m, n, k int }{{16384, 1024, 512}, {16384, 512, 512}, {128, 512, 512}, {128, 1024, 512}} {
		b.Run(fmt.Sprintf("%dx%dx%d", s.m, s.n, s.k), func(b *testing.B) {
			o := linTexOps(b)
			d := o.Device()
			x := Dense(newBuf(b, d, s.m*s.k), 0, s.m, s.k)
			w := Dense(newBuf(b, d, s.n*s.k), 0, s.n, s.k)
			bias := Dense(newBuf(b, d, s.n), 0, 1, s.n)
			y := Dense(newBuf(b, d, s.m*s.n), 0, s.m, s.n)
			benchRun(b, d, 2*float64(s.m*s.n*s.k), func(seq *vk.Sequence) error {
				handled, err := o.linearTexel(seq, x, w, &bias, y)
				if err == nil && !handled {
					err = fmt.Errorf("linearTexel declined %dx%dx%d", s.m, s.n, s.k)
				}
				return err
			})
		})
	}
}
