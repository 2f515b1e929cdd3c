package checked

import (
	"math"
	"strings"
	"testing"
)

func TestMul(t *testing.T) {
	cases := []struct {
		a, b int64
		want int64
		ok   bool
	}{
		{0, 0, 0, true},
		{3, 7, 21, true},
		{0, math.MaxInt64, 0, true},
		{math.MaxInt64, 1, math.MaxInt64, true},
		{1 << 32, 1 << 31, 0, false},
		{5, 3689348814741910324, 0, false}, // wraps to 4 in plain int64 arithmetic
		{-1, 2, 0, false},
		{2, -1, 0, false},
		{math.MaxInt64/2 + 1, 2, 0, false},
	}
	for _, c := range cases {
		got, ok := Mul(c.a, c.b)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("Mul(%d, %d) = %d, %v; want %d, %v", c.a, c.b, got, ok, c.want, c.ok)
		}
	}
	if _, ok := Mul[int32](1<<16, 1<<15); ok {
		t.Error("Mul[int32](2^16, 2^15) did not report the overflow")
	}
	if v, ok := Mul[int32](1<<15, 1<<15); !ok || v != 1<<30 {
		t.Errorf("Mul[int32](2^15, 2^15) = %d, %v", v, ok)
	}
}

func TestAdd(t *testing.T) {
	if v, ok := Add(math.MaxInt-1, 1); !ok || v != math.MaxInt {
		t.Errorf("Add(MaxInt-1, 1) = %d, %v", v, ok)
	}
	if _, ok := Add(math.MaxInt, 1); ok {
		t.Error("Add(MaxInt, 1) did not report the overflow")
	}
	if _, ok := Add(-1, 1); ok {
		t.Error("Add(-1, 1) accepted a negative operand")
	}
}

func TestProduct(t *testing.T) {
	if v, ok := Product[int](); !ok || v != 1 {
		t.Errorf("Product() = %d, %v", v, ok)
	}
	if v, ok := Product(2, 3, 5, 7); !ok || v != 210 {
		t.Errorf("Product(2,3,5,7) = %d, %v", v, ok)
	}
	if v, ok := Product(math.MaxInt, math.MaxInt, 0); !ok || v != 0 {
		t.Errorf("Product(MaxInt, MaxInt, 0) = %d, %v; a zero factor makes the product 0", v, ok)
	}
	if _, ok := Product(1<<40, 1<<30); ok {
		t.Error("Product(2^40, 2^30) did not report the overflow")
	}
	if _, ok := Product(4, -1, 0); ok {
		t.Error("Product with a negative factor was accepted")
	}
}

func TestSize(t *testing.T) {
	if v, err := Size("x", 2, 3, 4); err != nil || v != 24 {
		t.Errorf("Size(2,3,4) = %d, %v", v, err)
	}
	_, err := Size("bench shape", 2147483648, 2147483648, 2, 4)
	if err == nil || !strings.Contains(err.Error(), "bench shape: 2147483648 x 2147483648 x 2 x 4 overflows") {
		t.Errorf("Size overflow error = %v", err)
	}
	_, err = Size("n", -3)
	if err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("Size(-3) error = %v", err)
	}
}

func TestRange(t *testing.T) {
	cases := []struct {
		off, n, size int64
		ok           bool
	}{
		{0, 0, 0, true},
		{0, 10, 10, true},
		{10, 0, 10, true},
		{11, 0, 10, false},
		{5, 6, 10, false},
		{math.MaxInt64 - 2, 8, 16, false}, // off+n wraps negative in plain arithmetic
		{8, math.MaxInt64, 16, false},
		{-1, 1, 16, false},
		{0, -1, 16, false},
	}
	for _, c := range cases {
		if got := Range(c.off, c.n, c.size); got != c.ok {
			t.Errorf("Range(%d, %d, %d) = %v, want %v", c.off, c.n, c.size, got, c.ok)
		}
	}
}

func TestBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{{17, "17 B"}, {2048, "2.0 KiB"}, {3 << 30, "3.0 GiB"}, {1 << 62, "4.0 EiB"}} {
		if got := Bytes(c.n); got != c.want {
			t.Errorf("Bytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
