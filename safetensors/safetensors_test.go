package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// build assembles a file from a raw header and data section.
func build(header string, data []byte) []byte {
	out := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(out, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

func TestRoundTrip(t *testing.T) {
	a := NewF32("a", []int{2, 3}, []float32{1, -2, 3.5, float32(math.Inf(1)), 0, 1e-40})
	m := NewBool("mask", []int{3}, []bool{true, false, true})
	s := NewF32("scalar", nil, []float32{7})
	z := NewF32("zero", []int{0, 4}, nil)
	h := &Tensor{Name: "h", DType: F16, Shape: []int{2}, Data: []byte{0x00, 0x3c, 0x00, 0xc0}}
	md := map[string]string{"dim": "64", "quote\"<&>": "line\nbreak\x01é"}
	enc, err := Encode([]*Tensor{s, m, a, z, h}, md)
	if err != nil {
		t.Fatal(err)
	}
	hlen := binary.LittleEndian.Uint64(enc)
	if hlen%8 != 0 {
		t.Errorf("header length %d not a multiple of 8", hlen)
	}
	enc2, err := Encode([]*Tensor{h, z, a, m, s}, md)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, enc2) {
		t.Error("encoding depends on input order")
	}
	f, err := Parse(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Names(), ","); got != "a,h,mask,scalar,zero" {
		t.Errorf("names = %s", got)
	}
	if len(f.Metadata) != 2 || f.Metadata["quote\"<&>"] != "line\nbreak\x01é" || f.Metadata["dim"] != "64" {
		t.Errorf("metadata = %q", f.Metadata)
	}
	ga, _ := f.Get("a")
	va, err := ga.Float32()
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, -2, 3.5, float32(math.Inf(1)), 0, 1e-40}
	for i := range want {
		if va[i] != want[i] {
			t.Errorf("a[%d] = %v, want %v", i, va[i], want[i])
		}
	}
	if !equalInts(ga.Shape, []int{2, 3}) || ga.NumElements() != 6 {
		t.Errorf("a shape %v numel %d", ga.Shape, ga.NumElements())
	}
	gm, _ := f.Get("mask")
	vm, err := gm.Bool()
	if err != nil || len(vm) != 3 || !vm[0] || vm[1] || !vm[2] {
		t.Errorf("mask = %v, %v", vm, err)
	}
	gs, _ := f.Get("scalar")
	if gs.NumElements() != 1 || len(gs.Shape) != 0 {
		t.Errorf("scalar shape %v", gs.Shape)
	}
	gz, _ := f.Get("zero")
	if vz, err := gz.Float32(); err != nil || len(vz) != 0 || gz.NumElements() != 0 {
		t.Errorf("zero: %v %v", vz, err)
	}
	gh, _ := f.Get("h")
	if vh, err := gh.Float64(); err != nil || vh[0] != 1 || vh[1] != -2 {
		t.Errorf("h: %v %v", vh, err)
	}
	if _, ok := f.Get("nope"); ok {
		t.Error("Get of a missing name reported ok")
	}

	// No metadata: no __metadata__ key, nil Metadata.
	enc3, err := Encode([]*Tensor{a}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc3, []byte(metadataKey)) {
		t.Error("empty metadata was written")
	}
	f3, err := Parse(enc3)
	if err != nil || f3.Metadata != nil {
		t.Errorf("parse without metadata: %v %v", f3, err)
	}
}

func TestWriteReadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.safetensors")
	x := NewF32("x", []int{2, 2}, []float32{1, 2, 3, 4})
	if err := WriteFile(p, []*Tensor{x}, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := f.Get("x")
	if !bytes.Equal(got.Data, x.Data) || f.Metadata["k"] != "v" {
		t.Errorf("read back %+v %v", got, f.Metadata)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("ReadFile of a missing file succeeded")
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("ReadFile of a bad file: %v", err)
	}
	if err := WriteFile(p, []*Tensor{NewF32("x", []int{3}, []float32{1})}, nil); err == nil {
		t.Error("WriteFile of a mis-shaped tensor succeeded")
	}
}

func TestParseErrors(t *testing.T) {
	huge := make([]byte, 16)
	binary.LittleEndian.PutUint64(huge, 1<<40)
	past := make([]byte, 16)
	binary.LittleEndian.PutUint64(past, 9)
	maxU := make([]byte, 8)
	binary.LittleEndian.PutUint64(maxU, math.MaxUint64)
	d8 := make([]byte, 8)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty file"},
		{"short", []byte{1, 0, 0}, "shorter than"},
		{"header past end", past, "past the end"},
		{"huge header", huge, "exceeds"},
		{"max uint64 header", maxU, "exceeds"},
		{"not json", build("{abc", nil), "not valid JSON"},
		{"trailing garbage", build(`{}x`, nil), "not valid JSON"},
		{"array", build(`[1,2]`, nil), "not a JSON object"},
		{"null", build(`null`, nil), "not a JSON object"},
		{"blank", build(`   `, nil), "not a JSON object"},
		{"entry not object", build(`{"a":3}`, nil), `"a": entry is not a JSON object`},
		{"missing dtype", build(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, d8), `"a": missing "dtype"`},
		{"missing shape", build(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, d8), `"a": missing "shape"`},
		{"missing offsets", build(`{"a":{"dtype":"F32","shape":[1]}}`, d8), `"a": missing "data_offsets"`},
		{"unknown dtype", build(`{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,4]}}`, d8), `unknown dtype "F128"`},
		{"dtype not string", build(`{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, d8), "dtype is not a string"},
		{"negative dim", build(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, d8), "negative dimension"},
		{"fractional dim", build(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, d8), "not an integer"},
		{"string dim", build(`{"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}`, d8), "not an integer"},
		{"shape not array", build(`{"a":{"dtype":"F32","shape":null,"data_offsets":[0,4]}}`, d8), "shape: not a JSON array"},
		{"huge dim", build(`{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}`, d8), "not an integer"},
		{"shape overflow", build(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, d8), "overflows"},
		{"byte size overflow", build(`{"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,4]}}`, d8), "overflows"},
		{"one offset", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, d8), "want [begin, end]"},
		{"three offsets", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, d8), "want [begin, end]"},
		{"begin after end", build(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, d8), "begin <= end"},
		{"negative begin", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, d8), "begin <= end"},
		{"end past data", build(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, d8), "past the 8-byte data section"},
		{"length mismatch", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}`, d8), "span 8 bytes"},
		{"metadata not object", build(`{"__metadata__":"x"}`, nil), "__metadata__ is not a JSON object"},
		{"metadata value number", build(`{"__metadata__":{"k":1}}`, nil), `value of "k" is not a string`},
		{"metadata value object", build(`{"__metadata__":{"k":{}}}`, nil), `value of "k" is not a string`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(c.data)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", f)
			}
			if !strings.HasPrefix(err.Error(), "safetensors: ") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	d8 := []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}
	for name, h := range map[string]string{
		"padded":        `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}      `,
		"null metadata": `{"__metadata__":null,"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`,
		"zero-size":     `{"z":{"dtype":"F32","shape":[0,3],"data_offsets":[8,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`,
	} {
		if _, err := Parse(build(h, d8)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Parse(build(`{}`, nil)); err != nil {
		t.Errorf("empty: %v", err)
	}
}

func TestEncodeErrors(t *testing.T) {
	ok := NewF32("a", []int{1}, []float32{1})
	cases := []struct {
		name    string
		tensors []*Tensor
		md      map[string]string
		want    string
	}{
		{"nil tensor", []*Tensor{nil}, nil, "nil"},
		{"reserved", []*Tensor{NewF32(metadataKey, []int{1}, []float32{1})}, nil, "reserved"},
		{"duplicate", []*Tensor{ok, NewF32("a", []int{1}, []float32{2})}, nil, "duplicate"},
		{"bad utf8", []*Tensor{NewF32("a\xff", []int{1}, []float32{1})}, nil, "UTF-8"},
		{"mismatch", []*Tensor{NewF32("b", []int{2}, []float32{1})}, nil, "needs 8"},
		{"negative", []*Tensor{NewF32("b", []int{-1}, nil)}, nil, "negative"},
		{"unknown dtype", []*Tensor{{Name: "b", DType: "X", Shape: []int{1}, Data: []byte{1}}}, nil, "unknown dtype"},
		{"metadata utf8", []*Tensor{ok}, map[string]string{"k": "\xff"}, "UTF-8"},
	}
	for _, c := range cases {
		if _, err := Encode(c.tensors, c.md); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.name, err, c.want)
		}
	}
}

func TestDTypeSize(t *testing.T) {
	for d, want := range map[DType]int{F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, U16: 2, U32: 4, U64: 8, F8E4M3: 1, F8E5M2: 1, "Q4": 0} {
		if got := d.Size(); got != want {
			t.Errorf("%s.Size() = %d, want %d", d, got, want)
		}
		if d.Valid() != (want != 0) {
			t.Errorf("%s.Valid() = %v", d, d.Valid())
		}
	}
}

func TestDTypeIsFloat(t *testing.T) {
	for _, d := range knownDTypes {
		want := d == F16 || d == BF16 || d == F32 || d == F64
		if d.IsFloat() != want {
			t.Errorf("%s.IsFloat() = %v", d, d.IsFloat())
		}
	}
	if DType("Q4").IsFloat() || DType("").IsFloat() {
		t.Error("an unknown dtype is float")
	}
}

func TestF16(t *testing.T) {
	cases := []struct {
		bits uint16
		want float32
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xc000, -2},
		{0x3555, 0.333251953125},
		{0x7bff, 65504},
		{0x0400, 6.103515625e-05},        // smallest normal
		{0x0001, 5.960464477539063e-08},  // smallest subnormal 2^-24
		{0x03ff, 6.097555160522461e-05},  // largest subnormal
		{0x8001, -5.960464477539063e-08}, // negative subnormal
		{0x7c00, float32(math.Inf(1))},
		{0xfc00, float32(math.Inf(-1))},
	}
	for _, c := range cases {
		if got := F16ToFloat32(c.bits); got != c.want {
			t.Errorf("F16ToFloat32(%#04x) = %v, want %v", c.bits, got, c.want)
		}
	}
	if z := F16ToFloat32(0x8000); z != 0 || !math.Signbit(float64(z)) {
		t.Errorf("negative zero: %v", z)
	}
	for _, bits := range []uint16{0x7e00, 0x7c01, 0xfe00, 0x7fff} {
		if v := F16ToFloat32(bits); !math.IsNaN(float64(v)) {
			t.Errorf("F16ToFloat32(%#04x) = %v, want NaN", bits, v)
		}
	}
	// Every finite half value equals the float64 formula.
	for b := 0; b < 1<<16; b++ {
		h := uint16(b)
		e := int(h>>10) & 0x1f
		m := float64(h & 0x3ff)
		if e == 0x1f {
			continue
		}
		var want float64
		if e == 0 {
			want = math.Ldexp(m, -24)
		} else {
			want = math.Ldexp(1+m/1024, e-15)
		}
		if h&0x8000 != 0 {
			want = -want
		}
		if got := float64(F16ToFloat32(h)); got != want {
			t.Fatalf("F16ToFloat32(%#04x) = %v, want %v", h, got, want)
		}
	}
}

func TestConversions(t *testing.T) {
	le := binary.LittleEndian
	f16 := &Tensor{Name: "h", DType: F16, Shape: []int{3}, Data: []byte{0x01, 0x00, 0x00, 0x7c, 0x00, 0x7e}}
	v, err := f16.Float32()
	if err != nil || v[0] != float32(math.Ldexp(1, -24)) || !math.IsInf(float64(v[1]), 1) || !math.IsNaN(float64(v[2])) {
		t.Errorf("F16 -> f32: %v %v", v, err)
	}
	d, err := f16.Float64()
	if err != nil || d[0] != math.Ldexp(1, -24) || !math.IsInf(d[1], 1) || !math.IsNaN(d[2]) {
		t.Errorf("F16 -> f64: %v %v", d, err)
	}

	// BF16: 1.0 = 0x3f80, -3.140625 = 0xc049, smallest subnormal 0x0001, inf.
	bf := &Tensor{Name: "b", DType: BF16, Shape: []int{4}, Data: make([]byte, 8)}
	for i, bits := range []uint16{0x3f80, 0xc049, 0x0001, 0x7f80} {
		le.PutUint16(bf.Data[2*i:], bits)
	}
	d, err = bf.Float64()
	if err != nil || d[0] != 1 || d[1] != -3.140625 || d[2] != math.Ldexp(1, -133) || !math.IsInf(d[3], 1) {
		t.Errorf("BF16 -> f64: %v %v", d, err)
	}

	// F64: exact to float64, rounded to float32.
	f64 := &Tensor{Name: "d", DType: F64, Shape: []int{2}, Data: make([]byte, 16)}
	le.PutUint64(f64.Data, math.Float64bits(0.1))
	le.PutUint64(f64.Data[8:], math.Float64bits(1e-310))
	d, err = f64.Float64()
	if err != nil || d[0] != 0.1 || d[1] != 1e-310 {
		t.Errorf("F64 -> f64: %v %v", d, err)
	}
	v, err = f64.Float32()
	if err != nil || v[0] != float32(0.1) || v[1] != 0 {
		t.Errorf("F64 -> f32: %v %v", v, err)
	}

	// Integers.
	ints := map[DType][]byte{
		I8:  {0xff},
		U8:  {0xff},
		I16: {0xfe, 0xff},
		U16: {0xfe, 0xff},
		I32: {0xfd, 0xff, 0xff, 0xff},
		U32: {0x03, 0, 0, 0},
		I64: {0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		U64: {0x05, 0, 0, 0, 0, 0, 0, 0},
	}
	wants := map[DType]float64{I8: -1, U8: 255, I16: -2, U16: 65534, I32: -3, U32: 3, I64: -4, U64: 5}
	for dt, data := range ints {
		tn := &Tensor{Name: "i", DType: dt, Shape: []int{1}, Data: data}
		d, err := tn.Float64()
		if err != nil || d[0] != wants[dt] {
			t.Errorf("%s -> f64: %v %v", dt, d, err)
		}
		v, err := tn.Float32()
		if err != nil || float64(v[0]) != wants[dt] {
			t.Errorf("%s -> f32: %v %v", dt, v, err)
		}
	}

	// F8.
	e5 := &Tensor{Name: "e5", DType: F8E5M2, Shape: []int{3}, Data: []byte{0x3c, 0x01, 0x7c}}
	v, err = e5.Float32()
	if err != nil || v[0] != 1 || v[1] != float32(math.Ldexp(1, -16)) || !math.IsInf(float64(v[2]), 1) {
		t.Errorf("F8_E5M2: %v %v", v, err)
	}
	e4 := &Tensor{Name: "e4", DType: F8E4M3, Shape: []int{5}, Data: []byte{0x38, 0x01, 0x7e, 0x7f, 0xc0}}
	v, err = e4.Float32()
	if err != nil || v[0] != 1 || v[1] != float32(math.Ldexp(1, -9)) || v[2] != 448 || !math.IsNaN(float64(v[3])) || v[4] != -2 {
		t.Errorf("F8_E4M3: %v %v", v, err)
	}
}

func TestConversionErrors(t *testing.T) {
	mask := NewBool("mask", []int{2}, []bool{true, false})
	if _, err := mask.Float32(); err == nil || !strings.Contains(err.Error(), `"mask"`) || !strings.Contains(err.Error(), "BOOL") {
		t.Errorf("BOOL Float32: %v", err)
	}
	if _, err := mask.Float64(); err == nil || !strings.Contains(err.Error(), `"mask"`) {
		t.Errorf("BOOL Float64: %v", err)
	}
	x := NewF32("x", []int{2}, []float32{1, 0})
	if _, err := x.Bool(); err == nil || !strings.Contains(err.Error(), `"x"`) || !strings.Contains(err.Error(), "F32") {
		t.Errorf("F32 Bool: %v", err)
	}
	u := &Tensor{Name: "u", DType: U8, Shape: []int{3}, Data: []byte{0, 2, 255}}
	if b, err := u.Bool(); err != nil || b[0] || !b[1] || !b[2] {
		t.Errorf("U8 Bool: %v %v", b, err)
	}
	unk := &Tensor{Name: "q", DType: "Q4", Shape: []int{1}, Data: []byte{0}}
	if _, err := unk.Float32(); err == nil || !strings.Contains(err.Error(), "Q4") {
		t.Errorf("unknown dtype: %v", err)
	}
	short := &Tensor{Name: "s", DType: F32, Shape: []int{4}, Data: make([]byte, 4)}
	if _, err := short.Float32(); err == nil {
		t.Error("short data converted")
	}
	if _, err := short.Float64(); err == nil {
		t.Error("short data converted")
	}
	shortB := &Tensor{Name: "s", DType: BOOL, Shape: []int{4}, Data: make([]byte, 1)}
	if _, err := shortB.Bool(); err == nil {
		t.Error("short bool data converted")
	}
	neg := &Tensor{Name: "n", DType: F32, Shape: []int{-1}}
	if neg.NumElements() != -1 {
		t.Errorf("NumElements of negative shape = %d", neg.NumElements())
	}
	over := &Tensor{Name: "o", DType: F32, Shape: []int{math.MaxInt / 2, 3}}
	if over.NumElements() != -1 {
		t.Errorf("NumElements of overflowing shape = %d", over.NumElements())
	}
	if _, err := over.Float32(); err == nil {
		t.Error("overflowing shape converted")
	}
}
