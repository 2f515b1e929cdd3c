// Package checked does the arithmetic of sizes (shapes, element counts, byte
// counts, offsets) without silent wrap-around: every function reports
// whether its result is exact, and the error forms name what was being
// computed. Every place in isab-vk that multiplies or adds numbers that come
// from a file, a flag or a caller goes through it.
package checked

import (
	"fmt"
	"unsafe"
)

// Int is the integer types that sizes are held in.
type Int interface {
	~int | ~int64 | ~int32
}

// maxOf is the largest value of T.
func maxOf[T Int]() T {
	var z T
	bits := unsafe.Sizeof(z) * 8
	return T(uint64(1)<<(bits-1) - 1)
}

// Mul returns a*b and true when both are non-negative and the product fits
// T; otherwise it returns 0 and false.
func Mul[T Int](a, b T) (T, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	if a != 0 && b > maxOf[T]()/a {
		return 0, false
	}
	return a * b, true
}

// Add returns a+b and true when both are non-negative and the sum fits T;
// otherwise it returns 0 and false.
func Add[T Int](a, b T) (T, bool) {
	if a < 0 || b < 0 || b > maxOf[T]()-a {
		return 0, false
	}
	return a + b, true
}

// Product returns the product of xs (1 for none) and true when every factor
// is non-negative and the product fits T. A zero factor makes the product
// 0 even when the others would overflow together.
func Product[T Int](xs ...T) (T, bool) {
	p := T(1)
	ok := true
	for _, x := range xs {
		if x < 0 {
			return 0, false
		}
		if x == 0 {
			p, ok = 0, true
			break
		}
		if ok {
			p, ok = Mul(p, x)
		}
	}
	if !ok {
		return 0, false
	}
	return p, true
}

// Size is Product as an int64 with an error that names what: "what:
// a x b x c is negative" or "... overflows". Use it where a product of
// caller-given numbers becomes an allocation or an index range.
func Size[T Int](what string, xs ...T) (int64, error) {
	ys := make([]int64, len(xs))
	for i, x := range xs {
		if x < 0 {
			return 0, fmt.Errorf("%s: %s has a negative factor", what, formatProduct(xs))
		}
		ys[i] = int64(x)
	}
	p, ok := Product(ys...)
	if !ok {
		return 0, fmt.Errorf("%s: %s overflows a 64-bit integer", what, formatProduct(xs))
	}
	return p, nil
}

// Fits reports whether v is within [0, limit].
func Fits[T Int](v, limit T) bool { return v >= 0 && v <= limit }

// Range reports whether [off, off+n) lies within [0, size), without forming
// off+n when it would overflow.
func Range[T Int](off, n, size T) bool {
	return off >= 0 && n >= 0 && size >= 0 && off <= size && n <= size-off
}

// formatProduct writes xs as "a x b x c".
func formatProduct[T Int](xs []T) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += " x "
		}
		s += fmt.Sprint(x)
	}
	if s == "" {
		s = "1"
	}
	return s
}

// Bytes formats a byte count for messages: "12.0 GiB", "512 KiB", "17 B".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
