package safetensors

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// bigTensors returns a tensor of n float32 elements.
func bigTensors(n int) []*Tensor {
	return []*Tensor{NewF32("big", []int{n}, make([]float32, n))}
}

// existingFile writes old contents to dir/out.safetensors and returns the
// path and the bytes.
func existingFile(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	p := filepath.Join(dir, "out.safetensors")
	old := validFile(t)
	if err := os.WriteFile(p, old, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, old
}

// checkIntact fails unless path holds old and its directory holds nothing
// else (no temporary file left behind).
func checkIntact(t *testing.T, path string, old []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, old) {
		t.Errorf("%s changed: %d bytes, %v", path, len(got), err)
	}
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != filepath.Base(path) {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// failingWriter writes up to n bytes, then fails.
type failingWriter struct {
	w io.Writer
	n int
}

var errInjected = errors.New("injected write failure")

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) <= f.n {
		f.n -= len(p)
		return f.w.Write(p)
	}
	k, _ := f.w.Write(p[:f.n])
	f.n = 0
	return k, errInjected
}

func TestWriteFileFailsMidway(t *testing.T) {
	p, old := existingFile(t, t.TempDir())
	writeHook = func(w io.Writer) io.Writer { return &failingWriter{w: w, n: 100} }
	defer func() { writeHook = nil }()
	err := WriteFile(p, bigTensors(1000), nil)
	if !errors.Is(err, errInjected) || !strings.HasPrefix(err.Error(), "safetensors: writing "+p+": ") {
		t.Errorf("error %v", err)
	}
	checkIntact(t, p, old)
}

func TestWriteFileReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 || runtime.GOOS == "windows" {
		t.Skip("permission bits do not stop root; TestWriteFileCreateFails covers this case")
	}
	dir := t.TempDir()
	p, old := existingFile(t, dir)
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if err := WriteFile(p, bigTensors(10), nil); err == nil {
		t.Error("WriteFile into a read-only directory succeeded")
	}
	if err := CheckWritable(p); err == nil || !strings.Contains(err.Error(), "is not writable") {
		t.Errorf("CheckWritable: %v", err)
	}
	checkIntact(t, p, old)
}

func TestWriteFileModes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "new.safetensors")
	if err := WriteFile(p, bigTensors(3), nil); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("new file mode %v, %v", fi.Mode(), err)
		}
		if err := os.Chmod(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteFile(p, bigTensors(5), map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(p)
	if err != nil || f.Metadata["k"] != "v" {
		t.Fatalf("read back: %v", err)
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("replaced file mode %v, %v; want the old 0600", fi.Mode(), err)
		}
	}
	// Writing through a symbolic link replaces its target and keeps the link.
	link := filepath.Join(dir, "link.safetensors")
	if err := os.Symlink(p, link); err == nil {
		if err := WriteFile(link, bigTensors(7), nil); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("link replaced: %v", err)
		}
		if f, err := ReadFile(p); err != nil || f.Tensors["big"].NumElements() != 7 {
			t.Errorf("target not written: %v", err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 && len(ents) != 1 {
		t.Errorf("directory holds %d entries", len(ents))
	}
}

func TestWriteFileErrors(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFile(dir, bigTensors(1), nil); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
	if err := WriteFile(filepath.Join(dir, "no", "x"), bigTensors(1), nil); err == nil {
		t.Error("missing directory: no error")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind %d entries", len(ents))
	}
}

func TestCheckWritable(t *testing.T) {
	dir := t.TempDir()
	p, _ := existingFile(t, dir)
	for _, ok := range []string{p, filepath.Join(dir, "new.safetensors")} {
		if err := CheckWritable(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, c := range []struct{ path, want string }{
		{dir, dir + " is a directory, not a regular file"},
		{filepath.Join(dir, "missing", "x"), "directory " + filepath.Join(dir, "missing") + " does not exist"},
		{filepath.Join(p, "x"), p + " is not a directory"},
	} {
		if err := CheckWritable(c.path); err == nil || !strings.HasPrefix(err.Error(), "safetensors: cannot write ") ||
			!strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.path, err, c.want)
		}
	}
	if _, err := os.Stat("/dev/null"); err == nil {
		if err := CheckWritable("/dev/null"); err == nil || !strings.Contains(err.Error(), "character device") {
			t.Errorf("/dev/null: %v", err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("CheckWritable left %d entries", len(ents))
	}
}
