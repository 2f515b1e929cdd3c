package safetensors

import (
	"os"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
)

// FuzzTorch checks that ParseTorch never panics, that its errors are one
// prefixed line, and that whatever it accepts has tensors of a known dtype
// whose data is exactly what their shape needs and that encode as
// safetensors. (It is not called FuzzParseTorch so that the Makefile's
// -fuzz FuzzParse still names one target.)
func FuzzTorch(f *testing.F) {
	if b, err := os.ReadFile(testutil.Testdata(f, "odd_mask_selfattend.weights.pt")); err == nil {
		f.Add(b)
	}
	for _, c := range torchHostileCases(f) {
		f.Add(c.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ParseTorch(data)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "safetensors: ") || strings.Contains(msg, "\n") {
				t.Fatalf("error is not one prefixed line: %q", msg)
			}
			return
		}
		var ts []*Tensor
		for _, name := range file.Names() {
			tn := file.Tensors[name]
			if _, err := tn.checkData(); err != nil {
				t.Fatalf("accepted tensor %s: %v", name, err)
			}
			ts = append(ts, tn)
		}
		if _, err := Encode(ts, nil); err != nil {
			t.Fatalf("accepted tensors do not encode: %v", err)
		}
	})
}
