package settransformer

import (
	"context"
	"math/rand"
	"strconv"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/safetensors"
)

// FuzzLoad drives the Set Transformer load path on arbitrary bytes:
// parsing, the kind and configuration from metadata and options, every
// key's shape and dtype, the upload, and for a small model that loads a
// forward pass. Nothing may panic or hang. Seeds are small state_dicts of
// every kind, made here.
func FuzzLoad(f *testing.F) {
	for i, c := range []struct {
		kind           string
		dimIn, dim, h  int
		m              int
		ln             bool
		heads, numInds int64
	}{
		{KindSAB, 3, 4, 2, 0, false, 0, 0},
		{KindISAB, 2, 4, 1, 3, true, 0, 3},
		{KindPMA, 4, 4, 2, 2, false, 3, 0},
		{KindModel, 2, 4, 2, 2, false, 0, 0},
	} {
		s := newStateDict(uint64(i+1), map[string]string{"kind": c.kind, "heads": strconv.Itoa(c.h)})
		switch c.kind {
		case KindSAB:
			refSAB(s, "", c.dimIn, c.dim, c.h, c.ln)
		case KindISAB:
			refISAB(s, "", c.dimIn, c.dim, c.h, c.m, c.ln)
		case KindPMA:
			refPMA(s, "", c.dim, c.h, c.m, c.ln)
		case KindModel:
			refISAB(s, "enc.0.", c.dimIn, c.dim, c.h, c.m, c.ln)
			refISAB(s, "enc.1.", c.dim, c.dim, c.h, c.m, c.ln)
			refPMA(s, "dec.0.", c.dim, c.h, 4, c.ln)
			refSAB(s, "dec.1.", c.dim, c.dim, c.h, c.ln)
			refSAB(s, "dec.2.", c.dim, c.dim, c.h, c.ln)
			s.add("dec.3.weight", 0.5, 3, c.dim)
			s.add("dec.3.bias", 0.1, 3)
		}
		var ts []*safetensors.Tensor
		for _, name := range s.f.Names() {
			ts = append(ts, s.f.Tensors[name])
		}
		data, err := safetensors.Encode(ts, s.f.Metadata)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, c.heads, c.numInds)
	}
	dev := testutil.Device(f)
	f.Fuzz(func(t *testing.T, data []byte, heads, numInds int64) {
		if len(data) > 1<<20 {
			return
		}
		file, err := safetensors.Parse(data)
		if err != nil {
			return
		}
		m, err := LoadFile(dev, file, Options{Heads: int(heads), NumInds: int(numInds)})
		if err != nil {
			return
		}
		defer m.Close()
		cfg := m.Config()
		if cfg.DimIn > 64 || cfg.Dim > 64 {
			return // valid, but a pass would only slow the fuzzer down
		}
		r := rand.New(rand.NewSource(1))
		x := make([]float32, 2*5*cfg.DimIn)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		if _, _, err := m.ForwardHost(context.Background(), x, []int{2, 5, cfg.DimIn}); err != nil {
			t.Fatalf("forward pass of a model that loaded (%+v): %v", cfg, err)
		}
	})
}
