package safetensors

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validFile returns an encoded file of two tensors (24 data bytes).
func validFile(t testing.TB) []byte {
	t.Helper()
	data, err := Encode([]*Tensor{
		NewF32("w", []int{2, 2}, []float32{1, 2, 3, 4}),
		{Name: "i", DType: I64, Shape: []int{1}, Data: []byte{7, 0, 0, 0, 0, 0, 0, 0}},
	}, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.safetensors")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadFileSizes(t *testing.T) {
	valid := validFile(t)
	if f, err := ReadFile(writeTemp(t, valid)); err != nil || len(f.Tensors) != 2 {
		t.Fatalf("valid file: %v", err)
	}
	huge := build(`{"a":{"dtype":"U8","shape":[1099511627776],"data_offsets":[0,1099511627776]}}`, make([]byte, 8))
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty file"},
		{"short", []byte{1, 2, 3}, "file is 3 bytes, shorter than the 8-byte header length"},
		{"shorter than header says", valid[:len(valid)-2], "data_offsets end 24 is past the 22-byte data section"},
		{"longer than header says", append(append([]byte(nil), valid...), 0, 0, 0), "(3 trailing bytes)"},
		{"header past end", withHeaderLen(valid, 1000), "runs past the end of the"},
		{"header length one short", withHeaderLen(valid, -1), "(1 trailing byte)"},
		{"huge claimed data", huge, "past the 8-byte data section"},
		{"hostile header", build(obj(entryJSON("a", "F32", "[1]", 0, 4), entryJSON("b", "F32", "[1]", 0, 4)), make([]byte, 4)), "(overlap)"},
	} {
		p := writeTemp(t, c.data)
		_, err := ReadFile(p)
		if err == nil || !strings.HasPrefix(err.Error(), "safetensors: "+p+": ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

func TestReadFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadFile(dir); err == nil || !strings.Contains(err.Error(), dir+" is a directory, not a regular file") {
		t.Errorf("directory: %v", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		if _, err := ReadFile("/dev/zero"); err == nil || !strings.Contains(err.Error(), "/dev/zero is a character device, not a regular file") {
			t.Errorf("/dev/zero: %v", err)
		}
	}
	// A symbolic link to a regular file is read through.
	target := writeTemp(t, validFile(t))
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err == nil {
		if _, err := ReadFile(link); err != nil {
			t.Errorf("symbolic link: %v", err)
		}
	}
}

// TestReadFromChangingFile feeds readFrom more or fewer bytes than the size
// fstat reported, as a file that grows or shrinks while it is read would.
func TestReadFromChangingFile(t *testing.T) {
	valid := validFile(t)
	size := int64(len(valid))
	grown := append(append([]byte(nil), valid...), 1)
	if _, err := readFrom(bytes.NewReader(grown), size); err == nil || !strings.Contains(err.Error(), "grew") {
		t.Errorf("grown file: %v", err)
	}
	for _, cut := range []int{4, 20, len(valid) - 1} {
		if _, err := readFrom(bytes.NewReader(valid[:cut]), size); err == nil || !strings.Contains(err.Error(), "shrank") {
			t.Errorf("file cut to %d bytes: %v", cut, err)
		}
	}
	if f, err := readFrom(bytes.NewReader(valid), size); err != nil || len(f.Tensors) != 2 {
		t.Errorf("unchanged file: %v", err)
	}
}
