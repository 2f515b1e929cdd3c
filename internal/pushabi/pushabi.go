// Package pushabi reads the push-constant block of a GLSL compute shader
// and compares it with the Go struct that a host encodes with
// vk.PushStruct, so that the tests of each host (ops, view) fail on any
// difference of a field's name, order or type.
package pushabi

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
)

// Field is one member of a GLSL push-constant block.
type Field struct{ Name, Type string }

var (
	lineComment = regexp.MustCompile(`//[^\n]*`)
	pushBlockRE = regexp.MustCompile(`layout\s*\(\s*push_constant\s*\)\s*uniform\s+\w+\s*\{([^}]*)\}`)
)

// StripComments removes the // comments of GLSL text src.
func StripComments(src string) string { return lineComment.ReplaceAllString(src, "") }

// HasBlock reports whether GLSL text src (without comments) declares a
// push_constant block itself.
func HasBlock(src string) bool { return pushBlockRE.MatchString(src) }

// Parse returns the members of the one push_constant block in the GLSL
// text src, in order.
func Parse(src string) ([]Field, error) {
	src = lineComment.ReplaceAllString(src, "")
	m := pushBlockRE.FindAllStringSubmatch(src, -1)
	if len(m) != 1 {
		return nil, fmt.Errorf("%d push_constant blocks, want 1", len(m))
	}
	var fs []Field
	for _, decl := range strings.Split(m[0][1], ";") {
		words := strings.Fields(strings.ReplaceAll(decl, ",", " "))
		if len(words) == 0 {
			continue
		}
		if len(words) < 2 {
			return nil, fmt.Errorf("cannot read member %q", strings.TrimSpace(decl))
		}
		for _, n := range words[1:] {
			fs = append(fs, Field{Name: n, Type: words[0]})
		}
	}
	return fs, nil
}

// goKinds are the Go field kinds of the GLSL member types.
var goKinds = map[string]reflect.Kind{"uint": reflect.Uint32, "int": reflect.Int32, "float": reflect.Float32}

// Compare returns the differences between the GLSL block fs and the Go
// struct type t: a Go field matches a member whose name, without
// underscores, is the same ignoring case, with the matching type (uint:
// uint32, int: int32, float: float32).
func Compare(fs []Field, t reflect.Type) []string {
	var diffs []string
	for i := range max(len(fs), t.NumField()) {
		switch {
		case i >= len(fs):
			diffs = append(diffs, fmt.Sprintf("field %d: Go has %s, GLSL nothing", i, t.Field(i).Name))
		case i >= t.NumField():
			diffs = append(diffs, fmt.Sprintf("field %d: GLSL has %s %s, Go nothing", i, fs[i].Type, fs[i].Name))
		default:
			g, f := t.Field(i), fs[i]
			if !strings.EqualFold(strings.ReplaceAll(f.Name, "_", ""), g.Name) {
				diffs = append(diffs, fmt.Sprintf("field %d: GLSL %s, Go %s", i, f.Name, g.Name))
			}
			if k, ok := goKinds[f.Type]; !ok || g.Type.Kind() != k {
				diffs = append(diffs, fmt.Sprintf("field %d (%s): GLSL %s, Go %s", i, f.Name, f.Type, g.Type))
			}
		}
	}
	return diffs
}
