package clustering

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/safetensors"
)

// f32 is a float32 tensor of the given shape filled with v.
func f32(name string, v float32, shape ...int) *safetensors.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	data := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
	}
	return &safetensors.Tensor{Name: name, DType: "F32", Shape: shape, Data: data}
}

func writeBench(t *testing.T, tensors ...*safetensors.Tensor) string {
	t.Helper()
	b, err := safetensors.Encode(tensors, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bench.safetensors")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReadBenchmark reads a small benchmark of 3 sets of 7 points and 2
// components, and refuses ones with a missing or mis-shaped tensor.
func TestReadBenchmark(t *testing.T) {
	good := []*safetensors.Tensor{f32("x", 0.5, 3, 7, 2), f32("pi", 0.5, 3, 2), f32("mu", 1, 3, 2, 2), f32("sigma", 2, 3, 2, 2)}
	b, err := readBenchmark(writeBench(t, good...), 2)
	if err != nil {
		t.Fatal(err)
	}
	m := b.truth(2, 2)
	if len(b.x) != 42 || len(b.x32) != 42 || len(m.Pi) != 2 || m.Mu[1] != [2]float64{1, 1} || m.Sigma[0] != [2]float64{2, 2} {
		t.Errorf("benchmark %v, truth %+v", b.shape, m)
	}
	for _, c := range []struct {
		want    string
		tensors []*safetensors.Tensor
	}{
		{"needs x", good[1:]},
		{"needs x", []*safetensors.Tensor{f32("x", 0, 3, 7, 3), good[1], good[2], good[3]}},
		{`lacks "sigma"`, good[:3]},
		{"pi has shape [3 3]", []*safetensors.Tensor{good[0], f32("pi", 0, 3, 3), good[2], good[3]}},
	} {
		if _, err := readBenchmark(writeBench(t, c.tensors...), 2); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one saying %q", err, c.want)
		}
	}
}
