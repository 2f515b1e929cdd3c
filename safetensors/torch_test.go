package safetensors

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
)

// pk builds a pickle the way torch.save's protocol 2 writes a state_dict.
type pk struct{ b []byte }

func (p *pk) op(s string) *pk { p.b = append(p.b, s...); return p }
func (p *pk) global(module, name string) *pk {
	return p.op("c" + module + "\n" + name + "\n")
}
func (p *pk) str(s string) *pk {
	p.b = append(p.b, 'X')
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(len(s)))
	return p.op(s)
}
func (p *pk) int(v int64) *pk {
	if v >= math.MinInt32 && v <= math.MaxInt32 {
		p.b = append(p.b, 'J')
		p.b = binary.LittleEndian.AppendUint32(p.b, uint32(int32(v)))
		return p
	}
	p.b = append(p.b, 0x8a, 8)
	p.b = binary.LittleEndian.AppendUint64(p.b, uint64(v))
	return p
}
func (p *pk) ints(vs ...int64) *pk {
	p.op("(")
	for _, v := range vs {
		p.int(v)
	}
	return p.op("t")
}

// ptTensor describes one state_dict entry of a test .pt file.
type ptTensor struct {
	name, storageType, key string
	numel, offset          int64
	shape, stride          []int64
}

// ptPickle is the data.pkl of a state_dict holding ts.
func ptPickle(ts []ptTensor) []byte {
	p := &pk{}
	p.op("\x80\x02").global("collections", "OrderedDict").op(")R(")
	for _, t := range ts {
		p.str(t.name).global("torch._utils", "_rebuild_tensor_v2").op("(")
		p.op("(").str("storage").global("torch", t.storageType).str(t.key).str("cpu").int(t.numel).op("tQ")
		p.int(t.offset).ints(t.shape...).ints(t.stride...).op("\x89")
		p.global("collections", "OrderedDict").op(")R").op("tR")
	}
	return p.op("u.").b
}

// ptEntry is one zip entry.
type ptEntry struct {
	name   string
	data   []byte
	method uint16
}

// ptZip writes entries as a zip archive.
func ptZip(t testing.TB, entries []ptEntry) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		f, err := w.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ptFile is a .pt with the given pickle and storages (key -> bytes).
func ptFile(t testing.TB, pkl []byte, storages map[string][]byte) []byte {
	entries := []ptEntry{{name: "archive/data.pkl", data: pkl}}
	keys := make([]string, 0, len(storages))
	for k := range storages {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		entries = append(entries, ptEntry{name: "archive/data/" + k, data: storages[k]})
	}
	entries = append(entries, ptEntry{name: "archive/version", data: []byte("3\n")}, ptEntry{name: "archive/byteorder", data: []byte("little")})
	return ptZip(t, entries)
}

func f32Bytes(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func iota32(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i)
	}
	return v
}

// TestTorchFixture checks that the .pt that testdata/gen.py saves with plain
// torch.save holds exactly the tensors of the safetensors weights of the
// same case.
func TestTorchFixture(t *testing.T) {
	pt, err := ReadTorchFile(testutil.Testdata(t, "odd_mask_selfattend.weights.pt"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := ReadFile(testutil.Testdata(t, "odd_mask_selfattend.weights.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if pt.Metadata != nil {
		t.Errorf("metadata %v, want none", pt.Metadata)
	}
	if !slices.Equal(pt.Names(), st.Names()) {
		t.Fatalf("names %v, want %v", pt.Names(), st.Names())
	}
	for _, name := range st.Names() {
		a, b := pt.Tensors[name], st.Tensors[name]
		if a.Name != name || a.DType != b.DType || !slices.Equal(a.Shape, b.Shape) || !bytes.Equal(a.Data, b.Data) {
			t.Errorf("%s: %s %v (%d bytes), want %s %v (%d bytes), data equal %v", name, a.DType, a.Shape, len(a.Data), b.DType, b.Shape, len(b.Data), bytes.Equal(a.Data, b.Data))
		}
	}
	// ReadAnyFile dispatches on the zip magic.
	for _, name := range []string{"odd_mask_selfattend.weights.pt", "odd_mask_selfattend.weights.safetensors"} {
		f, err := ReadAnyFile(testutil.Testdata(t, name))
		if err != nil || !slices.Equal(f.Names(), st.Names()) {
			t.Errorf("ReadAnyFile(%s): %v", name, err)
		}
	}
	if _, err := ReadAnyFile(t.TempDir()); err == nil || !strings.Contains(err.Error(), "regular file") {
		t.Errorf("ReadAnyFile(directory): %v", err)
	}
}

// TestTorchViews checks storage offsets, strides, shared storages and the
// dtypes.
func TestTorchViews(t *testing.T) {
	f16 := []byte{0x00, 0x3c, 0x00, 0x40, 0x00, 0x42} // 1, 2, 3
	f64 := binary.LittleEndian.AppendUint64(nil, math.Float64bits(-2.5))
	ts := []ptTensor{
		{name: "slice", storageType: "FloatStorage", key: "0", numel: 12, offset: 2, shape: []int64{2, 3}, stride: []int64{3, 1}},
		{name: "transpose", storageType: "FloatStorage", key: "0", numel: 12, offset: 0, shape: []int64{3, 2}, stride: []int64{1, 3}},
		{name: "expand", storageType: "FloatStorage", key: "0", numel: 12, offset: 4, shape: []int64{2, 2}, stride: []int64{0, 1}},
		{name: "step", storageType: "FloatStorage", key: "0", numel: 12, offset: 1, shape: []int64{3, 1}, stride: []int64{4, 7}},
		{name: "scalar", storageType: "FloatStorage", key: "0", numel: 12, offset: 11, shape: nil, stride: nil},
		{name: "empty", storageType: "FloatStorage", key: "0", numel: 12, offset: 12, shape: []int64{0, 5}, stride: []int64{5, 1}},
		{name: "half", storageType: "HalfStorage", key: "1", numel: 3, offset: 1, shape: []int64{2}, stride: []int64{1}},
		{name: "bf16", storageType: "BFloat16Storage", key: "2", numel: 3, offset: 0, shape: []int64{3}, stride: []int64{1}},
		{name: "double", storageType: "DoubleStorage", key: "3", numel: 1, offset: 0, shape: []int64{1, 1}, stride: []int64{7, 9}},
	}
	data := ptFile(t, ptPickle(ts), map[string][]byte{"0": f32Bytes(iota32(12)...), "1": f16, "2": f16, "3": f64})
	f, err := ParseTorch(data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{
		"slice": {2, 3, 4, 5, 6, 7}, "transpose": {0, 3, 1, 4, 2, 5}, "expand": {4, 5, 4, 5},
		"step": {1, 5, 9}, "scalar": {11}, "empty": {}, "half": {2, 3}, "double": {-2.5},
	}
	for name, w := range want {
		tn, ok := f.Get(name)
		if !ok {
			t.Fatalf("no tensor %s", name)
		}
		got, err := tn.Float32()
		if err != nil || !slices.Equal(got, w) {
			t.Errorf("%s: %v (%v), want %v", name, got, err, w)
		}
	}
	for name, dt := range map[string]DType{"slice": F32, "half": F16, "bf16": BF16, "double": F64} {
		if f.Tensors[name].DType != dt {
			t.Errorf("%s: dtype %s, want %s", name, f.Tensors[name].DType, dt)
		}
	}
	if s := f.Tensors["empty"].Shape; !slices.Equal(s, []int{0, 5}) {
		t.Errorf("empty: shape %v", s)
	}
	// The result encodes as safetensors.
	if _, err := Encode(slices.Collect(func(yield func(*Tensor) bool) {
		for _, n := range f.Names() {
			if !yield(f.Tensors[n]) {
				return
			}
		}
	}), nil); err != nil {
		t.Fatal(err)
	}
}

type torchHostileCase struct {
	name string
	data []byte
	want string
}

func torchHostileCases(t testing.TB) []torchHostileCase {
	w := f32Bytes(1, 2, 3, 4)
	one := []ptTensor{{name: "w", storageType: "FloatStorage", key: "0", numel: 4, shape: []int64{2, 2}, stride: []int64{2, 1}}}
	st := map[string][]byte{"0": w}
	good := ptFile(t, ptPickle(one), st)
	with := func(mut func(*ptTensor)) []byte {
		c := one[0]
		c.shape, c.stride = slices.Clone(c.shape), slices.Clone(c.stride)
		mut(&c)
		return ptFile(t, ptPickle([]ptTensor{c}), st)
	}
	pkl := func(p *pk) []byte { return ptFile(t, p.b, st) }
	stateOf := func(value func(*pk)) []byte {
		p := (&pk{}).op("\x80\x02}(").str("w")
		value(p)
		return pkl(p.op("u."))
	}
	corrupt := bytes.Clone(good)
	corrupt[bytes.Index(corrupt, w)] ^= 1 // storage byte: CRC mismatch
	huge := (&pk{}).op("\x80\x02\x8e")
	huge.b = binary.LittleEndian.AppendUint64(huge.b, 1<<60)
	return []torchHostileCase{
		{"empty", nil, "empty"},
		{"not a zip", []byte("PK\x03\x04garbage"), "not a valid zip"},
		{"truncated zip", good[:len(good)-30], "zip"},
		{"no data.pkl", ptZip(t, []ptEntry{{name: "archive/data/0", data: w}}), "no FOLDER/data.pkl"},
		{"two data.pkl", ptZip(t, []ptEntry{{name: "a/data.pkl", data: ptPickle(nil)}, {name: "b/data.pkl", data: ptPickle(nil)}}), "2 FOLDER/data.pkl"},
		{"duplicate entry", ptZip(t, []ptEntry{{name: "a/data.pkl", data: ptPickle(nil)}, {name: "a/data.pkl", data: ptPickle(nil)}}), "appears twice"},
		{"deflated entry", ptZip(t, []ptEntry{{name: "a/data.pkl", data: ptPickle(nil), method: zip.Deflate}}), "compressed"},
		{"crc mismatch", corrupt, "CRC-32"},
		{"big endian", ptZip(t, []ptEntry{{name: "a/data.pkl", data: ptPickle(nil)}, {name: "a/byteorder", data: []byte("big")}}), "little-endian"},
		{"os.system", pkl((&pk{}).op("\x80\x02").global("os", "system").op("(").str("id").op("tR.")), `"os.system" is not allowed`},
		{"builtins.eval via STACK_GLOBAL", pkl((&pk{}).op("\x80\x04").str("builtins").str("eval").op("\x93(").str("1").op("tR.")), `"builtins.eval" is not allowed`},
		{"posix.system", pkl((&pk{}).op("\x80\x02").global("posix", "system").op(".")), `"posix.system"`},
		{"__builtin__.object", pkl((&pk{}).op("\x80\x02").global("__builtin__", "object").op(".")), `"__builtin__.object"`},
		{"unknown storage type", with(func(c *ptTensor) { c.storageType = "ComplexFloatStorage" }), `"torch.ComplexFloatStorage" is not allowed`},
		{"storage type as a function", pkl((&pk{}).op("\x80\x02").global("torch", "FloatStorage").op(")R.")), "Callable"},
		{"offset past the storage", with(func(c *ptTensor) { c.offset = 1 }), "past the storage"},
		{"stride past the storage", with(func(c *ptTensor) { c.stride[0] = 3 }), "past the storage"},
		{"empty view past the storage", with(func(c *ptTensor) { c.shape[0], c.offset = 0, 5 }), "past the storage"},
		{"huge shape", with(func(c *ptTensor) { c.shape = []int64{1 << 40, 1 << 40}; c.stride = []int64{0, 0} }), "overflows"},
		{"huge expanded view", with(func(c *ptTensor) { c.shape = []int64{1 << 30, 1 << 10}; c.stride = []int64{0, 0} }), "exceed 4 times"},
		{"negative offset", with(func(c *ptTensor) { c.offset = -1 }), "offset"},
		{"rank 65", with(func(c *ptTensor) { c.shape = make([]int64, 65); c.stride = make([]int64, 65) }), "more than 64"},
		{"sizes and strides differ", with(func(c *ptTensor) { c.stride = []int64{1} }), "2 sizes but 1 strides"},
		{"storage numel too large", with(func(c *ptTensor) { c.numel = 5 }), "the entry has 16"},
		{"storage numel overflows", with(func(c *ptTensor) { c.numel = 1 << 62 }), "more than 2^63"},
		{"missing storage", with(func(c *ptTensor) { c.key = "9" }), `no zip entry "archive/data/9"`},
		{"truncated storage", ptFile(t, ptPickle(one), map[string][]byte{"0": w[:15]}), "the entry has 15"},
		{"truncated pickle", ptFile(t, ptPickle(one)[:40], st), "pickle"},
		{"huge BINBYTES8", pkl(huge), "past its end"},
		{"bytes after STOP", pkl((&pk{}).op("\x80\x02}.N")), "follow its STOP"},
		{"no STOP", pkl((&pk{}).op("\x80\x02}")), "no STOP"},
		{"INST opcode", pkl((&pk{}).op("\x80\x02(ios\nsystem\n.")), "not allowed"},
		{"NEWOBJ opcode", pkl((&pk{}).op("\x80\x02\x81.")), "not allowed"},
		{"long LONG4", pkl((&pk{}).op("\x80\x02\x8b\x00\x10\x00\x00" + strings.Repeat("\x01", 4096) + ".")), "integer of 4096 bytes"},
		{"not a dict", pkl((&pk{}).op("\x80\x02]N.")), "not a state_dict"},
		{"value not a tensor", stateOf(func(p *pk) { p.int(1) }), `"w" is a int, not a tensor`},
		{"key not a string", pkl((&pk{}).op("\x80\x02}(").int(1).int(2).op("u.")), "not a string"},
		{"duplicate key", pkl((&pk{}).op("\x80\x02}(").str("a").int(1).str("a").int(2).op("u.")), `"a" appears twice`},
		{"persistent id not a tuple", stateOf(func(p *pk) { p.str("x").op("Q") }), "5-tuple"},
		{"backward hooks", stateOf(func(p *pk) {
			p.global("torch._utils", "_rebuild_tensor_v2").op("(")
			p.op("(").str("storage").global("torch", "FloatStorage").str("0").str("cpu").int(4).op("tQ")
			p.int(0).ints(2, 2).ints(2, 1).op("\x89}(").int(1).int(2).op("utR")
		}), "backward hooks"},
		{"empty stack", pkl((&pk{}).op("\x80\x02R.")), "pickle"},
		{"long name", pkl((&pk{}).op("\x80\x02").global("os", strings.Repeat("x", 5000)).op(".")), "bytes)"},
	}
}

// TestTorchHostile checks that each hostile file is refused with one line
// that names the problem.
func TestTorchHostile(t *testing.T) {
	for _, c := range torchHostileCases(t) {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			_, err := ParseTorch(c.data)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "safetensors: ") || strings.Contains(msg, "\n") || len(msg) > 400 {
				t.Errorf("error is not one short prefixed line: %q", msg)
			}
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not mention %q", msg, c.want)
			}
		})
	}
}

// TestReadTorchFile checks the file rules: regular files only, and the
// path in the message.
func TestReadTorchFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadTorchFile(dir); err == nil || !strings.Contains(err.Error(), "regular file") {
		t.Errorf("directory: %v", err)
	}
	p := filepath.Join(dir, "bad.pt")
	if err := os.WriteFile(p, []byte("PK\x03\x04"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAnyFile(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "zip") {
		t.Errorf("bad zip: %v", err)
	}
	if _, err := ReadTorchFile(testutil.Testdata(t, "tiny_basic.weights.safetensors")); err == nil || !strings.Contains(err.Error(), "magic") {
		t.Errorf("safetensors file: %v", err)
	}
}
