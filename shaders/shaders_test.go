package shaders

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/isab-vk/isab-vk/shaders/internal/shadergen"
)

// dirVariants returns the variants that the sources of d declare.
func dirVariants(t *testing.T, d shadergen.Dir) []shadergen.Variant {
	t.Helper()
	vs, err := shadergen.Variants(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// embedded returns the variants of the embedded kernels (shaders/).
func embedded(t *testing.T) []shadergen.Variant {
	t.Helper()
	return dirVariants(t, shadergen.Dirs[0])
}

// TestSPIRVUpToDate compiles every variant of every source in
// shadergen.Dirs (this package's, vk/testdata's, view/shaders') and fails
// when a committed .spv is missing or differs from what its source compiles
// to. The cooperative-matrix sources are skipped, saying so, until Debian
// 13's glslc is fetched (scripts/trixie.sh).
func TestSPIRVUpToDate(t *testing.T) {
	if _, err := exec.LookPath("glslc"); err != nil {
		t.Skip("glslc not found: cannot check that the .spv files match their sources: ", err)
	}
	tools := shadergen.Tools{Offline: true}
	tmp := t.TempDir()
	for i, d := range shadergen.Dirs {
		for _, v := range dirVariants(t, d) {
			t.Run(filepath.Join(d.Path, v.Name), func(t *testing.T) {
				out := filepath.Join(tmp, filepath.Base(d.Path)+"-"+v.Name+".spv")
				want, err := tools.Compile(d.Path, v, out)
				if errors.Is(err, shadergen.ErrNoTrixie) {
					t.Skipf("%s needs GL_KHR_cooperative_matrix: %v", v.Source, err)
				}
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(filepath.Join(d.Path, v.Name+".spv"))
				if err != nil {
					t.Fatalf("%s.spv missing: run go generate ./shaders (%v)", v.Name, err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s.spv differs from what %s compiles to: run go generate ./shaders", v.Name, v.Source)
				}
				if i != 0 {
					return
				}
				emb, err := SPIRV(v.Name)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(emb, want) {
					t.Errorf("embedded %s.spv differs from what %s compiles to", v.Name, v.Source)
				}
			})
		}
	}
}

// TestKernelsUpToDate fails when kernels.go is not what the generator
// writes for the sources' variants.
func TestKernelsUpToDate(t *testing.T) {
	d := shadergen.Dirs[0]
	want, err := shadergen.GoNames(d.Package, embedded(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(d.Names)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what the sources declare: run go generate ./shaders", d.Names)
	}
}

// TestSPIRVValid runs spirv-val on every embedded shader (Debian 13's for
// the cooperative-matrix ones).
func TestSPIRVValid(t *testing.T) {
	if _, err := exec.LookPath("spirv-val"); err != nil {
		t.Skip("spirv-val not found: cannot validate the SPIR-V: ", err)
	}
	tools := shadergen.Tools{Offline: true}
	dir := t.TempDir()
	for _, v := range embedded(t) {
		t.Run(v.Name, func(t *testing.T) {
			code, err := SPIRV(v.Name)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, v.Name+".spv")
			if err := os.WriteFile(path, code, 0o644); err != nil {
				t.Fatal(err)
			}
			err = tools.Validate(v, path)
			if errors.Is(err, shadergen.ErrNoTrixie) {
				t.Skipf("%s needs GL_KHR_cooperative_matrix: %v", v.Source, err)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
}

// TestNames checks that the embedded shaders are exactly the declared
// variants, that every Kernel constant finds its code, and that the lookup
// of an unknown name fails with the known names.
func TestNames(t *testing.T) {
	declared := map[string]bool{}
	for _, v := range embedded(t) {
		declared[v.Name] = true
	}
	have := map[string]bool{}
	for _, n := range Names() {
		have[n] = true
		if !declared[n] {
			t.Errorf("%s.spv is embedded but no source declares it: run go generate ./shaders", n)
		}
	}
	for n := range declared {
		if !have[n] {
			t.Errorf("no embedded %s.spv: run go generate ./shaders", n)
		}
	}
	for k := Kernel(1); int(k) < len(kernelNames); k++ {
		if _, err := k.SPIRV(); err != nil {
			t.Errorf("%v: %v", k, err)
		}
	}
	if AttentionF16.Name() != "attention_f16" || MatmulCPU.String() != "matmul_cpu" {
		t.Errorf("kernel names %q, %q", AttentionF16.Name(), MatmulCPU.String())
	}
	if _, err := Kernel(0).SPIRV(); err == nil {
		t.Error("Kernel(0).SPIRV() did not fail")
	}
	_, err := SPIRV("no-such-shader")
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("matmul")) {
		t.Errorf("SPIRV(unknown) error = %v, want one listing the known names", err)
	}
}
