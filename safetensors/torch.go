package safetensors

// Reading PyTorch's torch.save files (the zip format of PyTorch >= 1.6).
//
// A .pt file written by torch.save(model.state_dict(), path) is a zip
// archive of uncompressed entries under one folder, PREFIX/:
//
//	PREFIX/data.pkl      a pickle of the state_dict; each tensor in it is a
//	                     call to torch._utils._rebuild_tensor_v2 on a storage
//	                     named by a persistent id ('storage', torch.FloatStorage,
//	                     KEY, LOCATION, NUMEL)
//	PREFIX/data/KEY      the raw little-endian bytes of storage KEY
//	PREFIX/byteorder     "little" (PyTorch >= 2.1; absent before)
//	PREFIX/version, ...  ignored
//
// ParseTorch and ReadTorchFile treat such a file as hostile, as Parse does a
// safetensors file:
//
//   - The zip: every entry is stored (no compression, as torch.save writes
//     them, so no entry can expand), lies within the file, and matches its
//     CRC-32; no two entries share a name; there is exactly one
//     PREFIX/data.pkl; a byteorder entry, if present, says "little".
//   - The pickle is checked opcode by opcode before it is unpickled: every
//     length it declares lies within it, numbers are short, it ends with its
//     STOP opcode, and it holds none of the opcodes that build arbitrary
//     objects (INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT1/2/4) or out-of-band
//     buffers. It is then read with github.com/nlpodyssey/gopickle's
//     unpickler, which runs no code: every global it names is looked up in a
//     fixed allowlist and anything else is an error that names it. The
//     allowlist is what a state_dict needs: collections.OrderedDict,
//     torch._utils._rebuild_tensor_v2, torch._utils._rebuild_tensor,
//     torch._utils._rebuild_parameter, and the storage types
//     torch.FloatStorage (F32), HalfStorage (F16), BFloat16Storage (BF16),
//     DoubleStorage (F64), LongStorage (I64), IntStorage (I32), ShortStorage
//     (I16), CharStorage (I8), ByteStorage (U8), BoolStorage (BOOL) and
//     UntypedStorage (U8), which appear only inside persistent ids. (The
//     unpickler itself maps __builtin__.object and copy_reg._reconstructor,
//     named by STACK_GLOBAL, to inert values of its own; a state_dict holds
//     neither, so a pickle that uses them fails the checks below.)
//   - The pickle's value is a dict or OrderedDict whose keys are strings and
//     whose values are tensors; its other attributes (an OrderedDict's
//     _metadata) are ignored. Each storage's entry holds exactly NUMEL
//     elements of its type. Each tensor has at most MaxRank dimensions, none
//     negative, non-negative strides, and a storage offset and strides that
//     keep every element it addresses inside its storage, all computed
//     without overflow. Backward hooks must be empty.
//   - Views are honoured: a tensor whose strides are row-major (dimensions
//     of size 1 aside) is copied from its storage in one piece; any other
//     (a transpose, a slice with a step, an expanded dimension of stride 0)
//     is gathered element by element into row-major order. The tensors'
//     bytes together may be at most maxTorchExpansion times the file's size
//     (views of one storage copy it more than once; this bounds what an
//     expanded view can make of a small file).
//
// The result is a *File whose tensor names are the state_dict's keys, with
// row-major little-endian data copied out of the archive, and nil Metadata:
// a .pt carries no configuration, so heads, dim_head and the like come from
// the caller (isab.Options, the --heads and --dim-head flags, or isab
// convert, which writes them as metadata). Errors are one line, prefixed
// "safetensors:", and quote names cut to 64 bytes.

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"strings"
)

// maxTorchEntries is the most entries a .pt archive may hold.
const maxTorchEntries = 1 << 20

// maxTorchExpansion bounds the tensors' total bytes, as a multiple of the
// file's size (plus maxTorchSlack bytes for tiny files).
const (
	maxTorchExpansion = 4
	maxTorchSlack     = 1 << 20
)

// zipMagic begins every zip archive torch.save writes (a local file header).
const zipMagic = "PK\x03\x04"

// IsZip reports whether data begins with the zip magic "PK\x03\x04", as a
// torch.save file does and a safetensors file (whose first 8 bytes are a
// little-endian header length far below 0x04034b50_00000000) cannot.
func IsZip(data []byte) bool { return bytes.HasPrefix(data, []byte(zipMagic)) }

// ParseTorch parses data, the contents of a file torch.save wrote with a
// state_dict in it, into a File; see the comment at the top of torch.go for
// what it accepts.
func ParseTorch(data []byte) (file *File, err error) {
	file, err = parseTorch(data)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return file, nil
}

// ReadTorchFile reads and parses the torch.save file at path with the checks
// of ParseTorch. Like ReadFile it refuses anything but a regular file and
// reads no more than the size fstat reports.
func ReadTorchFile(path string) (*File, error) {
	f, size, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := readAll(f, size)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	file, err := parseTorch(data)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return file, nil
}

// ReadAnyFile reads the file at path as a torch.save file (ReadTorchFile)
// when it begins with the zip magic, else as a safetensors file (ReadFile).
func ReadAnyFile(path string) (*File, error) {
	f, size, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var head [len(zipMagic)]byte
	n, err := io.ReadFull(f, head[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	var file *File
	if IsZip(head[:n]) {
		var data []byte
		if data, err = readAll(io.MultiReader(bytes.NewReader(head[:n]), f), size); err == nil {
			file, err = parseTorch(data)
		}
	} else {
		file, err = readFrom(io.MultiReader(bytes.NewReader(head[:n]), f), size)
	}
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return file, nil
}

// readAll reads exactly size bytes from r and checks that nothing follows.
func readAll(r io.Reader, size int64) ([]byte, error) {
	if size == 0 {
		return nil, errors.New("empty file")
	}
	if size > math.MaxInt {
		return nil, fmt.Errorf("file of %d bytes does not fit in memory", size)
	}
	return readExact(r, size, size, "the file")
}

// torchArchive is the checked zip of a torch.save file.
type torchArchive struct {
	data    []byte
	prefix  string                 // the folder, with its trailing '/'
	entries map[string]*zip.File   // every entry by name
	spans   map[string][2]int64    // each entry's [begin, end) in data
	checked map[string]bool        // entries whose CRC was verified
	budget  int64                  // bytes of tensor data still allowed
	storage map[string]*torchStore // storages loaded so far, by key
}

// parseTorch is ParseTorch without the "safetensors:" prefix.
func parseTorch(data []byte) (*File, error) {
	if len(data) == 0 {
		return nil, errors.New("empty file")
	}
	if !IsZip(data) {
		return nil, errors.New("not a torch.save zip archive (no PK\\x03\\x04 magic)")
	}
	a, err := openArchive(data)
	if err != nil {
		return nil, err
	}
	if b, ok, err := a.entry("byteorder"); err != nil {
		return nil, err
	} else if ok && string(b) != "little" {
		return nil, fmt.Errorf("byteorder is %s; only little-endian files are supported", quote(string(b)))
	}
	pkl, _, err := a.entry("data.pkl")
	if err != nil {
		return nil, err
	}
	return a.unpickle(pkl)
}

// openArchive reads the zip's central directory and checks every entry.
func openArchive(data []byte) (*torchArchive, error) {
	size := int64(len(data))
	zr, err := zip.NewReader(bytes.NewReader(data), size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, fmt.Errorf("not a valid zip archive: %v", oneLine(err.Error()))
	}
	if len(zr.File) > maxTorchEntries {
		return nil, fmt.Errorf("zip archive has %d entries, more than the %d allowed", len(zr.File), maxTorchEntries)
	}
	a := &torchArchive{
		data:    data,
		entries: make(map[string]*zip.File, len(zr.File)),
		spans:   make(map[string][2]int64, len(zr.File)),
		checked: map[string]bool{},
		storage: map[string]*torchStore{},
	}
	a.budget = maxTorchSlack
	if size <= (math.MaxInt64-maxTorchSlack)/maxTorchExpansion {
		a.budget += maxTorchExpansion * size
	}
	pickles := 0
	for _, f := range zr.File {
		name := f.Name
		if _, dup := a.entries[name]; dup {
			return nil, fmt.Errorf("zip entry %s appears twice", quote(name))
		}
		if f.Method != zip.Store {
			return nil, fmt.Errorf("zip entry %s is compressed (method %d); torch.save stores entries uncompressed", quote(name), f.Method)
		}
		if f.CompressedSize64 != f.UncompressedSize64 {
			return nil, fmt.Errorf("zip entry %s: stored entry declares %d compressed and %d uncompressed bytes", quote(name), f.CompressedSize64, f.UncompressedSize64)
		}
		if f.UncompressedSize64 > uint64(size) {
			return nil, fmt.Errorf("zip entry %s declares %d bytes, more than the %d-byte file", quote(name), f.UncompressedSize64, size)
		}
		off, err := f.DataOffset()
		if err != nil {
			return nil, fmt.Errorf("zip entry %s: %v", quote(name), oneLine(err.Error()))
		}
		n := int64(f.UncompressedSize64)
		if off < 0 || off > size || n > size-off {
			return nil, fmt.Errorf("zip entry %s: %d bytes at offset %d run past the end of the %d-byte file", quote(name), n, off, size)
		}
		a.entries[name] = f
		a.spans[name] = [2]int64{off, off + n}
		if dir, ok := strings.CutSuffix(name, "/data.pkl"); ok && dir != "" && !strings.Contains(dir, "/") {
			pickles++
			a.prefix = dir + "/"
		}
	}
	switch pickles {
	case 0:
		return nil, errors.New("zip archive has no FOLDER/data.pkl entry: not a torch.save file")
	case 1:
	default:
		return nil, fmt.Errorf("zip archive has %d FOLDER/data.pkl entries; a torch.save file has one", pickles)
	}
	return a, nil
}

// entry returns the bytes of the entry prefix+name after checking its CRC,
// and whether it exists.
func (a *torchArchive) entry(name string) ([]byte, bool, error) {
	full := a.prefix + name
	f, ok := a.entries[full]
	if !ok {
		return nil, false, nil
	}
	sp := a.spans[full]
	b := a.data[sp[0]:sp[1]]
	if !a.checked[full] {
		if crc32.ChecksumIEEE(b) != f.CRC32 {
			return nil, false, fmt.Errorf("zip entry %s fails its CRC-32 check", quote(full))
		}
		a.checked[full] = true
	}
	return b, true, nil
}

// oneLine replaces line breaks in s and cuts it to a few hundred bytes, for
// messages that come from other packages.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const max = 200
	if len(s) > max {
		cut := max
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
