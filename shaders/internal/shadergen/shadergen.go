// Package shadergen is the one place that knows how the project's GLSL
// compute shaders become SPIR-V: which variants a source declares, the
// exact glslc command line of each, which compiler builds it (Debian 12's
// glslc, or Debian 13's from scripts/trixie.sh for GL_KHR_cooperative_matrix),
// and the Go file of kernel names that package shaders embeds. The generator
// (shaders/internal/gen, run by go generate ./shaders and make shaders) and
// the freshness test (shaders/shaders_test.go) both use it.
//
// A source declares its outputs in its header comment:
//
//   - every X.comp compiles to X.spv;
//   - a line "// variants: f16" adds X_f16.spv, compiled with -DF16 (the
//     names after "variants:" are the variant suffixes, see Suffixes);
//   - a line starting "// compiler: GL_KHR_cooperative_matrix" builds and
//     validates every output of X with Debian 13's glslc and spirv-val.
package shadergen

import (
	"bytes"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// GlslcArgs is the start of every glslc command line; a variant's flags,
// then "-o", the output and the source follow (see Variant.Args).
var GlslcArgs = []string{"--target-env=vulkan1.1", "-O"}

// ValArgs are spirv-val's arguments before the file.
var ValArgs = []string{"--target-env", "vulkan1.1"}

// Suffixes maps each variant a source may declare to its glslc flags.
var Suffixes = map[string][]string{
	"f16": {"-DF16"},
}

// Dir is one folder of shaders that the generator builds: its path relative
// to shaders/ and, for the embedded kernels, the Go file of kernel names
// and its package.
type Dir struct {
	Path    string
	Names   string // "" for none
	Package string
}

// Dirs are the folders of shaders in the repository, relative to shaders/:
// the engine's kernels (embedded by package shaders, with kernels.go), the
// vk package's test kernels and the viewer's frame shader.
var Dirs = []Dir{
	{Path: ".", Names: "kernels.go", Package: "shaders"},
	{Path: "../vk/testdata"},
	{Path: "../view/shaders"},
}

// Variant is one SPIR-V output of a source.
type Variant struct {
	Name   string   // output name without ".spv", such as "attention_f16"
	Source string   // the source's file name, such as "attention.comp"
	Flags  []string // extra glslc flags, such as -DF16
	// Trixie says that Debian 13's glslc and spirv-val build and check it
	// (scripts/trixie.sh): the source uses GL_KHR_cooperative_matrix.
	Trixie bool
}

// Args returns glslc's arguments that compile v's source (in the current
// directory) into out.
func (v Variant) Args(out string) []string {
	args := append(append([]string{}, GlslcArgs...), v.Flags...)
	return append(args, "-o", out, v.Source)
}

const (
	variantsLine = "// variants:"
	coopLine     = "// compiler: GL_KHR_cooperative_matrix"
)

// Parse returns the variants that the source named name (a file name such
// as "attention.comp") declares in text, the plain one first. An unknown
// variant is an error.
func Parse(name string, text []byte) ([]Variant, error) {
	base, ok := strings.CutSuffix(name, ".comp")
	if !ok || base == "" {
		return nil, fmt.Errorf("shadergen: %s is not a .comp file", name)
	}
	var suffixes []string
	trixie := false
	for _, line := range strings.Split(string(text), "\n") {
		line = strings.TrimRight(line, " \t\r")
		if strings.HasPrefix(line, coopLine) {
			trixie = true
		}
		rest, ok := strings.CutPrefix(line, variantsLine)
		if !ok {
			continue
		}
		// "f16 (built with ...)": the names come before any parenthesis.
		rest, _, _ = strings.Cut(rest, "(")
		for _, s := range strings.FieldsFunc(rest, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			if _, ok := Suffixes[s]; !ok {
				return nil, fmt.Errorf("shadergen: %s declares unknown variant %q (known: %s)", name, s, strings.Join(known(), ", "))
			}
			suffixes = append(suffixes, s)
		}
	}
	vs := []Variant{{Name: base, Source: name, Trixie: trixie}}
	seen := map[string]bool{}
	for _, s := range suffixes {
		if seen[s] {
			return nil, fmt.Errorf("shadergen: %s declares variant %q twice", name, s)
		}
		seen[s] = true
		vs = append(vs, Variant{Name: base + "_" + s, Source: name, Flags: Suffixes[s], Trixie: trixie})
	}
	return vs, nil
}

func known() []string {
	var ks []string
	for k := range Suffixes {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Variants returns the variants of every *.comp in dir, sorted by name.
func Variants(dir string) ([]Variant, error) {
	srcs, err := filepath.Glob(filepath.Join(dir, "*.comp"))
	if err != nil {
		return nil, fmt.Errorf("shadergen: %w", err)
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("shadergen: no *.comp files in %s", dir)
	}
	var all []Variant
	for _, src := range srcs {
		text, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("shadergen: %w", err)
		}
		vs, err := Parse(filepath.Base(src), text)
		if err != nil {
			return nil, err
		}
		all = append(all, vs...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	for i := 1; i < len(all); i++ {
		if all[i].Name == all[i-1].Name {
			return nil, fmt.Errorf("shadergen: %s and %s both make %s.spv", all[i-1].Source, all[i].Source, all[i].Name)
		}
	}
	return all, nil
}

// initialisms are the words that GoName writes in capitals, as Go does.
var initialisms = map[string]bool{"cpu": true, "gpu": true}

// GoName is the Go constant that names the kernel called name: its
// underscore-separated words capitalised (initialisms such as cpu in
// capitals), "attention_tex_f16" becoming AttentionTexF16 and
// "matmul_cpu" MatmulCPU.
func GoName(name string) string {
	var b strings.Builder
	for _, w := range strings.Split(name, "_") {
		switch {
		case initialisms[w]:
			b.WriteString(strings.ToUpper(w))
		case w != "":
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

// GoNames returns the gofmt'ed Go source that declares a Kernel constant
// for each of vs in package pkg, with its name and source.
func GoNames(pkg string, vs []Variant) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by shaders/internal/gen from the *.comp sources; DO NOT EDIT.\n\n")
	fmt.Fprintf(&b, "package %s\n\n", pkg)
	b.WriteString("// The embedded kernels, one per SPIR-V file: a source's plain build and\n")
	b.WriteString("// each variant it declares (see internal/shadergen). A kernel that is\n")
	b.WriteString("// removed or misspelt is a compile error where it is used.\n")
	b.WriteString("const (\n")
	for i, v := range vs {
		what := v.Source
		if len(v.Flags) > 0 {
			what += " with " + strings.Join(v.Flags, " ")
		}
		if i == 0 {
			fmt.Fprintf(&b, "\t%s Kernel = iota + 1 // %s.spv: %s\n", GoName(v.Name), v.Name, what)
		} else {
			fmt.Fprintf(&b, "\t%s // %s.spv: %s\n", GoName(v.Name), v.Name, what)
		}
	}
	b.WriteString(")\n\n")
	b.WriteString("// kernelNames are the kernels' file names without \".spv\", by Kernel.\n")
	b.WriteString("var kernelNames = [...]string{\n")
	for _, v := range vs {
		fmt.Fprintf(&b, "\t%s: %q,\n", GoName(v.Name), v.Name)
	}
	b.WriteString("}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("shadergen: generated names: %w", err)
	}
	return src, nil
}
