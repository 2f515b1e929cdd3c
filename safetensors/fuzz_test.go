package safetensors

import (
	"bytes"
	"testing"
)

// FuzzParse checks that Parse never panics and that whatever it accepts
// re-encodes and re-parses to the same tensors and metadata.
func FuzzParse(f *testing.F) {
	valid, err := Encode([]*Tensor{
		NewF32("w", []int{2, 2}, []float32{1, 2, 3, 4}),
		NewBool("m", []int{3}, []bool{true, false, true}),
	}, map[string]string{"dim": "2"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		tensors := make([]*Tensor, 0, len(file.Tensors))
		for _, name := range file.Names() {
			tn, _ := file.Get(name)
			tensors = append(tensors, tn)
		}
		enc, err := Encode(tensors, file.Metadata)
		if err != nil {
			t.Fatalf("re-encoding a parsed file: %v", err)
		}
		again, err := Parse(enc)
		if err != nil {
			t.Fatalf("re-parsing an encoded file: %v", err)
		}
		if len(again.Tensors) != len(file.Tensors) {
			t.Fatalf("%d tensors after round trip, want %d", len(again.Tensors), len(file.Tensors))
		}
		for _, want := range tensors {
			got, ok := again.Get(want.Name)
			if !ok {
				t.Fatalf("tensor %q lost in round trip", want.Name)
			}
			if got.DType != want.DType || !equalInts(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
				t.Fatalf("tensor %q changed: %s %v -> %s %v", want.Name, want.DType, want.Shape, got.DType, got.Shape)
			}
		}
		if len(again.Metadata) != len(file.Metadata) {
			t.Fatalf("metadata %q became %q", file.Metadata, again.Metadata)
		}
		for k, v := range file.Metadata {
			if again.Metadata[k] != v {
				t.Fatalf("metadata %q: %q became %q", k, v, again.Metadata[k])
			}
		}
	})
}
