// Package testutil holds what the project's tests share: finding the golden
// fixtures of ../shared/golden and opening a device under the validation
// layer.
package testutil

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/isab-vk/isab-vk/vk"
)

// ModuleRoot returns the folder holding go.mod, searching up from the
// working directory.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above %s", wd)
		}
		dir = parent
	}
}

// GoldenDir returns the shared golden fixture folder: $ISAB_GOLDEN when set,
// else shared/golden beside the module root. It skips the test, saying so,
// when the folder is absent.
func GoldenDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("ISAB_GOLDEN"); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("ISAB_GOLDEN=%s: %v", dir, err)
		}
		return dir
	}
	golden := filepath.Join(ModuleRoot(t), "..", "shared", "golden")
	if fi, err := os.Stat(golden); err != nil || !fi.IsDir() {
		t.Skip("../shared/golden not present: golden tests skipped")
	}
	return golden
}

// Testdata returns the path of a file in the module's testdata folder.
func Testdata(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(ModuleRoot(t), "testdata", name)
}

// SpecMinimumEnv names the environment variable that, set to 1, makes the
// tests' devices report the Vulkan specification's minimum limits
// (vk.Options.SpecMinimum): make test runs the ops suite that way.
const SpecMinimumEnv = "ISAB_SPEC_MINIMUM"

// Options returns the vk.Options of the tests' devices: the validation
// layer on unless ISAB_VALIDATION=0, and the spec's minimum limits when
// ISAB_SPEC_MINIMUM=1.
func Options() vk.Options {
	return vk.Options{
		Validation:  os.Getenv("ISAB_VALIDATION") != "0",
		SpecMinimum: os.Getenv(SpecMinimumEnv) == "1",
	}
}

// LavapipeDefaults turns on vk.UseLavapipeDefaults, the lavapipe settings
// that the project's kernels are tuned and tested with (512-bit vectors on
// AVX-512 CPUs, a shader cache per vector width), as the isab command does,
// so that tests exercise what users run. Main, Device and Devices call it;
// a package whose tests open devices otherwise calls it (or Main) from
// TestMain, before any device is opened. It fails the test when called
// too late, after a device was opened without it.
func LavapipeDefaults(t testing.TB) {
	t.Helper()
	if err := vk.UseLavapipeDefaults(); err != nil {
		t.Fatal(err)
	}
}

// Device opens the default device (ISAB_DEVICE selects another) with the
// Khronos validation layer on, and closes it when the test ends, failing the
// test on any validation message. It skips the test when no Vulkan driver or
// device is present, and fails it when the validation layer is missing
// unless ISAB_VALIDATION=0. It turns on LavapipeDefaults.
func Device(t testing.TB) *vk.Device {
	t.Helper()
	LavapipeDefaults(t)
	d, err := vk.Open(Options())
	if err != nil {
		if errors.Is(err, vk.ErrNoVulkan) {
			t.Skipf("no Vulkan device: %v", err)
		}
		t.Fatalf("opening a device: %v", err)
	}
	vk.ValidationMessages()
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("closing the device: %v", err)
		}
		for _, m := range vk.ValidationMessages() {
			t.Errorf("validation layer: %s", m)
		}
	})
	return d
}

// Devices opens every Vulkan device the loader reports, as Device opens
// one (validation layer on unless ISAB_VALIDATION=0, every device closed
// and validation messages checked when the test ends), in the order of
// vk.Devices. It skips the test, naming the devices present, when there
// are fewer than min (scripts/swiftshader.sh both gives two: lavapipe and
// SwiftShader). It turns on LavapipeDefaults.
func Devices(t testing.TB, min int) []*vk.Device {
	t.Helper()
	LavapipeDefaults(t)
	infos, err := vk.Devices()
	if err != nil {
		if errors.Is(err, vk.ErrNoVulkan) {
			t.Skipf("no Vulkan device: %v", err)
		}
		t.Fatalf("listing devices: %v", err)
	}
	if len(infos) < min {
		var names []string
		for _, in := range infos {
			names = append(names, in.Name)
		}
		t.Skipf("needs %d Vulkan devices, found %d (%q); run it under scripts/swiftshader.sh both for lavapipe and SwiftShader together", min, len(infos), names)
	}
	validation := os.Getenv("ISAB_VALIDATION") != "0"
	devs := make([]*vk.Device, 0, len(infos))
	t.Cleanup(func() {
		for _, d := range devs {
			if err := d.Close(); err != nil {
				t.Errorf("closing %s: %v", d.Info().Name, err)
			}
		}
		for _, m := range vk.ValidationMessages() {
			t.Errorf("validation layer: %s", m)
		}
	})
	for _, in := range infos {
		d, err := vk.Open(vk.Options{Device: strconv.Itoa(in.Index), Validation: validation})
		if err != nil {
			t.Fatalf("opening device %d (%s): %v", in.Index, in.Name, err)
		}
		devs = append(devs, d)
	}
	vk.ValidationMessages()
	return devs
}

// CheckValidation fails the test on any validation message reported so far.
func CheckValidation(t testing.TB) {
	t.Helper()
	for _, m := range vk.ValidationMessages() {
		t.Errorf("validation layer: %s", m)
	}
}

// Main runs a package's tests (call it from TestMain), with
// vk.UseLavapipeDefaults turned on first (see LavapipeDefaults). Example
// functions cannot skip, so on a machine without a usable Vulkan
// (vk.ErrNoVulkan) it leaves them out, saying so, unless -run was given;
// the tests themselves skip through Device.
func Main(m *testing.M) {
	flag.Parse()
	if err := vk.UseLavapipeDefaults(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if d, err := vk.Open(vk.Options{}); err != nil {
		if errors.Is(err, vk.ErrNoVulkan) && flag.Lookup("test.run").Value.String() == "" {
			fmt.Fprintf(os.Stderr, "no Vulkan device: the Example functions are skipped: %v\n", err)
			if err := flag.Set("test.run", "^(Test|Fuzz)"); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
		}
	} else if err := d.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
