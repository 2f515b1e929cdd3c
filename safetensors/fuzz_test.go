package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"slices"
	"testing"
	"unsafe"
)

// FuzzParse checks that Parse never panics; that whatever it accepts is
// valid JSON to encoding/json, with the same dtypes and shapes, and has
// tensors that tile the data section exactly; and that it re-encodes and
// re-parses to the same tensors and metadata.
func FuzzParse(f *testing.F) {
	valid, err := Encode([]*Tensor{
		NewF32("w", []int{2, 2}, []float32{1, 2, 3, 4}),
		NewBool("m", []int{3}, []bool{true, false, true}),
		NewF32("z", []int{0, 5}, nil),
	}, map[string]string{"dim": "2"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add([]byte{})
	for _, c := range hostileCases() {
		if len(c.data) < 1<<16 {
			f.Add(c.data)
		}
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		n := binary.LittleEndian.Uint64(data)
		checkAgainstJSON(t, data[8:8+n], file)
		checkTiling(t, data[8+n:], file)
		checkRoundTrip(t, file)
	})
}

// checkAgainstJSON checks that encoding/json reads the header Parse
// accepted to the same dtypes, shapes and metadata.
func checkAgainstJSON(t *testing.T, header []byte, file *File) {
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(header, &entries); err != nil {
		t.Fatalf("Parse accepted a header encoding/json rejects: %v", err)
	}
	for name, raw := range entries {
		if name == metadataKey {
			var md map[string]string
			if err := json.Unmarshal(raw, &md); err != nil || len(md) != len(file.Metadata) {
				t.Fatalf("metadata %q: encoding/json reads %q, %v", file.Metadata, md, err)
			}
			continue
		}
		var e struct {
			DType       string  `json:"dtype"`
			Shape       []int   `json:"shape"`
			DataOffsets []int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("tensor %q: %v", name, err)
		}
		tn, ok := file.Get(name)
		if !ok || string(tn.DType) != e.DType || !slices.Equal(tn.Shape, e.Shape) ||
			len(tn.Data) != int(e.DataOffsets[1]-e.DataOffsets[0]) {
			t.Fatalf("tensor %q: encoding/json reads %+v, Parse %+v", name, e, tn)
		}
	}
	tensors := len(entries)
	if _, ok := entries[metadataKey]; ok {
		tensors--
	}
	if tensors != len(file.Tensors) {
		t.Fatalf("encoding/json reads %d tensors, Parse %d", tensors, len(file.Tensors))
	}
}

// checkTiling checks that the tensors' data, sorted, covers body from 0 to
// len(body) with no gap or overlap.
func checkTiling(t *testing.T, body []byte, file *File) {
	type span struct{ begin, end int }
	var spans []span
	base := uintptr(unsafe.Pointer(unsafe.SliceData(body)))
	for _, tn := range file.Tensors {
		if len(tn.Data) == 0 {
			continue // a zero-length slice does not say where it is
		}
		begin := int(uintptr(unsafe.Pointer(unsafe.SliceData(tn.Data))) - base)
		if begin < 0 || begin+len(tn.Data) > len(body) || &body[begin] != &tn.Data[0] {
			t.Fatalf("tensor %q does not lie in the data section", tn.Name)
		}
		spans = append(spans, span{begin, begin + len(tn.Data)})
	}
	slices.SortFunc(spans, func(a, b span) int { return a.begin - b.begin })
	pos := 0
	for _, s := range spans {
		if s.begin != pos {
			t.Fatalf("tensor data begins at %d, previous ends at %d", s.begin, pos)
		}
		pos = s.end
	}
	if pos != len(body) {
		t.Fatalf("tensors end at %d of a %d-byte data section", pos, len(body))
	}
}

// checkRoundTrip encodes file and parses it again.
func checkRoundTrip(t *testing.T, file *File) {
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
}
