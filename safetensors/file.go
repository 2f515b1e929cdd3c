// Package safetensors reads and writes the safetensors tensor file format:
// an 8-byte little-endian header length N, N bytes of JSON describing each
// tensor (dtype, shape, byte offsets into the data section) and optional
// string metadata, then the raw little-endian tensor data.
//
// Parse and ReadFile treat a file as hostile and accept only what the
// reference implementation (the Rust safetensors crate) accepts, or less:
//
//   - The header length is at most MaxHeaderSize bytes and lies within the
//     file.
//   - The header is a JSON object that begins with '{' and may be followed
//     only by space (0x20) padding. It is valid UTF-8, its strings hold no
//     raw control characters, invalid escapes or lone surrogates, and no
//     object in it repeats a key: a repeated tensor name, a second
//     "__metadata__", a repeated metadata key and a repeated field within an
//     entry are all errors, never "last one wins".
//   - "__metadata__", if present, is null or an object of string values.
//     Every other key names a tensor whose entry has exactly the fields
//     "dtype" (a known DType), "shape" (an array of at most MaxRank
//     non-negative integers) and "data_offsets" ([begin, end]); unknown
//     fields are errors. Numbers are integers that fit in 64 bits, with no
//     fraction, exponent, leading '+' or leading zero.
//   - Each tensor's span end-begin equals its element count times its dtype
//     size, computed without overflow.
//   - The spans, sorted by (begin, end), tile the data section exactly: the
//     first begins at 0, each begins where the previous one ends (no gap, no
//     overlap, no two tensors aliasing the same bytes), and the last ends at
//     the end of the file, so there are no trailing bytes. Zero-byte tensors
//     are allowed; a header with no tensors needs an empty data section.
//
// The header is scanned in one pass, and the scan stops at the first error:
// time and memory are linear in the header's size, a shape of more than
// MaxRank dimensions is refused before anything is allocated for it, and
// every error is one line that quotes names, keys and values cut to 64
// bytes. ReadFile reads regular files only and allocates no more than the
// file's own size (see ReadFile). WriteFile replaces its target atomically.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/isab-vk/isab-vk/internal/checked"
)

// MaxHeaderSize is the largest JSON header Parse accepts, in bytes.
const MaxHeaderSize = 100 << 20

// MaxRank is the largest number of dimensions a tensor's shape may have in a
// file that Parse or ReadFile accepts, or that Encode writes.
const MaxRank = 64

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

// Parse parses and validates a safetensors file held in data, with the
// checks listed in the package documentation. The returned tensors' Data
// slices alias data; copy them if data will be modified.
func Parse(data []byte) (*File, error) {
	f, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return f, nil
}

// parse is Parse without the "safetensors:" prefix on its errors.
func parse(data []byte) (*File, error) {
	if err := checkFileLen(int64(len(data))); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint64(data)
	if err := checkHeaderLen(n, int64(len(data))); err != nil {
		return nil, err
	}
	h, err := parseHeader(data[8 : 8+n])
	if err != nil {
		return nil, err
	}
	body := data[8+n:]
	if err := checkLayout(h.spans, int64(len(body))); err != nil {
		return nil, err
	}
	return h.file(body), nil
}

// Encode serializes tensors and metadata into the safetensors format. Tensors
// are laid out in sorted name order; the JSON header is padded with spaces to
// a multiple of 8 bytes so the data section starts aligned, as the reference
// implementation does. Encode checks every tensor: a known dtype, at most
// MaxRank dimensions, valid UTF-8 unique names other than "__metadata__", and
// data that matches the shape; so whatever it returns, Parse accepts.
func Encode(tensors []*Tensor, metadata map[string]string) ([]byte, error) {
	sorted, err := sortedTensors(tensors)
	if err != nil {
		return nil, err
	}
	h, dataLen, err := encodeHeader(sorted, metadata)
	if err != nil {
		return nil, err
	}
	total, ok := checked.Add(8+int64(len(h)), dataLen)
	if !ok || total > math.MaxInt {
		return nil, fmt.Errorf("safetensors: encode: %s of tensor data does not fit in memory", checked.Bytes(dataLen))
	}
	out := make([]byte, 8, total)
	binary.LittleEndian.PutUint64(out, uint64(len(h)))
	out = append(out, h...)
	for _, t := range sorted {
		out = append(out, t.Data...)
	}
	return out, nil
}

// sortedTensors checks each tensor for Encode and returns them sorted by
// name.
func sortedTensors(tensors []*Tensor) ([]*Tensor, error) {
	sorted := make([]*Tensor, len(tensors))
	copy(sorted, tensors)
	for i, t := range sorted {
		if t == nil {
			return nil, fmt.Errorf("safetensors: encode: tensor %d is nil", i)
		}
		if t.Name == metadataKey {
			return nil, fmt.Errorf("safetensors: encode: tensor name %s is reserved", quote(t.Name))
		}
		if !utf8.ValidString(t.Name) {
			return nil, fmt.Errorf("safetensors: encode: tensor name %s is not valid UTF-8", quote(t.Name))
		}
		if len(t.Shape) > MaxRank {
			return nil, fmt.Errorf("safetensors: encode: tensor %s has %d dimensions, more than MaxRank (%d)",
				quote(t.Name), len(t.Shape), MaxRank)
		}
		if _, err := t.checkData(); err != nil {
			return nil, fmt.Errorf("safetensors: encode: %w", err)
		}
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Name == sorted[i-1].Name {
			return nil, fmt.Errorf("safetensors: encode: duplicate tensor name %s", quote(sorted[i].Name))
		}
	}
	return sorted, nil
}

// encodeHeader writes the JSON header for the sorted tensors and metadata,
// padded with spaces to a multiple of 8 bytes, and returns it with the size
// of the data section.
func encodeHeader(sorted []*Tensor, metadata map[string]string) ([]byte, int64, error) {
	var h bytes.Buffer
	h.WriteByte('{')
	if len(metadata) > 0 {
		if err := encodeMetadata(&h, metadata); err != nil {
			return nil, 0, err
		}
	}
	var offset int64
	for _, t := range sorted {
		if h.Len() > 1 {
			h.WriteByte(',')
		}
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
		h.WriteString(strconv.FormatInt(offset, 10))
		h.WriteByte(',')
		var ok bool
		if offset, ok = checked.Add(offset, int64(len(t.Data))); !ok {
			return nil, 0, fmt.Errorf("safetensors: encode: the data section overflows a 64-bit offset at tensor %s", quote(t.Name))
		}
		h.WriteString(strconv.FormatInt(offset, 10))
		h.WriteString("]}")
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	if h.Len() > MaxHeaderSize {
		return nil, 0, fmt.Errorf("safetensors: encode: header of %d bytes exceeds the %d-byte limit", h.Len(), MaxHeaderSize)
	}
	return h.Bytes(), offset, nil
}

// encodeMetadata writes the "__metadata__" member, keys sorted.
func encodeMetadata(h *bytes.Buffer, metadata map[string]string) error {
	keys := make([]string, 0, len(metadata))
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("safetensors: encode: metadata %s is not valid UTF-8", quote(k))
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	writeString(h, metadataKey)
	h.WriteString(":{")
	for i, k := range keys {
		if i > 0 {
			h.WriteByte(',')
		}
		writeString(h, k)
		h.WriteByte(':')
		writeString(h, metadata[k])
	}
	h.WriteByte('}')
	return nil
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
