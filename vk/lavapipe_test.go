package vk

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/cpu"
)

// TestPreferWideLavapipe checks the rule for LavapipeVectorEnv: a value the
// process set is kept, and an unset variable becomes 512 exactly on amd64
// CPUs with AVX-512 F and VL.
func TestPreferWideLavapipe(t *testing.T) {
	setEnvForTest(t, LavapipeVectorEnv, "256", false)
	if preferWideLavapipe() || os.Getenv(LavapipeVectorEnv) != "256" {
		t.Errorf("a set %s was changed to %q", LavapipeVectorEnv, os.Getenv(LavapipeVectorEnv))
	}

	os.Unsetenv(LavapipeVectorEnv)
	want := runtime.GOARCH == "amd64" && cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL
	if got := preferWideLavapipe(); got != want {
		t.Errorf("preferWideLavapipe() = %v on this CPU, want %v", got, want)
	}
	if v, set := os.LookupEnv(LavapipeVectorEnv); set != want || (want && v != "512") {
		t.Errorf("%s = %q (set %v), want 512 set %v", LavapipeVectorEnv, v, set, want)
	}
}

// TestLavapipeWidth checks that lavapipe took the width: its subgroup size
// is the width over 32 (its device name also says the width in bits).
func TestLavapipeWidth(t *testing.T) {
	d := openTest(t)
	in := d.Info()
	if in.Type != DeviceCPU || !strings.Contains(in.Name, "llvmpipe") {
		t.Skipf("device %q is not lavapipe", in.Name)
	}
	width := os.Getenv(LavapipeVectorEnv)
	if width == "" {
		width = "256"
	}
	if !strings.Contains(in.Name, width+" bits") {
		t.Errorf("device %q with %s=%s", in.Name, LavapipeVectorEnv, os.Getenv(LavapipeVectorEnv))
	}
	want := map[string]uint32{"128": 4, "256": 8, "512": 16}[width]
	if want != 0 && in.SubgroupSize != want {
		t.Errorf("subgroup size %d with %s bits, want %d", in.SubgroupSize, width, want)
	}
}

// setEnvForTest sets (or with unset, removes) the variable for the rest of
// the test.
func setEnvForTest(t *testing.T, name, value string, unset bool) {
	old, had := os.LookupEnv(name)
	t.Cleanup(func() {
		if had {
			os.Setenv(name, old)
		} else {
			os.Unsetenv(name)
		}
	})
	if unset {
		os.Unsetenv(name)
	} else {
		os.Setenv(name, value)
	}
}

// TestSeparateLavapipeCache checks the rule for the shader cache directory:
// set per width when a width is set and the cache is neither placed nor
// turned off by the process.
func TestSeparateLavapipeCache(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // os.UserCacheDir's answer on Linux
	setEnvForTest(t, LavapipeVectorEnv, "", true)
	setEnvForTest(t, mesaCacheDirEnv, "", true)
	setEnvForTest(t, mesaCacheDisableEnv, "", true)
	if separateLavapipeCache() {
		t.Errorf("no width set, but %s became %q", mesaCacheDirEnv, os.Getenv(mesaCacheDirEnv))
	}
	os.Setenv(LavapipeVectorEnv, "512")
	if !separateLavapipeCache() {
		t.Fatal("width 512 set, cache directory not set")
	}
	base, _ := os.UserCacheDir()
	if got, want := os.Getenv(mesaCacheDirEnv), base+"/isab-vk/lavapipe-lp512"; runtime.GOOS == "linux" && got != want {
		t.Errorf("%s = %q, want %q", mesaCacheDirEnv, got, want)
	}
	os.Setenv(mesaCacheDirEnv, "/mine")
	if separateLavapipeCache() || os.Getenv(mesaCacheDirEnv) != "/mine" {
		t.Errorf("a set %s was changed to %q", mesaCacheDirEnv, os.Getenv(mesaCacheDirEnv))
	}
	os.Unsetenv(mesaCacheDirEnv)
	os.Setenv(mesaCacheDisableEnv, "true")
	if separateLavapipeCache() {
		t.Errorf("cache disabled, but %s became %q", mesaCacheDirEnv, os.Getenv(mesaCacheDirEnv))
	}
	os.Unsetenv(mesaCacheDisableEnv)
	os.Setenv(LavapipeVectorEnv, "../x")
	if separateLavapipeCache() {
		t.Errorf("width %q made directory %q", "../x", os.Getenv(mesaCacheDirEnv))
	}
}

// TestUseLavapipeDefaults checks the rule for UseLavapipeDefaults: it
// applies the defaults before the loader starts, is harmless to repeat,
// and fails, changing nothing, once the loader has started without them.
// (This test binary's TestMain applied them before any device was opened.)
func TestUseLavapipeDefaults(t *testing.T) {
	lavapipeMu.Lock()
	applied, started := lavapipeApplied, loaderStarted
	lavapipeMu.Unlock()
	t.Cleanup(func() {
		lavapipeMu.Lock()
		lavapipeApplied, loaderStarted = applied, started
		lavapipeMu.Unlock()
	})
	setState := func(a, s bool) {
		lavapipeMu.Lock()
		lavapipeApplied, loaderStarted = a, s
		lavapipeMu.Unlock()
	}
	setEnvForTest(t, LavapipeVectorEnv, "256", false)
	setEnvForTest(t, mesaCacheDirEnv, "/mine", false)

	setState(false, true)
	err := UseLavapipeDefaults()
	if !errors.Is(err, ErrLoaderStarted) || !strings.Contains(err.Error(), LavapipeVectorEnv) {
		t.Errorf("after the loader started: %v, want an error naming %s and wrapping ErrLoaderStarted", err, LavapipeVectorEnv)
	}
	setState(true, true)
	if err := UseLavapipeDefaults(); err != nil {
		t.Errorf("again after applying: %v", err)
	}
	setState(false, false)
	if err := UseLavapipeDefaults(); err != nil {
		t.Errorf("before the loader started: %v", err)
	}
	lavapipeMu.Lock()
	ok := lavapipeApplied
	lavapipeMu.Unlock()
	if !ok {
		t.Error("the defaults were not recorded as applied")
	}
	if os.Getenv(LavapipeVectorEnv) != "256" || os.Getenv(mesaCacheDirEnv) != "/mine" {
		t.Errorf("variables the process set were changed: %s=%q %s=%q", LavapipeVectorEnv, os.Getenv(LavapipeVectorEnv), mesaCacheDirEnv, os.Getenv(mesaCacheDirEnv))
	}
}
