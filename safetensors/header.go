package safetensors

import (
	"bytes"
	"fmt"
	"math"

	"github.com/isab-vk/isab-vk/internal/checked"
)

// header is a parsed safetensors header: the metadata and the tensors, whose
// Data is attached only once the layout has been checked.
type header struct {
	metadata map[string]string
	sawMeta  bool
	tensors  map[string]*Tensor
	// spans holds each tensor's byte range, in header order.
	spans []span
	// tslab and dslab are what tensors and shapes are carved from, so that a
	// header of a million entries costs thousands of allocations, not
	// millions; chunk is the size of the last tensor slab.
	tslab []Tensor
	dslab []int
	chunk int
}

// span is the byte range [begin, end) of tensor t in the data section.
type span struct {
	begin, end int64
	t          *Tensor
}

// entry collects the fields of one tensor entry while it is scanned.
type entry struct {
	seen       uint8 // fieldDType | fieldShape | fieldOffsets
	dtype      DType
	shape      []int
	begin, end int64
}

// The bits of entry.seen.
const (
	fieldDType = 1 << iota
	fieldShape
	fieldOffsets
)

// tooManyDims is the error for a shape of more than MaxRank dimensions.
var tooManyDims = fmt.Sprintf("shape has more than %d dimensions (the MaxRank limit)", MaxRank)

// syntaxError wraps an error of the JSON syntax.
func syntaxError(err error) error { return fmt.Errorf("header is not valid JSON: %w", err) }

// parseHeader parses the JSON header buf and checks each entry on its own;
// checkLayout then checks the entries against each other and the data. Its
// errors lack the "safetensors:" prefix.
func parseHeader(buf []byte) (*header, error) {
	s := &scanner{buf: buf}
	if len(buf) == 0 {
		return nil, fmt.Errorf("header is empty, not a JSON object")
	}
	if s.peek() != '{' {
		return nil, fmt.Errorf("header is not a JSON object: it begins with %s, not '{'", s.describe())
	}
	s.pos++
	s.skipWS()
	n := estimateEntries(buf)
	h := &header{tensors: make(map[string]*Tensor, n), spans: make([]span, 0, n)}
	if s.peek() == '}' {
		s.pos++
	} else {
		for more := true; more; {
			if err := h.member(s); err != nil {
				return nil, err
			}
			var err error
			if more, err = s.next('}', "a header entry"); err != nil {
				return nil, syntaxError(err)
			}
		}
	}
	for i := s.pos; i < len(buf); i++ {
		if buf[i] != ' ' {
			s.pos = i
			return nil, syntaxError(s.errorf("%s after the closing brace (only space padding may follow)", s.describe()))
		}
	}
	return h, nil
}

// minEntry is the fewest bytes a tensor entry takes in a header:
// "":{"dtype":"U8","shape":[],"data_offsets":[0,0]},
const minEntry = 50

// estimateEntries guesses how many tensor entries the header buf holds, so
// that the map and span list are allocated once: the count of
// "data_offsets" keys, which is exact unless names or metadata hold that
// text, capped at what buf has room for.
func estimateEntries(buf []byte) int {
	return min(bytes.Count(buf, []byte(`"data_offsets"`)), len(buf)/minEntry+1)
}

// member scans one "key": value pair of the header object.
func (h *header) member(s *scanner) error {
	if s.peek() != '"' {
		return syntaxError(s.errorf("expected a string key, found %s", s.describe()))
	}
	key, err := s.str()
	if err != nil {
		return syntaxError(err)
	}
	if err := s.expect(':', key); err != nil {
		return syntaxError(err)
	}
	if string(key) == metadataKey {
		if h.sawMeta {
			return fmt.Errorf("duplicate key %s in the header", quote(metadataKey))
		}
		h.sawMeta = true
		h.metadata, err = s.metadata()
		return err
	}
	name := string(key)
	t, sp, err := h.entry(s, name)
	if err != nil {
		return fmt.Errorf("tensor %s: %w", quote(name), err)
	}
	// One map operation instead of a lookup and an insert: a name seen
	// before leaves the count unchanged (and the header is refused).
	n := len(h.tensors)
	if h.tensors[name] = t; len(h.tensors) == n {
		return fmt.Errorf("duplicate tensor name %s in the header", quote(name))
	}
	h.spans = append(h.spans, sp)
	return nil
}

// metadata scans the "__metadata__" value: null (no metadata) or an object
// of string values with distinct keys.
func (s *scanner) metadata() (map[string]string, error) {
	if s.null() {
		return nil, nil
	}
	if s.peek() != '{' {
		return nil, fmt.Errorf("%s is not a JSON object (found %s)", metadataKey, s.describe())
	}
	s.pos++
	s.skipWS()
	md := make(map[string]string)
	if s.peek() == '}' {
		s.pos++
		return md, nil
	}
	for {
		k, err := s.str()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", metadataKey, err)
		}
		if _, dup := md[string(k)]; dup {
			return nil, fmt.Errorf("%s: duplicate key %s", metadataKey, quote(string(k)))
		}
		key := string(k)
		if err := s.expect(':', k); err != nil {
			return nil, fmt.Errorf("%s: %w", metadataKey, err)
		}
		if s.peek() != '"' {
			return nil, fmt.Errorf("%s: value of %s is not a string (found %s)", metadataKey, quote(key), s.describe())
		}
		v, err := s.str()
		if err != nil {
			return nil, fmt.Errorf("%s: value of %s: %w", metadataKey, quote(key), err)
		}
		md[key] = string(v)
		more, err := s.next('}', "a metadata value")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", metadataKey, err)
		}
		if !more {
			return md, nil
		}
	}
}

// entry scans the object that describes the tensor called name and checks
// it on its own: exactly the fields dtype, shape and data_offsets, a known
// dtype, at most MaxRank non-negative dimensions, and offsets that span the
// shape's byte size.
func (h *header) entry(s *scanner, name string) (*Tensor, span, error) {
	if s.peek() != '{' {
		return nil, span{}, fmt.Errorf("entry is not a JSON object (found %s)", s.describe())
	}
	s.pos++
	s.skipWS()
	var e entry
	if s.peek() == '}' {
		s.pos++
	} else {
		for more := true; more; {
			k, err := s.str()
			if err != nil {
				return nil, span{}, err
			}
			if err := s.expect(':', k); err != nil {
				return nil, span{}, err
			}
			if err := h.field(s, k, &e); err != nil {
				return nil, span{}, err
			}
			if more, err = s.next('}', "a field of the entry"); err != nil {
				return nil, span{}, err
			}
		}
	}
	for _, f := range [...]struct {
		bit  uint8
		name string
	}{{fieldDType, "dtype"}, {fieldShape, "shape"}, {fieldOffsets, "data_offsets"}} {
		if e.seen&f.bit == 0 {
			return nil, span{}, fmt.Errorf("missing %q", f.name)
		}
	}
	if err := e.check(); err != nil {
		return nil, span{}, err
	}
	t := h.newTensor()
	*t = Tensor{Name: name, DType: e.dtype, Shape: e.shape}
	return t, span{e.begin, e.end, t}, nil
}

// field scans the value of the entry field key into e. Unknown and repeated
// fields are errors.
func (h *header) field(s *scanner, key []byte, e *entry) error {
	var bit uint8
	switch string(key) {
	case "dtype":
		bit = fieldDType
	case "shape":
		bit = fieldShape
	case "data_offsets":
		bit = fieldOffsets
	default:
		return fmt.Errorf("unknown field %s", quote(string(key)))
	}
	if e.seen&bit != 0 {
		return fmt.Errorf("duplicate key %s", quote(string(key)))
	}
	e.seen |= bit
	switch bit {
	case fieldDType:
		if s.peek() != '"' {
			return fmt.Errorf("dtype is not a string (found %s)", s.describe())
		}
		v, err := s.str()
		if err != nil {
			return fmt.Errorf("dtype: %w", err)
		}
		if e.dtype = dtypeOf(v); e.dtype == "" {
			return fmt.Errorf("unknown dtype %s", quote(string(v)))
		}
	case fieldShape:
		dims, err := s.ints(MaxRank, "shape", tooManyDims)
		if err != nil {
			return err
		}
		for _, d := range dims {
			if d < 0 {
				return fmt.Errorf("negative dimension %d in shape", d)
			}
			if d > math.MaxInt {
				return fmt.Errorf("dimension %d does not fit in an int", d)
			}
		}
		e.shape = h.newShape(dims)
	case fieldOffsets:
		offs, err := s.ints(2, "data_offsets", "data_offsets has more than 2 values, want [begin, end]")
		if err != nil {
			return err
		}
		if len(offs) != 2 {
			return fmt.Errorf("data_offsets has %d values, want [begin, end]", len(offs))
		}
		e.begin, e.end = offs[0], offs[1]
	}
	return nil
}

// check verifies that the offsets of e are ordered and span exactly the
// byte size of its shape.
func (e *entry) check() error {
	if e.begin < 0 || e.end < e.begin {
		return fmt.Errorf("data_offsets [%d, %d] are not 0 <= begin <= end", e.begin, e.end)
	}
	numel, ok := checked.Product(e.shape...)
	if !ok {
		return fmt.Errorf("element count of shape %s overflows", formatShape(e.shape))
	}
	size, ok := checked.Mul(int64(numel), int64(e.dtype.Size()))
	if !ok {
		return fmt.Errorf("byte size of shape %s of %s overflows", formatShape(e.shape), e.dtype)
	}
	if span := e.end - e.begin; span != size {
		return fmt.Errorf("data_offsets [%d, %d] span %d bytes, shape %s of %s needs %d",
			e.begin, e.end, span, formatShape(e.shape), e.dtype, size)
	}
	return nil
}

// formatShape writes a shape as "[2 3 4]" for messages; past 16
// dimensions it shows the first 16 and the rank, so the result is bounded.
func formatShape(shape []int) string {
	const show = 16
	if len(shape) <= show {
		return fmt.Sprint(shape)
	}
	s := fmt.Sprint(shape[:show])
	return fmt.Sprintf("%s… (%d dimensions)]", s[:len(s)-1], len(shape))
}

// dtypeOf returns the known DType spelled v, or "" when v names none.
func dtypeOf(v []byte) DType {
	for _, d := range knownDTypes {
		if string(v) == string(d) {
			return d
		}
	}
	return ""
}

// newTensor returns a zero Tensor carved from the header's tensor slab.
func (h *header) newTensor() *Tensor {
	if len(h.tslab) == 0 {
		h.chunk = min(max(2*h.chunk, 16), 4096)
		h.tslab = make([]Tensor, h.chunk)
	}
	t := &h.tslab[0]
	h.tslab = h.tslab[1:]
	return t
}

// newShape copies dims into a shape carved from the header's shape slab,
// with its capacity cut so that appending to it cannot touch a neighbour.
func (h *header) newShape(dims []int64) []int {
	if cap(h.dslab)-len(h.dslab) < len(dims) {
		h.dslab = make([]int, 0, max(4*h.chunk, 64, len(dims)))
	}
	start := len(h.dslab)
	for _, d := range dims {
		h.dslab = append(h.dslab, int(d))
	}
	return h.dslab[start:len(h.dslab):len(h.dslab)]
}
