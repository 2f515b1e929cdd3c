package safetensors

import (
	"encoding/binary"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hostileCase is a file that Parse must refuse, with a substring of the
// error it must give.
type hostileCase struct {
	name string
	data []byte
	want string
}

// entryJSON is a tensor entry of the header.
func entryJSON(name, dtype, shape string, begin, end int) string {
	return `"` + name + `":{"dtype":"` + dtype + `","shape":` + shape +
		`,"data_offsets":[` + itoa(begin) + `,` + itoa(end) + `]}`
}

func itoa(i int) string { return strconv.Itoa(i) }

// obj wraps members into a header object.
func obj(members ...string) string { return "{" + strings.Join(members, ",") + "}" }

// withHeaderLen returns data with its header length changed by delta.
func withHeaderLen(data []byte, delta int) []byte {
	out := append([]byte(nil), data...)
	n := binary.LittleEndian.Uint64(out)
	binary.LittleEndian.PutUint64(out, uint64(int64(n)+int64(delta)))
	return out
}

// Shared pieces of the hostile files.
var (
	d4     = []byte{0, 0, 0x80, 0x3f}
	d8     = make([]byte, 8)
	d12    = make([]byte, 12)
	a4     = entryJSON("a", "F32", "[1]", 0, 4)
	dims65 = "[" + strings.Repeat("1,", 64) + "1]"
	padded = build(obj(a4)+"   ", d4)
)

// f32 is the entry of an F32 tensor spanning [begin, end).
func f32(name string, begin, end int) string {
	return entryJSON(name, "F32", "["+itoa((end-begin)/4)+"]", begin, end)
}

// hostileCases lists the files Parse must refuse; FuzzParse seeds its
// corpus with them.
func hostileCases() []hostileCase {
	return slices.Concat(layoutCases(), duplicateCases(), stringCases(), typeCases(), numberCases(), syntaxCases())
}

// layoutCases lists the layouts that do not tile the data section.
func layoutCases() []hostileCase {
	return []hostileCase{
		{"overlap", build(obj(f32("a", 0, 8), f32("b", 4, 12)), d12), `tensor "b" begins at byte 4 but "a" ends at byte 8 (overlap)`},
		{"alias", build(obj(f32("a", 0, 8), f32("b", 0, 8)), d8), `begins at byte 0 but "a" ends at byte 8 (overlap)`},
		{"zero-size inside another", build(obj(f32("a", 0, 8), f32("z", 4, 4)), d8), `tensor "z" begins at byte 4 but "a" ends at byte 8 (overlap)`},
		{"gap before first", build(obj(f32("a", 4, 8)), d8), `tensor "a" begins at byte 4, but the first tensor must begin at byte 0 (4-byte gap)`},
		{"zero-size gap before first", build(obj(f32("z", 4, 4), f32("a", 4, 8)), d8), `tensor "z" begins at byte 4`},
		{"gap between", build(obj(f32("a", 0, 4), f32("b", 8, 12)), d12), `tensor "b" begins at byte 8 but "a" ends at byte 4 (4-byte gap)`},
		{"trailing bytes", build(obj(a4), d8), `data section is 8 bytes but the tensors end at byte 4 (4 trailing bytes)`},
		{"no tensors, data", build(`{}`, d8), `header has no tensors (8 trailing bytes)`},
		{"metadata only, data", build(`{"__metadata__":{"k":"v"}}`, d4), `header has no tensors (4 trailing bytes)`},
		{"header length one short", withHeaderLen(padded, -1), `(1 trailing byte)`},
		{"header length one long", withHeaderLen(padded, +1), `byte 0x00 after the closing brace`},
		{"header length cuts brace", withHeaderLen(build(obj(a4), d4), -1), `the end of the header`},
		{"end past data", build(obj(f32("a", 0, 8)), d4), `tensor "a": data_offsets end 8 is past the 4-byte data section`},
	}
}

// duplicateCases lists repeated keys at every level.
func duplicateCases() []hostileCase {
	longName := strings.Repeat("n", 1<<20)
	return []hostileCase{
		{"duplicate tensor", build(obj(a4, a4), d4), `duplicate tensor name "a" in the header`},
		{"duplicate tensor via escape", build(obj(a4, entryJSON(`\u0061`, "F32", "[1]", 0, 4)), d4), `duplicate tensor name "a"`},
		{"duplicate metadata", build(`{"__metadata__":{},"__metadata__":{}}`, nil), `duplicate key "__metadata__" in the header`},
		{"duplicate metadata null", build(`{"__metadata__":null,"__metadata__":{"k":"v"}}`, nil), `duplicate key "__metadata__"`},
		{"duplicate metadata key", build(`{"__metadata__":{"k":"1","k":"2"}}`, nil), `__metadata__: duplicate key "k"`},
		{"duplicate dtype", build(`{"a":{"dtype":"F32","dtype":"U8","shape":[1],"data_offsets":[0,4]}}`, d4), `tensor "a": duplicate key "dtype"`},
		{"duplicate shape", build(`{"a":{"dtype":"F32","shape":[1],"shape":[4],"data_offsets":[0,4]}}`, d4), `duplicate key "shape"`},
		{"duplicate offsets", build(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,8],"data_offsets":[0,4]}}`, d4), `duplicate key "data_offsets"`},
		{"long duplicate name", build(obj(entryJSON(longName, "U8", "[0]", 0, 0), entryJSON(longName, "U8", "[0]", 0, 0)), nil), `duplicate tensor name "nnnn`},
	}
}

// stringCases lists invalid UTF-8 and malformed strings.
func stringCases() []hostileCase {
	return []hostileCase{
		{"invalid UTF-8 name", build(obj(entryJSON("a\xff", "F32", "[1]", 0, 4)), d4), "invalid UTF-8 at header byte 3"},
		{"invalid UTF-8 metadata key", build("{\"__metadata__\":{\"k\xc3\":\"v\"}}", nil), "__metadata__: invalid UTF-8"},
		{"invalid UTF-8 metadata value", build("{\"__metadata__\":{\"k\":\"v\xe2\x82\"}}", nil), `value of "k": invalid UTF-8`},
		{"invalid UTF-8 after escape", build("{\"__metadata__\":{\"k\":\"\\n\xff\"}}", nil), "invalid UTF-8"},
		{"overlong UTF-8", build(obj(entryJSON("\xc0\xaf", "F32", "[1]", 0, 4)), d4), "invalid UTF-8"},
		{"UTF-8 surrogate", build(obj(entryJSON("\xed\xa0\x80", "F32", "[1]", 0, 4)), d4), "invalid UTF-8"},
		{"UTF-8 past U+10FFFF", build(obj(entryJSON("\xf4\x90\x80\x80", "F32", "[1]", 0, 4)), d4), "invalid UTF-8"},
		{"invalid UTF-8 in dtype", build(obj(entryJSON("a", "F3\xff", "[1]", 0, 4)), d4), "dtype: invalid UTF-8"},
		{"invalid UTF-8 outside strings", build("{\xff}", nil), "byte 0xff"},
		{"raw control character", build(obj(entryJSON("a\nb", "F32", "[1]", 0, 4)), d4), "raw control character 0x0a"},
		{"invalid escape", build(obj(entryJSON(`a\x`, "F32", "[1]", 0, 4)), d4), `invalid escape "\\x"`},
		{"short unicode escape", build(obj(entryJSON(`\u12`, "F32", "[1]", 0, 4)), d4), `invalid \u escape`},
		{"bad hex in escape", build(obj(entryJSON(`\u12g4`, "F32", "[1]", 0, 4)), d4), `invalid \u escape`},
		{"lone high surrogate", build(obj(entryJSON(`\ud800`, "F32", "[1]", 0, 4)), d4), `lone high surrogate \ud800`},
		{"lone low surrogate", build(obj(entryJSON(`\udc00x`, "F32", "[1]", 0, 4)), d4), `lone low surrogate \udc00`},
		{"high surrogate then letter", build(obj(entryJSON(`\ud800\u0041`, "F32", "[1]", 0, 4)), d4), `not followed by a low surrogate`},
		{"unterminated string", build(`{"abc`, nil), "unterminated string"},
		{"escape at end", build(`{"abc\`, nil), "unterminated string"},
		{"byte order mark", build("\xef\xbb\xbf{}", nil), "not a JSON object"},
	}
}

// typeCases lists unknown fields, values of the wrong type and nesting.
func typeCases() []hostileCase {
	return []hostileCase{
		{"unknown field", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}}`, d4), `tensor "a": unknown field "extra"`},
		{"unknown field first", build(`{"a":{"offsets":[0,4]}}`, d4), `unknown field "offsets"`},
		{"empty entry", build(`{"a":{}}`, nil), `tensor "a": missing "dtype"`},
		{"entry is boolean", build(`{"a":true}`, nil), "entry is not a JSON object (found a boolean)"},
		{"entry is array", build(`{"a":[]}`, nil), "entry is not a JSON object (found an array)"},
		{"dtype is object", build(`{"a":{"dtype":{"x":"y"},"shape":[1],"data_offsets":[0,4]}}`, d4), "dtype is not a string (found an object)"},
		{"lowercase dtype", build(obj(entryJSON("a", "f32", "[1]", 0, 4)), d4), `unknown dtype "f32"`},
		{"nested shape", build(obj(entryJSON("a", "F32", "[[1]]", 0, 4)), d4), "shape: element 0: not an integer (found an array)"},
		{"deeply nested shape", build(obj(entryJSON("a", "F32", strings.Repeat("[", 100000), 0, 4)), d4), "not an integer (found an array)"},
		{"offsets are strings", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":["0","4"]}}`, d4), "data_offsets: element 0: not an integer (found a string)"},
		{"offsets null", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":null}}`, d4), "data_offsets: not a JSON array (found null)"},
		{"metadata is array", build(`{"__metadata__":["k","v"]}`, nil), "__metadata__ is not a JSON object (found an array)"},
		{"metadata value null", build(`{"__metadata__":{"k":null}}`, nil), `value of "k" is not a string (found null)`},
		{"metadata as tensor entry", build(`{"__metadata__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, d4), `value of "shape" is not a string`},
		{"number key", build(`{1:{}}`, nil), "expected a string key, found a number"},
		{"rank above MaxRank", build(obj(entryJSON("a", "F32", dims65, 0, 4)), d4), "shape has more than 64 dimensions"},
	}
}

// numberCases lists numbers that are not int64 integers.
func numberCases() []hostileCase {
	return []hostileCase{
		{"fraction", build(obj(entryJSON("a", "F32", "[1.0]", 0, 4)), d4), `number "1.0" is not an integer`},
		{"exponent", build(obj(entryJSON("a", "F32", "[1e0]", 0, 4)), d4), `number "1e0" is not an integer`},
		{"capital exponent", build(obj(entryJSON("a", "F32", "[1E+0]", 0, 4)), d4), `number "1E+0" is not an integer`},
		{"fractional offset", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}`, d4), `number "4.0" is not an integer`},
		{"leading plus", build(obj(entryJSON("a", "F32", "[+1]", 0, 4)), d4), "not an integer (found '+')"},
		{"leading zero", build(obj(entryJSON("a", "F32", "[01]", 0, 4)), d4), `number "01" has a leading zero`},
		{"double zero", build(obj(entryJSON("a", "F32", "[00]", 0, 4)), d4), "leading zero"},
		{"lone minus", build(obj(entryJSON("a", "F32", "[-]", 0, 4)), d4), `number "-" is not an integer`},
		{"int64 overflow", build(obj(entryJSON("a", "U8", "[9223372036854775808]", 0, 4)), d4), `number "9223372036854775808" is not an integer that fits in 64 bits`},
		{"int64 negative overflow", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-9223372036854775809,4]}}`, d4), "fits in 64 bits"},
		{"offset overflow", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999]}}`, d4), "fits in 64 bits"},
		{"long number", build(obj(entryJSON("a", "F32", "["+strings.Repeat("7", 5000)+"]", 0, 4)), d4), "fits in 64 bits"},
		{"min int64 offset", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-9223372036854775808,4]}}`, d4), "not 0 <= begin <= end"},
		{"byte size overflow", build(obj(entryJSON("a", "F64", "[1152921504606846976,8]", 0, 4)), d4), "overflows"},
	}
}

// syntaxCases lists broken JSON syntax around and between the entries.
func syntaxCases() []hostileCase {
	return []hostileCase{
		{"leading space", build(" "+obj(a4), d4), "header is not a JSON object: it begins with byte 0x20"},
		{"empty header", build("", nil), "header is empty, not a JSON object"},
		{"trailing newline", build(obj(a4)+"\n", d4), "byte 0x0a after the closing brace"},
		{"trailing tab", build(obj(a4)+" \t", d4), "byte 0x09 after the closing brace"},
		{"trailing NUL", build(obj(a4)+"\x00", d4), "byte 0x00 after the closing brace"},
		{"second object", build(obj(a4)+" {}", d4), "an object after the closing brace"},
		{"trailing comma", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},}`, d4), "expected a string key, found '}'"},
		{"trailing comma in entry", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],}}`, d4), "expected a string, found '}'"},
		{"trailing comma in array", build(obj(entryJSON("a", "F32", "[1,]", 0, 4)), d4), "not an integer (found ']')"},
		{"trailing comma in metadata", build(`{"__metadata__":{"k":"v",}}`, nil), "expected a string, found '}'"},
		{"missing comma", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]} "b":{}}`, d4), "expected ',' or '}' after a header entry, found a string"},
		{"missing colon", build(`{"a" {}}`, nil), `expected ':' after the key "a", found an object`},
		{"unclosed object", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`, d4), "found the end of the header"},
		{"unclosed array", build(`{"a":{"dtype":"F32","shape":[1`, nil), "found the end of the header"},
	}
}

func TestParseHostile(t *testing.T) {
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(c.data)
			if err == nil {
				t.Fatalf("Parse accepted it: %d tensors", len(f.Tensors))
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "safetensors: ") || !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not contain %q", msg, c.want)
			}
			if len(msg) > 400 || strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error is %d bytes or spans lines: %.500q", len(msg), msg)
			}
		})
	}
}

// TestParseHugeRank checks that a shape of ten million dimensions is refused
// at once, with a short message, before anything is allocated for it.
func TestParseHugeRank(t *testing.T) {
	var h strings.Builder
	h.WriteString(`{"a":{"dtype":"F32","shape":[`)
	for i := 0; i < 10_000_000; i++ {
		h.WriteString("1,")
	}
	h.WriteString(`1],"data_offsets":[0,4]}}`)
	data := build(h.String(), make([]byte, 4))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := Parse(data)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "more than 64 dimensions") {
		t.Fatalf("error %v", err)
	}
	if len(err.Error()) > 200 {
		t.Errorf("error is %d bytes: %.300q", len(err.Error()), err)
	}
	t.Logf("refused in %v: %v", elapsed, err)
	if elapsed > time.Second {
		t.Errorf("refusing took %v", elapsed)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Errorf("refusing allocated %d bytes", n)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"abc":                                `"abc"`,
		"a\nb\xff":                           `"a\nb\xff"`,
		strings.Repeat("x", 64):              `"` + strings.Repeat("x", 64) + `"`,
		strings.Repeat("x", 100):             `"` + strings.Repeat("x", 64) + `"… (100 bytes)`,
		strings.Repeat("x", 63) + "é" + "yz": `"` + strings.Repeat("x", 63) + `"… (67 bytes)`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%.80q) = %s, want %s", in, got, want)
		}
	}
}

func TestParseAcceptsStrictForms(t *testing.T) {
	d8 := make([]byte, 8)
	cases := map[string]struct {
		header string
		data   []byte
		check  func(*File) bool
	}{
		"spaced JSON":                 {"{ \"a\" :\n\t{ \"shape\" : [ 2 ] ,\r\n \"data_offsets\" : [ 0 , 8 ] , \"dtype\" : \"F32\" } }  ", d8, nil},
		"offsets out of header order": {obj(entryJSON("b", "F32", "[1]", 4, 8), entryJSON("a", "F32", "[1]", 0, 4)), d8, nil},
		"zero-size everywhere": {obj(entryJSON("z0", "F32", "[0]", 0, 0), entryJSON("a", "F32", "[1]", 0, 4),
			entryJSON("z1", "U8", "[3,0]", 4, 4), entryJSON("z2", "U8", "[0]", 4, 4), entryJSON("b", "F32", "[1]", 4, 8),
			entryJSON("z3", "BOOL", "[0]", 8, 8)), d8, nil},
		"only zero-size": {obj(entryJSON("z", "F32", "[0]", 0, 0)), nil, nil},
		"empty name":     {obj(entryJSON("", "U8", "[8]", 0, 8)), d8, nil},
		"escaped name": {obj(entryJSON(`a\"b\\c\/\u00e9\ud83d\ude00\n`, "U8", "[8]", 0, 8)), d8,
			func(f *File) bool { _, ok := f.Get("a\"b\\c/é😀\n"); return ok }},
		"escaped dtype and field": {`{"a":{"d\u0074ype":"F\u00332","shape":[2],"data_offsets":[0,8]}}`, d8,
			func(f *File) bool { a, ok := f.Get("a"); return ok && a.DType == F32 }},
		"empty metadata": {`{"__metadata__":{}}`, nil, func(f *File) bool { return f.Metadata != nil && len(f.Metadata) == 0 }},
		"metadata last": {obj(entryJSON("a", "U8", "[8]", 0, 8), `"__metadata__":{"k":"v","":""}`), d8,
			func(f *File) bool { return f.Metadata["k"] == "v" && len(f.Metadata) == 2 }},
		"rank MaxRank": {obj(entryJSON("a", "U8", "["+strings.Repeat("1,", 63)+"8]", 0, 8)), d8,
			func(f *File) bool { a, _ := f.Get("a"); return len(a.Shape) == 64 }},
		"negative zero":             {obj(entryJSON("a", "U8", "[-0]", 0, 0)), nil, nil},
		"zero shape overflow order": {obj(entryJSON("a", "F32", "[0,4294967296,4294967296]", 0, 0)), nil, nil},
	}
	for name, c := range cases {
		f, err := Parse(build(c.header, c.data))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if c.check != nil && !c.check(f) {
			t.Errorf("%s: parsed to %+v", name, f)
		}
	}
}
