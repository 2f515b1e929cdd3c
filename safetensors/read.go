package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/isab-vk/isab-vk/internal/atomicfile"
)

// ReadFile reads and parses the safetensors file at path, with the checks of
// Parse. It refuses anything but a regular file (a directory, a device such
// as /dev/zero, a FIFO, a socket) without reading from it, and reads no more
// than the file's size as fstat reports it: the header length is checked
// against that size before the header is read, and the layout the header
// describes is checked to end exactly at the end of the file before the data
// section is allocated and read. A file that grows or shrinks while it is
// read is an error.
func ReadFile(path string) (*File, error) {
	f, size, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	file, err := readFrom(f, size)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return file, nil
}

// openRegular opens path for reading and returns it with its size, or fails
// unless it is a regular file. The open does not block on a FIFO (see
// openFlags).
func openRegular(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, openFlags, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("safetensors: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("safetensors: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("safetensors: %s is %s, not a regular file", path, atomicfile.FileKind(fi.Mode()))
	}
	return f, fi.Size(), nil
}

// checkHeaderLen checks the header length n read from a file of size bytes.
func checkHeaderLen(n uint64, size int64) error {
	if n > MaxHeaderSize {
		return fmt.Errorf("header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if n > uint64(size-8) {
		return fmt.Errorf("header length %d runs past the end of the %d-byte file", n, size)
	}
	return nil
}

// checkFileLen checks that a file of size bytes can hold the 8-byte header
// length.
func checkFileLen(size int64) error {
	if size == 0 {
		return errors.New("empty file")
	}
	if size < 8 {
		return fmt.Errorf("file is %d bytes, shorter than the 8-byte header length", size)
	}
	return nil
}

// readFrom reads a safetensors file of size bytes from r, checking each part
// before it allocates the next; see ReadFile. Its errors lack the
// "safetensors:" prefix.
func readFrom(r io.Reader, size int64) (*File, error) {
	if err := checkFileLen(size); err != nil {
		return nil, err
	}
	var lenBuf [8]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, readError(err, "the header length")
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if err := checkHeaderLen(n, size); err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, readError(err, "the header")
	}
	h, err := parseHeader(buf)
	if err != nil {
		return nil, err
	}
	dataLen := size - 8 - int64(n)
	if err := checkLayout(h.spans, dataLen); err != nil {
		return nil, err
	}
	if dataLen > math.MaxInt {
		return nil, fmt.Errorf("data section of %d bytes does not fit in memory", dataLen)
	}
	body, err := readExact(r, dataLen, size, "the data section")
	if err != nil {
		return nil, err
	}
	return h.file(body), nil
}

// readExact reads the n bytes of what that end a file of size bytes from
// r, and checks that nothing follows them (the file did not grow).
func readExact(r io.Reader, n, size int64, what string) ([]byte, error) {
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, readError(err, what)
	}
	var extra [1]byte
	switch k, err := r.Read(extra[:]); {
	case k > 0:
		return nil, fmt.Errorf("the file grew past its %d bytes while it was read", size)
	case err != nil && err != io.EOF:
		return nil, fmt.Errorf("reading past %s: %w", what, err)
	}
	return buf, nil
}

// readError describes a failure to read what.
func readError(err error, what string) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("the file shrank while %s was read", what)
	}
	return fmt.Errorf("reading %s: %w", what, err)
}
