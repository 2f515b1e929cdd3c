package vk

import (
	"os"
	"runtime"

	"golang.org/x/sys/cpu"
)

// LavapipeVectorEnv is the environment variable through which llvmpipe, the
// code generator behind Mesa's lavapipe, takes its SIMD width in bits (its
// default is 256 on x86-64, even on CPUs with AVX-512).
const LavapipeVectorEnv = "LP_NATIVE_VECTOR_WIDTH"

// preferWideLavapipe sets LavapipeVectorEnv to 512 when it is unset and the
// CPU has AVX-512 (F and VL), before the Vulkan loader opens any driver:
// llvmpipe reads the variable once, when it first initialises. With 16
// lanes instead of 8, lavapipe reports a subgroup size of 16 and the
// CPU kernels do about the same work per texel fetch on twice the lanes: on
// 2 Zen 5 cores the ISAB projections ran at 94 GFLOP/s against 71 (see
// ops.linTexConfig). The variable reaches only llvmpipe; a process that sets
// it itself (256 keeps llvmpipe's default) keeps its value. It reports
// whether it set the variable.
func preferWideLavapipe() bool {
	if runtime.GOARCH != "amd64" {
		return false
	}
	if _, set := os.LookupEnv(LavapipeVectorEnv); set {
		return false
	}
	if !cpu.X86.HasAVX512F || !cpu.X86.HasAVX512VL {
		return false
	}
	return os.Setenv(LavapipeVectorEnv, "512") == nil
}
