// Package safetensors reads and writes the safetensors tensor file format:
// an 8-byte little-endian header length N, N bytes of JSON describing each
// tensor (dtype, shape, byte offsets into the data section) and optional
// string metadata, then the raw little-endian tensor data.
//
// Parse validates every header field before it touches the data, so a
// truncated or hostile file yields an error, never a panic or an allocation
// sized by an unchecked number.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"unicode/utf8"
)

// MaxHeaderSize is the largest JSON header Parse accepts, in bytes.
const MaxHeaderSize = 100 << 20

// metadataKey is the header key that holds the string metadata.
const metadataKey = "__metadata__"

// File is a parsed safetensors file.
type File struct {
	// Metadata holds the header's "__metadata__" entries; nil when absent.
	Metadata map[string]string
	// Tensors maps each tensor name to its tensor.
	Tensors map[string]*Tensor
}

// Names returns the tensor names in sorted order.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Tensors))
	for name := range f.Tensors {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Get returns the tensor called name and whether it exists.
func (f *File) Get(name string) (*Tensor, bool) {
	t, ok := f.Tensors[name]
	return t, ok
}

// ReadFile reads and parses the safetensors file at path.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse parses and validates a safetensors file held in data. The returned
// tensors' Data slices alias data; copy them if data will be modified.
func Parse(data []byte) (*File, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("safetensors: empty file")
	}
	if len(data) < 8 {
		return nil, fmt.Errorf("safetensors: file is %d bytes, shorter than the 8-byte header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data[:8])
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors: header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if n > uint64(len(data)-8) {
		return nil, fmt.Errorf("safetensors: header length %d runs past the end of the %d-byte file", n, len(data))
	}
	header := data[8 : 8+int(n)]
	body := data[8+int(n):]

	trimmed := bytes.TrimLeft(header, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("safetensors: header is not a JSON object")
	}
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(header, &entries); err != nil {
		return nil, fmt.Errorf("safetensors: header is not valid JSON: %w", err)
	}

	f := &File{Tensors: make(map[string]*Tensor, len(entries))}
	for name, raw := range entries {
		if name == metadataKey {
			md, err := parseMetadata(raw)
			if err != nil {
				return nil, err
			}
			f.Metadata = md
			continue
		}
		t, err := parseEntry(name, raw, body)
		if err != nil {
			return nil, err
		}
		f.Tensors[name] = t
	}
	return f, nil
}

// parseMetadata decodes the "__metadata__" object, whose values must all be
// strings. JSON null means no metadata.
func parseMetadata(raw json.RawMessage) (map[string]string, error) {
	raw = bytes.TrimSpace(raw)
	if string(raw) == "null" {
		return nil, nil
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("safetensors: %s is not a JSON object", metadataKey)
	}
	var vals map[string]json.RawMessage
	if err := json.Unmarshal(raw, &vals); err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", metadataKey, err)
	}
	md := make(map[string]string, len(vals))
	for k, v := range vals {
		v = bytes.TrimSpace(v)
		if len(v) == 0 || v[0] != '"' {
			return nil, fmt.Errorf("safetensors: %s: value of %q is not a string", metadataKey, k)
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("safetensors: %s: value of %q: %w", metadataKey, k, err)
		}
		md[k] = s
	}
	return md, nil
}

// parseEntry decodes and validates one tensor entry of the header against the
// data section body.
func parseEntry(name string, raw json.RawMessage, body []byte) (*Tensor, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("safetensors: tensor %q: entry is not a JSON object", name)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
	}
	for _, key := range []string{"dtype", "shape", "data_offsets"} {
		if _, ok := fields[key]; !ok {
			return nil, fmt.Errorf("safetensors: tensor %q: missing %q", name, key)
		}
	}

	dt := bytes.TrimSpace(fields["dtype"])
	if len(dt) == 0 || dt[0] != '"' {
		return nil, fmt.Errorf("safetensors: tensor %q: dtype is not a string", name)
	}
	var dtype string
	if err := json.Unmarshal(dt, &dtype); err != nil {
		return nil, fmt.Errorf("safetensors: tensor %q: dtype: %w", name, err)
	}
	t := &Tensor{Name: name, DType: DType(dtype)}
	size := t.DType.Size()
	if size == 0 {
		return nil, fmt.Errorf("safetensors: tensor %q: unknown dtype %q", name, dtype)
	}

	shape, err := parseInts(fields["shape"])
	if err != nil {
		return nil, fmt.Errorf("safetensors: tensor %q: shape: %w", name, err)
	}
	t.Shape = make([]int, len(shape))
	for i, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("safetensors: tensor %q: negative dimension %d in shape %v", name, d, shape)
		}
		if d > math.MaxInt {
			return nil, fmt.Errorf("safetensors: tensor %q: dimension %d too large", name, d)
		}
		t.Shape[i] = int(d)
	}
	numel, err := numElements(t.Shape)
	if err != nil {
		return nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
	}
	if numel > math.MaxInt/size {
		return nil, fmt.Errorf("safetensors: tensor %q: byte size of shape %v overflows", name, t.Shape)
	}

	offs, err := parseInts(fields["data_offsets"])
	if err != nil {
		return nil, fmt.Errorf("safetensors: tensor %q: data_offsets: %w", name, err)
	}
	if len(offs) != 2 {
		return nil, fmt.Errorf("safetensors: tensor %q: data_offsets has %d values, want [begin, end]", name, len(offs))
	}
	begin, end := offs[0], offs[1]
	if begin < 0 || end < begin {
		return nil, fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] are not 0 <= begin <= end", name, begin, end)
	}
	if end > int64(len(body)) {
		return nil, fmt.Errorf("safetensors: tensor %q: data_offsets end %d is past the %d-byte data section", name, end, len(body))
	}
	if end-begin != int64(numel*size) {
		return nil, fmt.Errorf("safetensors: tensor %q: data_offsets span %d bytes, shape %v of %s needs %d",
			name, end-begin, t.Shape, t.DType, numel*size)
	}
	t.Data = body[begin:end:end]
	return t, nil
}

// parseInts decodes a JSON array of integers without accepting fractions,
// exponents or strings.
func parseInts(raw json.RawMessage) ([]int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, fmt.Errorf("not a JSON array")
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, err
	}
	out := make([]int64, len(elems))
	for i, e := range elems {
		v, err := strconv.ParseInt(string(bytes.TrimSpace(e)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("element %d (%s) is not an integer", i, bytes.TrimSpace(e))
		}
		out[i] = v
	}
	return out, nil
}

// Encode serializes tensors and metadata into the safetensors format. Tensors
// are laid out in sorted name order; the JSON header is padded with spaces to
// a multiple of 8 bytes so the data section starts aligned, as the reference
// implementation does. Encode checks every tensor: a known dtype, valid UTF-8
// unique names other than "__metadata__", and data that matches the shape.
func Encode(tensors []*Tensor, metadata map[string]string) ([]byte, error) {
	sorted := make([]*Tensor, len(tensors))
	copy(sorted, tensors)
	for i, t := range sorted {
		if t == nil {
			return nil, fmt.Errorf("safetensors: encode: tensor %d is nil", i)
		}
		if t.Name == metadataKey {
			return nil, fmt.Errorf("safetensors: encode: tensor name %q is reserved", t.Name)
		}
		if !utf8.ValidString(t.Name) {
			return nil, fmt.Errorf("safetensors: encode: tensor name %q is not valid UTF-8", t.Name)
		}
		if _, err := t.checkData(); err != nil {
			return nil, fmt.Errorf("safetensors: encode: %w", err)
		}
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Name == sorted[i-1].Name {
			return nil, fmt.Errorf("safetensors: encode: duplicate tensor name %q", sorted[i].Name)
		}
	}

	var h bytes.Buffer
	h.WriteByte('{')
	first := true
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k, v := range metadata {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, fmt.Errorf("safetensors: encode: metadata %q is not valid UTF-8", k)
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		writeString(&h, metadataKey)
		h.WriteString(":{")
		for i, k := range keys {
			if i > 0 {
				h.WriteByte(',')
			}
			writeString(&h, k)
			h.WriteByte(':')
			writeString(&h, metadata[k])
		}
		h.WriteByte('}')
		first = false
	}
	offset := 0
	for _, t := range sorted {
		if !first {
			h.WriteByte(',')
		}
		first = false
		writeString(&h, t.Name)
		h.WriteString(`:{"dtype":`)
		writeString(&h, string(t.DType))
		h.WriteString(`,"shape":[`)
		for i, d := range t.Shape {
			if i > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.Itoa(d))
		}
		h.WriteString(`],"data_offsets":[`)
		h.WriteString(strconv.Itoa(offset))
		h.WriteByte(',')
		offset += len(t.Data)
		h.WriteString(strconv.Itoa(offset))
		h.WriteString("]}")
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	if h.Len() > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors: encode: header of %d bytes exceeds the %d-byte limit", h.Len(), MaxHeaderSize)
	}

	out := make([]byte, 8, 8+h.Len()+offset)
	binary.LittleEndian.PutUint64(out, uint64(h.Len()))
	out = append(out, h.Bytes()...)
	for _, t := range sorted {
		out = append(out, t.Data...)
	}
	return out, nil
}

// writeString writes s, which must be valid UTF-8, as a JSON string literal.
func writeString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[r>>4])
			b.WriteByte(hex[r&0xf])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// WriteFile encodes tensors and metadata (see Encode) and writes them to path.
func WriteFile(path string, tensors []*Tensor, metadata map[string]string) error {
	data, err := Encode(tensors, metadata)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}
