package shadergen

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// TrixieScript is scripts/trixie.sh relative to shaders/: it runs Debian
// 13's glslc and spirv-val (fetching them on first use unless offline),
// which the cooperative-matrix sources need, as Debian 12's glslang 11.13
// does not know GL_KHR_cooperative_matrix.
const TrixieScript = "../scripts/trixie.sh"

// Tools runs the compiler and validator for a variant, from shaders/.
type Tools struct {
	// Offline passes --offline to scripts/trixie.sh, so nothing is
	// fetched: a variant that needs Debian 13's tools fails with
	// ErrNoTrixie until they are there (the tests skip on it).
	Offline bool
}

// ErrNoTrixie says that Debian 13's tools are not fetched (offline) or could
// not be fetched.
var ErrNoTrixie = errors.New("Debian 13's glslc and spirv-val (scripts/trixie.sh) are not there: run scripts/trixie.sh dir, or make shaders")

// command returns the command that runs tool (glslc or spirv-val) for v.
func (t Tools) command(v Variant, tool string, args ...string) (*exec.Cmd, error) {
	if !v.Trixie {
		return exec.Command(tool, args...), nil
	}
	pre := []string{}
	if t.Offline {
		pre = append(pre, "--offline")
	}
	if err := exec.Command(TrixieScript, append(pre, "dir")...).Run(); err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNoTrixie, err)
	}
	return exec.Command(TrixieScript, append(append(pre, tool), args...)...), nil
}

// CommandLine is the command that Compile runs for v in dir, as text.
func (t Tools) CommandLine(dir string, v Variant) string {
	glslc := "glslc"
	if v.Trixie {
		glslc = TrixieScript + " glslc"
	}
	line := glslc + " " + strings.Join(v.Args(v.Name+".spv"), " ")
	if dir == "." {
		return line
	}
	return fmt.Sprintf("(cd %s && %s)", dir, line)
}

// Compile compiles v, whose source is in dir, into the file out (an
// absolute path, or one relative to dir) and returns its SPIR-V.
func (t Tools) Compile(dir string, v Variant, out string) ([]byte, error) {
	cmd, err := t.command(v, "glslc", v.Args(out)...)
	if err != nil {
		return nil, fmt.Errorf("shadergen: %s: %w", v.Name, err)
	}
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("shadergen: glslc %s in %s: %w\n%s", strings.Join(v.Args(out), " "), dir, err, msg)
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(dir, out)
	}
	code, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("shadergen: %w", err)
	}
	return code, nil
}

// ErrNoValidator says that spirv-val is not on the PATH.
var ErrNoValidator = errors.New("spirv-val not found")

// Validate runs spirv-val on the SPIR-V file path of v: Debian 13's for
// the cooperative-matrix variants, else the one on the PATH
// (ErrNoValidator without it).
func (t Tools) Validate(v Variant, path string) error {
	if !v.Trixie {
		if _, err := exec.LookPath("spirv-val"); err != nil {
			return ErrNoValidator
		}
	}
	args := append(append([]string{}, ValArgs...), path)
	cmd, err := t.command(v, "spirv-val", args...)
	if err != nil {
		return fmt.Errorf("shadergen: %s: %w", v.Name, err)
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("shadergen: spirv-val %s: %w\n%s", path, err, bytes.TrimSpace(msg))
	}
	return nil
}
