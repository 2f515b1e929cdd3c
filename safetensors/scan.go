package safetensors

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxQuote is how many bytes of a name, key or value an error message shows.
const maxQuote = 64

// quote formats s for an error message: Go-quoted (so it stays on one line
// whatever bytes it holds) and cut to maxQuote bytes, with an ellipsis and
// the full length when it was cut.
func quote(s string) string {
	if len(s) <= maxQuote {
		return strconv.Quote(s)
	}
	cut := maxQuote
	for cut > maxQuote-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// scanner reads the restricted JSON of a safetensors header in one pass.
// Its primitives return errors without the "safetensors:" prefix that name
// the byte offset within the header; the callers add the context.
type scanner struct {
	buf []byte
	pos int
	// dims receives the numbers of one array; MaxRank is the most any array
	// of the grammar may hold.
	dims [MaxRank]int64
}

// errorf returns an error located at header byte s.pos.
func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("%s at header byte %d", fmt.Sprintf(format, args...), s.pos)
}

// skipWS skips JSON whitespace.
func (s *scanner) skipWS() {
	for s.pos < len(s.buf) {
		switch s.buf[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the byte at s.pos, or 0 at the end of the header.
func (s *scanner) peek() byte {
	if s.pos < len(s.buf) {
		return s.buf[s.pos]
	}
	return 0
}

// expect skips whitespace, then consumes c, which must follow key, or fails
// naming what stood there.
func (s *scanner) expect(c byte, key []byte) error {
	s.skipWS()
	if s.peek() != c {
		return s.errorf("expected '%c' after the key %s, found %s", c, quote(string(key)), s.describe())
	}
	s.pos++
	s.skipWS()
	return nil
}

// next skips whitespace and consumes either ',' (more follows: true) or
// closer (the end: false).
func (s *scanner) next(closer byte, after string) (bool, error) {
	s.skipWS()
	switch s.peek() {
	case ',':
		s.pos++
		s.skipWS()
		return true, nil
	case closer:
		s.pos++
		return false, nil
	}
	return false, s.errorf("expected ',' or '%c' after %s, found %s", closer, after, s.describe())
}

// describe names the token that starts at s.pos, for error messages.
func (s *scanner) describe() string {
	if s.pos >= len(s.buf) {
		return "the end of the header"
	}
	switch c := s.buf[s.pos]; {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == '-' || c >= '0' && c <= '9':
		return "a number"
	case c == 'n':
		return "null"
	case c == 't' || c == 'f':
		return "a boolean"
	case c >= 0x21 && c < 0x7f:
		return fmt.Sprintf("'%c'", c)
	default:
		return fmt.Sprintf("byte %#02x", c)
	}
}

// null consumes the literal null if it stands at s.pos.
func (s *scanner) null() bool {
	if len(s.buf)-s.pos >= 4 && string(s.buf[s.pos:s.pos+4]) == "null" {
		s.pos += 4
		return true
	}
	return false
}

// str scans the JSON string at s.pos and returns its decoded bytes: a
// sub-slice of the header when it holds no escapes, else a new slice. It
// rejects invalid UTF-8, raw control characters, unknown escapes and lone
// surrogates.
func (s *scanner) str() ([]byte, error) {
	if s.peek() != '"' {
		return nil, s.errorf("expected a string, found %s", s.describe())
	}
	start := s.pos + 1
	for i := start; i < len(s.buf); {
		switch c := s.buf[i]; {
		case c == '"':
			s.pos = i + 1
			return s.buf[start:i], nil
		case c == '\\':
			return s.strEscaped(start, i)
		case c < 0x20:
			s.pos = i
			return nil, s.errorf("raw control character %#02x in a string", c)
		case c < utf8.RuneSelf:
			i++
		default:
			n, err := s.validRune(i)
			if err != nil {
				return nil, err
			}
			i += n
		}
	}
	s.pos = len(s.buf)
	return nil, s.errorf("unterminated string")
}

// strEscaped finishes str from s.buf[i], the first backslash of a string
// whose contents begin at start.
func (s *scanner) strEscaped(start, i int) ([]byte, error) {
	out := append([]byte(nil), s.buf[start:i]...)
	for i < len(s.buf) {
		switch c := s.buf[i]; {
		case c == '"':
			s.pos = i + 1
			return out, nil
		case c == '\\':
			r, n, err := s.escape(i)
			if err != nil {
				return nil, err
			}
			out = utf8.AppendRune(out, r)
			i += n
		case c < 0x20:
			s.pos = i
			return nil, s.errorf("raw control character %#02x in a string", c)
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			n, err := s.validRune(i)
			if err != nil {
				return nil, err
			}
			out = append(out, s.buf[i:i+n]...)
			i += n
		}
	}
	s.pos = len(s.buf)
	return nil, s.errorf("unterminated string")
}

// validRune returns the length of the UTF-8 sequence at s.buf[i], or an
// error when it is invalid (truncated, overlong, a surrogate, out of range).
func (s *scanner) validRune(i int) (int, error) {
	r, n := utf8.DecodeRune(s.buf[i:])
	if r == utf8.RuneError && n <= 1 {
		s.pos = i
		return 0, s.errorf("invalid UTF-8")
	}
	return n, nil
}

// escape decodes the escape sequence that starts with the backslash at
// s.buf[i] and returns the rune and the sequence's length. A \u escape of a
// high surrogate must be followed by one of a low surrogate.
func (s *scanner) escape(i int) (rune, int, error) {
	s.pos = i
	if i+1 >= len(s.buf) {
		return 0, 0, s.errorf("unterminated string")
	}
	switch c := s.buf[i+1]; c {
	case '"', '\\', '/':
		return rune(c), 2, nil
	case 'b':
		return '\b', 2, nil
	case 'f':
		return '\f', 2, nil
	case 'n':
		return '\n', 2, nil
	case 'r':
		return '\r', 2, nil
	case 't':
		return '\t', 2, nil
	case 'u':
		r, ok := hex4(s.buf[i+2:])
		if !ok {
			return 0, 0, s.errorf(`invalid \u escape`)
		}
		if !utf16.IsSurrogate(r) {
			return r, 6, nil
		}
		if r >= 0xdc00 {
			return 0, 0, s.errorf(`lone low surrogate \u%04x`, r)
		}
		if len(s.buf) < i+12 || s.buf[i+6] != '\\' || s.buf[i+7] != 'u' {
			return 0, 0, s.errorf(`lone high surrogate \u%04x`, r)
		}
		lo, ok := hex4(s.buf[i+8:])
		if !ok || lo < 0xdc00 || lo > 0xdfff {
			return 0, 0, s.errorf(`high surrogate \u%04x not followed by a low surrogate`, r)
		}
		return utf16.DecodeRune(r, lo), 12, nil
	}
	return 0, 0, s.errorf("invalid escape %s", quote(string(s.buf[i:i+2])))
}

// hex4 decodes four hexadecimal digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// int scans a JSON integer at s.pos: an optional minus sign and digits with
// no leading zero. Fractions, exponents, a leading '+' and values outside
// int64 are errors that quote the number.
func (s *scanner) int() (int64, error) {
	start := s.pos
	neg := s.peek() == '-'
	if neg {
		s.pos++
	}
	if c := s.peek(); c < '0' || c > '9' {
		if neg {
			return 0, s.badNumber(start, "is not an integer")
		}
		return 0, s.errorf("not an integer (found %s)", s.describe())
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	var v uint64
	for digits := 0; s.pos < len(s.buf) && s.buf[s.pos] >= '0' && s.buf[s.pos] <= '9'; digits++ {
		d := uint64(s.buf[s.pos] - '0')
		if digits == 1 && v == 0 {
			return 0, s.badNumber(start, "has a leading zero")
		}
		if v > (limit-d)/10 {
			return 0, s.badNumber(start, "is not an integer that fits in 64 bits")
		}
		v = v*10 + d
		s.pos++
	}
	switch s.peek() {
	case '.', 'e', 'E':
		return 0, s.badNumber(start, "is not an integer")
	}
	if neg {
		return int64(-v), nil // -(1<<63) wraps to itself, as wanted.
	}
	return int64(v), nil
}

// badNumber reports the number that starts at start, quoted and cut.
func (s *scanner) badNumber(start int, why string) error {
	end := start
	for end < len(s.buf) && isNumberByte(s.buf[end]) {
		end++
	}
	s.pos = start
	return s.errorf("number %s %s", quote(string(s.buf[start:end])), why)
}

// isNumberByte reports whether c can occur in a JSON number.
func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// ints scans a JSON array of at most limit integers into s.dims and returns
// them. what names the array in errors; tooMany is the error when the array
// holds more than limit values.
func (s *scanner) ints(limit int, what, tooMany string) ([]int64, error) {
	if s.peek() != '[' {
		return nil, s.errorf("%s: not a JSON array (found %s)", what, s.describe())
	}
	s.pos++
	s.skipWS()
	if s.peek() == ']' {
		s.pos++
		return s.dims[:0], nil
	}
	for n := 0; ; n++ {
		if n == limit {
			return nil, s.errorf("%s", tooMany)
		}
		v, err := s.int()
		if err != nil {
			return nil, fmt.Errorf("%s: element %d: %w", what, n, err)
		}
		s.dims[n] = v
		more, err := s.next(']', "an array element")
		if err != nil {
			return nil, err
		}
		if !more {
			return s.dims[:n+1], nil
		}
	}
}
