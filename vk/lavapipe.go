package vk

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"

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

// The environment variables of Mesa's shader disk cache.
const (
	mesaCacheDirEnv     = "MESA_SHADER_CACHE_DIR"
	mesaCacheDisableEnv = "MESA_SHADER_CACHE_DISABLE"
)

// separateLavapipeCache gives lavapipe a shader cache of its own for the
// vector width in LavapipeVectorEnv, when that is set and the process has
// not chosen a cache directory (or turned the cache off): Mesa's disk cache
// does not key its entries on the width, so code compiled for 8 lanes by one
// process was run by another with 16 (and the other way round), which gave
// wrong results and crashes inside compiled shaders on Mesa 25.0 and 26.1
// (Mesa 22.3 mixed them up too, costing speed). The directory is
// <user cache dir>/isab-vk/lavapipe-lp<width>, inside which Mesa makes its
// usual mesa_shader_cache folder; other Mesa drivers in the process (radv,
// anv) cache there too, which costs them nothing but a first compile. It
// creates <user cache dir>/isab-vk when missing. Like
// LavapipeVectorEnv it must be set before the loader opens a driver. It
// reports whether it set the variable.
func separateLavapipeCache() bool {
	width, ok := os.LookupEnv(LavapipeVectorEnv)
	if !ok || width == "" || strings.ContainsAny(width, `/\`) {
		return false
	}
	if _, set := os.LookupEnv(mesaCacheDirEnv); set {
		return false
	}
	if _, set := os.LookupEnv(mesaCacheDisableEnv); set {
		return false
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return false
	}
	dir := filepath.Join(base, "isab-vk", "lavapipe-lp"+width)
	// Mesa creates only the last element of the path; without its parent
	// it turns the cache off.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return false
	}
	return os.Setenv(mesaCacheDirEnv, dir) == nil
}
