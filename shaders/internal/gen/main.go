// Command gen builds the project's shaders: run from shaders/ by
// go generate ./shaders (or make shaders), it compiles every variant that
// each *.comp of shadergen.Dirs declares with glslc (Debian 13's from
// scripts/trixie.sh for the cooperative-matrix sources, fetched on first
// use), validates it with spirv-val where present, writes the .spv files
// that changed, removes those that no source makes any more, and writes
// shaders/kernels.go, the Go constants naming the embedded kernels.
//
// Usage (from shaders/):
//
//	go run ./internal/gen
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/isab-vk/isab-vk/shaders/internal/shadergen"
)

func main() {
	if _, err := os.Stat("embed.go"); err != nil {
		fail(fmt.Errorf("gen: run from shaders/ (go generate ./shaders): %w", err))
	}
	tmp, err := os.MkdirTemp("", "shadergen")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(tmp)
	for _, d := range shadergen.Dirs {
		if err := build(d, tmp); err != nil {
			os.RemoveAll(tmp)
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// build compiles every variant of d's sources into tmp, validates it and
// moves it beside its source when it differs from what is there; then it
// removes stale .spv files and writes d's Go names.
func build(d shadergen.Dir, tmp string) error {
	vs, err := shadergen.Variants(d.Path)
	if err != nil {
		return err
	}
	tools := shadergen.Tools{}
	made := map[string]bool{}
	for _, v := range vs {
		made[v.Name+".spv"] = true
		fmt.Println(tools.CommandLine(d.Path, v))
		out := filepath.Join(tmp, v.Name+".spv")
		code, err := tools.Compile(d.Path, v, out)
		if err != nil {
			return err
		}
		if err := tools.Validate(v, out); err != nil && !errors.Is(err, shadergen.ErrNoValidator) {
			return err
		}
		if err := writeIfChanged(filepath.Join(d.Path, v.Name+".spv"), code); err != nil {
			return err
		}
	}
	old, err := filepath.Glob(filepath.Join(d.Path, "*.spv"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if !made[filepath.Base(f)] {
			fmt.Printf("rm %s (no source declares it)\n", f)
			if err := os.Remove(f); err != nil {
				return fmt.Errorf("gen: %w", err)
			}
		}
	}
	if d.Names == "" {
		return nil
	}
	src, err := shadergen.GoNames(d.Package, vs)
	if err != nil {
		return err
	}
	return writeIfChanged(filepath.Join(d.Path, d.Names), src)
}

// writeIfChanged writes data to path unless the file already holds it.
func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	fmt.Printf("wrote %s\n", path)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	return nil
}
