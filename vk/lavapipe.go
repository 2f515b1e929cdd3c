package vk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/cpu"
)

// ErrLoaderStarted is matched (errors.Is) by UseLavapipeDefaults' error when
// the Vulkan loader was already started in this process.
var ErrLoaderStarted = errors.New("vk: the Vulkan loader has already started")

// lavapipeMu guards lavapipeApplied and loaderStarted, so that
// UseLavapipeDefaults and the loader's start happen in one order.
var (
	lavapipeMu      sync.Mutex
	lavapipeApplied bool // UseLavapipeDefaults ran before the loader started
	loaderStarted   bool // load has begun: drivers may have read their settings
)

// UseLavapipeDefaults chooses, for this process, the settings of Mesa's
// lavapipe (the CPU Vulkan driver) that isab-vk's CPU kernels are tuned
// and tested with. It is policy, not mechanism, so the vk package applies
// it only when asked: the isab command and the project's tests call it
// first thing; a program that embeds vk calls it, or not, as it likes.
//
//   - LavapipeVectorEnv (LP_NATIVE_VECTOR_WIDTH) becomes 512 when it is
//     unset and the CPU is an amd64 with AVX-512 F and VL: lavapipe then
//     runs 16 lanes instead of Mesa's default 8 (and reports subgroups of
//     16), about 1.3 to 1.5 times faster for isab-vk's kernels.
//   - MESA_SHADER_CACHE_DIR becomes a directory per vector width under
//     the user cache directory (<cache>/isab-vk/lavapipe-lp<width>) when
//     the width is set (by this call or by the caller) and the cache is
//     neither placed nor turned off: Mesa's disk cache does not key its
//     entries on the width, and code compiled for one width and run at
//     another gave wrong results and crashes (Mesa 25.0, 26.1).
//
// Variables the process has set are kept. Both settings are read by the
// driver once, when the Vulkan loader first loads it, and they change the
// environment of the whole process; so UseLavapipeDefaults must be called
// before the first Open, Devices or OpenPresenter. Called later, it
// changes nothing and returns an error wrapping ErrLoaderStarted, unless
// an earlier call already applied the defaults (calling it again is
// harmless).
func UseLavapipeDefaults() error {
	lavapipeMu.Lock()
	defer lavapipeMu.Unlock()
	if lavapipeApplied {
		return nil
	}
	if loaderStarted {
		return fmt.Errorf("vk: UseLavapipeDefaults after the first Open, Devices or OpenPresenter: lavapipe reads %s and %s only when it is loaded, so call it first (in main or TestMain): %w",
			LavapipeVectorEnv, mesaCacheDirEnv, ErrLoaderStarted)
	}
	preferWideLavapipe()
	separateLavapipeCache()
	lavapipeApplied = true
	return nil
}

// markLoaderStarted records that the loader is starting, after which
// UseLavapipeDefaults is too late.
func markLoaderStarted() {
	lavapipeMu.Lock()
	loaderStarted = true
	lavapipeMu.Unlock()
}

// LavapipeVectorEnv is the environment variable through which llvmpipe, the
// code generator behind Mesa's lavapipe, takes its SIMD width in bits (its
// default is 256 on x86-64, even on CPUs with AVX-512).
const LavapipeVectorEnv = "LP_NATIVE_VECTOR_WIDTH"

// preferWideLavapipe sets LavapipeVectorEnv to 512 when it is unset and the
// CPU has AVX-512 (F and VL); UseLavapipeDefaults calls it before the
// Vulkan loader opens any driver:
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
