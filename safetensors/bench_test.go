package safetensors

import (
	"encoding/binary"
	"strconv"
	"testing"
)

// hugeHeaderFile builds a file whose header is about 99 MB of about 1.6
// million small U8 tensor entries, every 16th of one element and the others
// of none, with contiguous offsets. With reverse the header lists them from
// the last to the first, so that Parse must sort them.
func hugeHeaderFile(reverse bool) (data []byte, tensors int) {
	const target = 99_000_000
	var entries [][]byte
	var off, size int64
	for i := 0; size < target-100; i++ {
		e := []byte{'"'}
		e = strconv.AppendInt(e, int64(i), 36)
		shape, next := `":{"dtype":"U8","shape":[0],"data_offsets":[`, off
		if i%16 == 15 {
			shape, next = `":{"dtype":"U8","shape":[1],"data_offsets":[`, off+1
		}
		e = append(e, shape...)
		e = strconv.AppendInt(e, off, 10)
		e = append(e, ',')
		e = strconv.AppendInt(e, next, 10)
		e = append(e, "]}"...)
		off = next
		entries = append(entries, e)
		size += int64(len(e)) + 1
	}
	h := make([]byte, 0, size+1)
	h = append(h, '{')
	for i := range entries {
		if i > 0 {
			h = append(h, ',')
		}
		if reverse {
			h = append(h, entries[len(entries)-1-i]...)
		} else {
			h = append(h, entries[i]...)
		}
	}
	h = append(h, '}')
	data = make([]byte, 8, 8+len(h)+int(off))
	binary.LittleEndian.PutUint64(data, uint64(len(h)))
	data = append(data, h...)
	return append(data, make([]byte, off)...), len(entries)
}

// BenchmarkParseHugeHeader parses a header near MaxHeaderSize of about 1.6
// million entries, listed in offset order and in reverse.
func BenchmarkParseHugeHeader(b *testing.B) {
	for _, c := range []struct {
		name    string
		reverse bool
	}{{"ordered", false}, {"reversed", true}} {
		b.Run(c.name, func(b *testing.B) {
			data, n := hugeHeaderFile(c.reverse)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				f, err := Parse(data)
				if err != nil {
					b.Fatal(err)
				}
				if len(f.Tensors) != n {
					b.Fatalf("%d tensors, want %d", len(f.Tensors), n)
				}
			}
		})
	}
}
