package ops

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/internal/pushabi"
)

// pushTypes maps each shaders/push/NAME.glsl to the Go block that mirrors it.
var pushTypes = map[string]pushBlock{
	"attention":    attnPush{},
	"attn_combine": combinePush{},
	"matmul":       matmulPush{},
	"softmax":      softmaxPush{},
	"add":          addPush{},
	"layernorm":    layerNormPush{},
	"convert":      convertPush{},
}

// inlinePush are the sources that keep their push block inline, and why.
var inlinePush = map[string]string{
	"peak.comp":      "three values; its host is internal/benchkit, not ops",
	"peak_coop.comp": "one value; its host is internal/benchkit, not ops",
}

var (
	includeRE = regexp.MustCompile(`#include\s+"push/(\w+)\.glsl"`)
	bindingRE = regexp.MustCompile(`binding\s*=\s*(\d+)`)
)

// TestPushBlocks checks the kernel interfaces: every shaders/push/*.glsl
// block against its Go struct (name, order and type of each field), and
// every source's push block and binding count against the interface it
// includes.
func TestPushBlocks(t *testing.T) {
	includes, err := filepath.Glob("../shaders/push/*.glsl")
	if err != nil || len(includes) == 0 {
		t.Fatalf("no ../shaders/push/*.glsl (%v)", err)
	}
	for _, path := range includes {
		name := strings.TrimSuffix(filepath.Base(path), ".glsl")
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := pushabi.Parse(string(src))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		p, ok := pushTypes[name]
		if !ok {
			t.Errorf("%s has no Go block in pushTypes", path)
			continue
		}
		for _, d := range pushabi.Compare(fs, reflect.TypeOf(p)) {
			t.Errorf("%s and %T differ: %s", path, p, d)
		}
	}
	for name := range pushTypes {
		if !slices.Contains(includes, "../shaders/push/"+name+".glsl") {
			t.Errorf("pushTypes has %s, but there is no ../shaders/push/%s.glsl", name, name)
		}
	}
	sources, err := filepath.Glob("../shaders/*.comp")
	if err != nil || len(sources) == 0 {
		t.Fatalf("no ../shaders/*.comp (%v)", err)
	}
	for _, path := range sources {
		if err := checkSource(path); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

// checkSource checks that the source at path declares its push constants
// by including one shaders/push block (unless inlinePush lists it) and binds
// buffers 0..n-1, n being that interface's buffers().
func checkSource(path string) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	src := pushabi.StripComments(string(text))
	inc := includeRE.FindAllStringSubmatch(src, -1)
	if _, ok := inlinePush[filepath.Base(path)]; ok {
		if len(inc) != 0 {
			return fmt.Errorf("listed in inlinePush but includes %s", inc[0][0])
		}
		return nil
	}
	if len(inc) != 1 || pushabi.HasBlock(src) {
		return fmt.Errorf("declares its push constants other than by including one push/NAME.glsl (%d includes)", len(inc))
	}
	p, ok := pushTypes[inc[0][1]]
	if !ok {
		return fmt.Errorf("includes push/%s.glsl, which has no Go block", inc[0][1])
	}
	seen := map[string]bool{}
	for _, m := range bindingRE.FindAllStringSubmatch(src, -1) {
		seen[m[1]] = true
	}
	for i := range p.buffers() {
		if !seen[fmt.Sprint(i)] {
			return fmt.Errorf("does not declare binding %d of the %d that %T's kernels take", i, p.buffers(), p)
		}
	}
	if len(seen) != p.buffers() {
		return fmt.Errorf("declares %d bindings, %T's kernels take %d", len(seen), p, p.buffers())
	}
	return nil
}

// TestPushBlockCompare checks that the comparison catches a swap, a rename,
// a type change and a missing field.
func TestPushBlockCompare(t *testing.T) {
	fs, err := pushabi.Parse("// c\nlayout(push_constant) uniform Push {\n\tuint q_off; // x\n\tuint ldkv, n;\n\tfloat scale;\n} pc;\n")
	if err != nil {
		t.Fatal(err)
	}
	type good struct {
		QOff, LdKV, N uint32
		Scale         float32
	}
	if d := pushabi.Compare(fs, reflect.TypeOf(good{})); len(d) != 0 {
		t.Errorf("equal blocks differ: %v", d)
	}
	type swapped struct {
		LdKV, QOff, N uint32
		Scale         float32
	}
	type retyped struct {
		QOff, LdKV, N uint32
		Scale         uint32
	}
	type short struct{ QOff, LdKV, N uint32 }
	for _, bad := range []any{swapped{}, retyped{}, short{}} {
		if d := pushabi.Compare(fs, reflect.TypeOf(bad)); len(d) == 0 {
			t.Errorf("%T passed", bad)
		}
	}
}
