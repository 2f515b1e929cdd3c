package shadergen

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	vs, err := Parse("x.comp", []byte("#version 450\n// x.comp: a kernel\n//\n// variants: f16 (built with -DF16: ...)\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Name != "x" || vs[1].Name != "x_f16" || !slices.Equal(vs[1].Flags, []string{"-DF16"}) || vs[0].Trixie {
		t.Errorf("variants %+v", vs)
	}
	want := []string{"--target-env=vulkan1.1", "-O", "-DF16", "-o", "out.spv", "x.comp"}
	if got := vs[1].Args("out.spv"); !slices.Equal(got, want) {
		t.Errorf("args %q, want %q", got, want)
	}
	vs, err = Parse("c.comp", []byte("// compiler: GL_KHR_cooperative_matrix (glslang 13)\n"))
	if err != nil || len(vs) != 1 || !vs[0].Trixie {
		t.Errorf("coop source: %+v, %v", vs, err)
	}
	// "variants:" only counts at the start of a line.
	vs, err = Parse("y.comp", []byte("//   see the variants: f16 of x\n"))
	if err != nil || len(vs) != 1 {
		t.Errorf("indented mention: %+v, %v", vs, err)
	}
	for _, bad := range []string{"// variants: f32\n", "// variants: f16 f16\n"} {
		if _, err := Parse("z.comp", []byte(bad)); err == nil {
			t.Errorf("Parse(%q) did not fail", bad)
		}
	}
	if _, err := Parse("z.glsl", nil); err == nil {
		t.Error("Parse of a .glsl file did not fail")
	}
}

func TestGoNames(t *testing.T) {
	if got := GoName("attention_tex_f16"); got != "AttentionTexF16" {
		t.Errorf("GoName = %s", got)
	}
	if got := GoName("matmul_cpu"); got != "MatmulCPU" {
		t.Errorf("GoName = %s", got)
	}
	src, err := GoNames("p", []Variant{{Name: "a", Source: "a.comp"}, {Name: "a_f16", Source: "a.comp", Flags: []string{"-DF16"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"package p", "Kernel = iota + 1", "AF16", `AF16: "a_f16"`} {
		if !strings.Contains(string(src), want) {
			t.Errorf("generated source lacks %q:\n%s", want, src)
		}
	}
}
