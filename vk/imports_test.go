package vk

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// vulkanGo is the import path of the Vulkan bindings, which only package vk
// may use: every other package reaches Vulkan through vk's nouns.
const vulkanGo = "github.com/vulkan-go/vulkan"

// goFile is one parsed Go file of a module.
type goFile struct {
	rel  string // slash-separated path from the module root
	fset *token.FileSet
	ast  *ast.File
}

// moduleFiles parses every Go file of the module at root, whatever its
// build tags (window, nowindow, ...) and including tests, skipping what
// the go command skips: testdata, directories whose names start with "."
// or "_", and nested modules.
func moduleFiles(root string) ([]goFile, error) {
	var files []goFile
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root {
				if name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
					return filepath.SkipDir
				}
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		files = append(files, goFile{rel: filepath.ToSlash(rel), fset: fset, ast: f})
		return nil
	})
	return files, err
}

// vulkanName is the name under which f imports vulkan-go ("" when it does
// not).
func vulkanName(f *ast.File) string {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == vulkanGo {
			if imp.Name != nil {
				return imp.Name.Name
			}
			return "vulkan"
		}
	}
	return ""
}

// vulkanOutsideVk lists the files outside the module's vk directory that
// import vulkan-go, or whose cgo preamble includes a Vulkan header.
func vulkanOutsideVk(files []goFile) []string {
	var bad []string
	for _, f := range files {
		if filepath.Dir(filepath.FromSlash(f.rel)) == "vk" {
			continue
		}
		if vulkanName(f.ast) != "" {
			bad = append(bad, f.rel+": imports "+vulkanGo)
		}
		if strings.Contains(cgoPreamble(f.ast), "vulkan/vulkan") {
			bad = append(bad, f.rel+": includes a Vulkan header in its cgo preamble")
		}
	}
	return bad
}

// cgoPreamble is the comment above f's import "C" ("" when none).
func cgoPreamble(f *ast.File) string {
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.IMPORT {
			continue
		}
		for _, s := range g.Specs {
			if imp := s.(*ast.ImportSpec); imp.Path.Value == `"C"` {
				doc := imp.Doc
				if doc == nil {
					doc = g.Doc
				}
				return doc.Text()
			}
		}
	}
	return ""
}

// moduleRoot is the module root above this package's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod above the vk package: %v", err)
	}
	return root
}

// TestVulkanOnlyInVk fails when a package other than vk imports vulkan-go
// (in any file, whatever its build tags), so that every Vulkan call goes
// through vk, with its error names and its care with cgo (calls.go).
func TestVulkanOnlyInVk(t *testing.T) {
	files, err := moduleFiles(moduleRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 50 {
		t.Fatalf("parsed only %d Go files: is the module root right?", len(files))
	}
	for _, b := range vulkanOutsideVk(files) {
		t.Errorf("%s: only package vk may call Vulkan; add the noun you need to vk", b)
	}
}

// TestVulkanOnlyInVkFails checks that the check above finds what it must,
// in a module made for the purpose: a window-tagged file, a test file and a
// cgo preamble, and nothing in vk or in a file that merely names Vulkan.
func TestVulkanOnlyInVkFails(t *testing.T) {
	root := t.TempDir()
	src := map[string]string{
		"go.mod":                      "module example.com/m\n",
		"vk/vk.go":                    "package vk\n\nimport vk \"" + vulkanGo + "\"\n\nvar _ = vk.Success\n",
		"view/window/window.go":       "//go:build window\n\npackage window\n\nimport vkb \"" + vulkanGo + "\"\n\nvar _ = vkb.Success\n",
		"ops/ops_test.go":             "package ops\n\nimport _ \"" + vulkanGo + "\"\n",
		"internal/c/c.go":             "package c\n\n// #include <vulkan/vulkan.h>\nimport \"C\"\n",
		"ops/ops.go":                  "package ops\n\n// Vulkan is reached through vk.\nimport _ \"fmt\"\n",
		"testdata/skip.go":            "package skip\n\nimport _ \"" + vulkanGo + "\"\n",
		"nested/go.mod":               "module example.com/nested\n",
		"nested/nested.go":            "package nested\n\nimport _ \"" + vulkanGo + "\"\n",
		"view/window/window_other.go": "//go:build !window\n\npackage window\n",
	}
	for name, text := range src {
		path := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := moduleFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	got := vulkanOutsideVk(files)
	want := []string{
		"internal/c/c.go: includes a Vulkan header in its cgo preamble",
		"ops/ops_test.go: imports " + vulkanGo,
		"view/window/window.go: imports " + vulkanGo,
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("found\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// structArrayFuncs lists the functions of the vulkan-go sources in dir
// that copy an array argument of structures into C memory with an
// unpackArgS helper, whose finalizer may free it during the Vulkan call
// (see calls.go).
func structArrayFuncs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join(dir, "vulkan.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	funcs := map[string]bool{}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || fn.Body == nil {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && strings.HasPrefix(id.Name, "unpackArgS") {
				funcs[fn.Name.Name] = true
			}
			return true
		})
	}
	return funcs
}

// structArrayCalls lists the calls in files of the functions in funcs.
func structArrayCalls(files []goFile, funcs map[string]bool) []string {
	var bad []string
	for _, f := range files {
		name := vulkanName(f.ast)
		if name == "" {
			continue
		}
		ast.Inspect(f.ast, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == name && funcs[sel.Sel.Name] {
				pos := f.fset.Position(call.Pos())
				bad = append(bad, f.rel+":"+strconv.Itoa(pos.Line)+": "+name+"."+sel.Sel.Name)
			}
			return true
		})
	}
	return bad
}

// TestNoStructArraysThroughVulkanGo fails on any call, anywhere in the
// module, of a vulkan-go function that passes an array of structures to C
// through memory a finalizer may free during the call (vkQueueSubmit,
// vkCmdPipelineBarrier, vkCmdCopyBufferToImage, ...): such calls go
// through the C helpers of calls.go and present_calls.go instead.
func TestNoStructArraysThroughVulkanGo(t *testing.T) {
	root := moduleRoot(t)
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", vulkanGo).Output()
	if err != nil {
		t.Skipf("go list -m %s: %v: cannot find the bindings' sources to check calls against", vulkanGo, err)
	}
	funcs := structArrayFuncs(t, strings.TrimSpace(string(out)))
	for _, name := range []string{"QueueSubmit", "CmdPipelineBarrier", "CmdCopyBufferToImage"} {
		if !funcs[name] {
			t.Fatalf("%s is not among the bindings' functions that pass arrays of structures (%d found): has vulkan-go changed?", name, len(funcs))
		}
	}
	files, err := moduleFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range structArrayCalls(files, funcs) {
		t.Errorf("%s: passes an array of structures through vulkan-go; use a C helper (calls.go)", b)
	}
	// The check finds such a call where there is one.
	fset := token.NewFileSet()
	src := "package x\n\nimport vkb \"" + vulkanGo + "\"\n\nfunc f() { vkb.QueueSubmit(nil, 1, []vkb.SubmitInfo{{}}, nil) }\n"
	f, err := parser.ParseFile(fset, "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := structArrayCalls([]goFile{{rel: "x.go", fset: fset, ast: f}}, funcs); len(got) != 1 || got[0] != "x.go:5: vkb.QueueSubmit" {
		t.Errorf("the check found %q in a file with one vkb.QueueSubmit", got)
	}
}
