package shaders

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// glslcArgs is the command line that builds X.spv from X.comp (a variant's
// flags, then "-o", the output path and the source follow); build.sh and
// README.md use the same.
var glslcArgs = []string{"--target-env=vulkan1.1", "-O"}

// variant is one SPIR-V output of a source: name.spv built with the extra
// glslc flags; trixie says that Debian 13's glslc and spirv-val build and
// check it (the source has a "// compiler: GL_KHR_cooperative_matrix"
// line, see build.sh).
type variant struct {
	name   string
	flags  []string
	trixie bool
}

// trixieTools is scripts/trixie.sh, which runs Debian 13's glslc and
// spirv-val once fetched; the tests never fetch them (--offline).
const trixieTools = "../scripts/trixie.sh"

// trixieCommand returns the command that runs tool (glslc or spirv-val)
// from scripts/trixie.sh, or skips t when the tools have not been fetched.
func trixieCommand(t *testing.T, tool string, args ...string) *exec.Cmd {
	t.Helper()
	if err := exec.Command(trixieTools, "--offline", "dir").Run(); err != nil {
		t.Skipf("Debian 13's %s is needed for GL_KHR_cooperative_matrix and is not fetched (run scripts/trixie.sh dir, or make shaders): %v", tool, err)
	}
	return exec.Command(trixieTools, append([]string{"--offline", tool}, args...)...)
}

// variants lists the outputs of the source src: X.spv, and X_f16.spv built
// with -DF16 when a line of src starts with "// variants: f16" (as build.sh
// decides).
func variants(t *testing.T, src string) []variant {
	t.Helper()
	text, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimSuffix(src, ".comp")
	lines := "\n" + string(text)
	trixie := strings.Contains(lines, "\n// compiler: GL_KHR_cooperative_matrix")
	vs := []variant{{name: name, trixie: trixie}}
	if strings.Contains(lines, "\n// variants: f16") {
		vs = append(vs, variant{name: name + "_f16", flags: []string{"-DF16"}, trixie: trixie})
	}
	return vs
}

func sources(t *testing.T) []string {
	t.Helper()
	srcs, err := filepath.Glob("*.comp")
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) == 0 {
		t.Fatal("no *.comp files found")
	}
	return srcs
}

// TestSPIRVUpToDate compiles every .comp and fails when the committed .spv
// is missing or differs from what the source compiles to.
func TestSPIRVUpToDate(t *testing.T) {
	glslc, err := exec.LookPath("glslc")
	if err != nil {
		t.Skip("glslc not found: cannot check that the .spv files match their sources: ", err)
	}
	dir := t.TempDir()
	for _, src := range sources(t) {
		for _, v := range variants(t, src) {
			checkVariant(t, glslc, dir, src, v)
		}
	}
}

// checkVariant compiles one variant of src into dir and compares it with the
// committed and the embedded .spv.
func checkVariant(t *testing.T, glslc, dir, src string, v variant) {
	name := v.name
	t.Run(name, func(t *testing.T) {
		out := filepath.Join(dir, name+".spv")
		args := append(append(append([]string{}, glslcArgs...), v.flags...), "-o", out, src)
		cmd := exec.Command(glslc, args...)
		if v.trixie {
			cmd = trixieCommand(t, "glslc", args...)
		}
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("glslc %s: %v\n%s", strings.Join(args, " "), err, msg)
		}
		want, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name + ".spv")
		if err != nil {
			t.Fatalf("%s.spv missing: run shaders/build.sh (%v)", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s.spv differs from what %s compiles to: run shaders/build.sh", name, src)
		}
		emb, err := SPIRV(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(emb, want) {
			t.Errorf("embedded %s.spv differs from what %s compiles to", name, src)
		}
	})
}

// TestSPIRVValid runs spirv-val on every embedded shader.
func TestSPIRVValid(t *testing.T) {
	val, err := exec.LookPath("spirv-val")
	if err != nil {
		t.Skip("spirv-val not found: cannot validate the SPIR-V: ", err)
	}
	dir := t.TempDir()
	trixie := map[string]bool{}
	for _, src := range sources(t) {
		for _, v := range variants(t, src) {
			trixie[v.name] = v.trixie
		}
	}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			code, err := SPIRV(name)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, name+".spv")
			if err := os.WriteFile(path, code, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(val, "--target-env", "vulkan1.1", path)
			if trixie[name] {
				cmd = trixieCommand(t, "spirv-val", "--target-env", "vulkan1.1", path)
			}
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("spirv-val %s.spv: %v\n%s", name, err, msg)
			}
		})
	}
}

// TestNames checks that every source has an embedded shader and the lookup
// of an unknown name fails with the known names.
func TestNames(t *testing.T) {
	names := Names()
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	for _, src := range sources(t) {
		for _, v := range variants(t, src) {
			if !have[v.name] {
				t.Errorf("%s has no embedded %s.spv", src, v.name)
			}
		}
	}
	for _, n := range []string{"matmul_f16", "attention_f16", "attn_combine_f16", "convert"} {
		if !have[n] {
			t.Errorf("no embedded %s.spv (the fp16 path needs it)", n)
		}
	}
	_, err := SPIRV("no-such-shader")
	if err == nil || !strings.Contains(err.Error(), "matmul") {
		t.Errorf("SPIRV(unknown) error = %v, want one listing the known names", err)
	}
}
