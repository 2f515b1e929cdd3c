package safetensors

// DType names the element type of a tensor as the safetensors header spells it.
type DType string

// The element types this package parses. Sub-byte types (F4, F6) and complex
// types are not supported.
const (
	F64    DType = "F64"
	F32    DType = "F32"
	F16    DType = "F16"
	BF16   DType = "BF16"
	F8E5M2 DType = "F8_E5M2"
	F8E4M3 DType = "F8_E4M3"
	I64    DType = "I64"
	I32    DType = "I32"
	I16    DType = "I16"
	I8     DType = "I8"
	U64    DType = "U64"
	U32    DType = "U32"
	U16    DType = "U16"
	U8     DType = "U8"
	BOOL   DType = "BOOL"
)

// knownDTypes lists the types of the constants above.
var knownDTypes = [...]DType{F64, F32, F16, BF16, F8E5M2, F8E4M3, I64, I32, I16, I8, U64, U32, U16, U8, BOOL}

// Size returns the number of bytes of one element of type d, or 0 when d is not
// a type this package knows.
func (d DType) Size() int {
	switch d {
	case F64, I64, U64:
		return 8
	case F32, I32, U32:
		return 4
	case F16, BF16, I16, U16:
		return 2
	case F8E5M2, F8E4M3, I8, U8, BOOL:
		return 1
	}
	return 0
}

// Valid reports whether d is a type this package knows.
func (d DType) Valid() bool { return d.Size() != 0 }

// IsFloat reports whether d is one of the IEEE-style floating-point types
// that hold weights and inputs at full or half precision: F16, BF16, F32 or
// F64. It is false for the 8-bit float types F8_E5M2 and F8_E4M3 (which
// Float32 and Float64 still convert), for the integer types, for BOOL and
// for unknown types.
func (d DType) IsFloat() bool {
	switch d {
	case F64, F32, F16, BF16:
		return true
	}
	return false
}

// String returns the header spelling of d.
func (d DType) String() string { return string(d) }
