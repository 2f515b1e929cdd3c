package safetensors

import (
	"cmp"
	"fmt"
	"slices"
)

// compareSpans orders spans by begin, then end.
func compareSpans(a, b span) int {
	return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end))
}

// checkLayout verifies the rules of the reference implementation for the
// data section of dataLen bytes: sorted by (begin, end), the tensors' byte
// ranges start at 0, each begins exactly where the previous one ends (no
// gap, no overlap, no two tensors sharing bytes) and the last ends at
// dataLen, so no byte is unaccounted for. Zero-byte tensors are allowed
// wherever a tensor may begin. It sorts spans in place; its errors lack the
// "safetensors:" prefix.
func checkLayout(spans []span, dataLen int64) error {
	for _, sp := range spans {
		if sp.end > dataLen {
			return fmt.Errorf("tensor %s: data_offsets end %d is past the %d-byte data section",
				quote(sp.t.Name), sp.end, dataLen)
		}
	}
	if !slices.IsSortedFunc(spans, compareSpans) {
		slices.SortFunc(spans, compareSpans)
	}
	var pos int64
	for i, sp := range spans {
		switch {
		case sp.begin > pos && i == 0:
			return fmt.Errorf("tensor %s begins at byte %d, but the first tensor must begin at byte 0 (%d-byte gap)",
				quote(sp.t.Name), sp.begin, sp.begin)
		case sp.begin > pos:
			return fmt.Errorf("tensor %s begins at byte %d but %s ends at byte %d (%d-byte gap)",
				quote(sp.t.Name), sp.begin, quote(spans[i-1].t.Name), pos, sp.begin-pos)
		case sp.begin < pos:
			return fmt.Errorf("tensor %s begins at byte %d but %s ends at byte %d (overlap)",
				quote(sp.t.Name), sp.begin, quote(spans[i-1].t.Name), pos)
		}
		pos = sp.end
	}
	if pos != dataLen {
		if len(spans) == 0 {
			return fmt.Errorf("data section is %d bytes but the header has no tensors (%s)", dataLen, trailing(dataLen))
		}
		return fmt.Errorf("data section is %d bytes but the tensors end at byte %d (%s)", dataLen, pos, trailing(dataLen-pos))
	}
	return nil
}

// file attaches the data section body, whose layout checkLayout has
// accepted, to the header's tensors and returns the File.
func (h *header) file(body []byte) *File {
	for _, sp := range h.spans {
		sp.t.Data = body[sp.begin:sp.end:sp.end]
	}
	return &File{Metadata: h.metadata, Tensors: h.tensors}
}

// trailing describes n unaccounted bytes at the end of the data section.
func trailing(n int64) string {
	if n == 1 {
		return "1 trailing byte"
	}
	return fmt.Sprintf("%d trailing bytes", n)
}
