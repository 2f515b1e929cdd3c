package vk

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

func TestPushStruct(t *testing.T) {
	type block struct {
		N     uint32
		Off   int32
		Scale float32
	}
	p := block{N: 7, Off: -2, Scale: 1.5}
	want := binary.LittleEndian.AppendUint32(nil, 7)
	want = binary.LittleEndian.AppendUint32(want, math.MaxUint32-1)
	want = binary.LittleEndian.AppendUint32(want, math.Float32bits(1.5))
	for _, v := range []any{p, &p} {
		if got := PushStruct(v); !bytes.Equal(got, want) {
			t.Errorf("PushStruct(%T) = %v, want %v", v, got, want)
		}
		if n, err := PushStructSize(v); n != 12 || err != nil {
			t.Errorf("PushStructSize(%T) = %d, %v", v, n, err)
		}
	}
	// The positional form writes the same words.
	if got := Push(uint32(7), int32(-2), float32(1.5)); !bytes.Equal(got, want) {
		t.Errorf("Push = %v, want %v", got, want)
	}
	type wide struct {
		N uint32
		X float64
	}
	for _, bad := range []any{wide{}, 3, nil} {
		if _, err := PushStructSize(bad); err == nil {
			t.Errorf("PushStructSize(%T) did not fail", bad)
		}
	}
	if _, err := PushStructSize(wide{}); err == nil || !strings.Contains(err.Error(), "field X") {
		t.Errorf("PushStructSize(wide) error = %v, want one naming field X", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("PushStruct(wide) did not panic")
		}
	}()
	PushStruct(wide{})
}
