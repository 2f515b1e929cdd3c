package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/isab-vk/isab-vk/internal/checked"
	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// maxPickleNumber is the longest number the pickle may spell (a LONG1 or
// LONG4 in bytes, an INT, LONG or FLOAT line in characters): the unpickler
// decodes long numbers in quadratic time.
const maxPickleNumber = 64

// pickle opcodes by argument kind; see Python's pickletools.
const (
	argNone   = iota + 1 // no argument
	argFixed             // a fixed number of bytes (in fixedLen)
	argLen1              // a 1-byte length, then that many bytes
	argLen4              // a 4-byte little-endian length, then that many bytes
	argLen8              // an 8-byte little-endian length, then that many bytes
	argLine              // a line ending in '\n'
	argLine2             // two lines
	argRefuse            // an opcode a state_dict does not need
)

var (
	pickleArg [256]byte
	fixedLen  [256]int
)

func init() {
	for _, op := range []byte("(.012NRabd})ela]stu\x85\x86\x87\x88\x89\x8f\x90\x91\x93\x94Q") {
		pickleArg[op] = argNone
	}
	for op, n := range map[byte]int{'J': 4, 'K': 1, 'M': 2, 'h': 1, 'j': 4, 'q': 1, 'r': 4, 'G': 8, 0x80: 1, 0x95: 8} {
		pickleArg[op], fixedLen[op] = argFixed, n
	}
	for _, op := range []byte("UC\x8c\x8a") {
		pickleArg[op] = argLen1
	}
	for _, op := range []byte("TBX\x8b") {
		pickleArg[op] = argLen4
	}
	for _, op := range []byte("\x8d\x8e\x96") {
		pickleArg[op] = argLen8
	}
	for _, op := range []byte("ILFSVPgp") {
		pickleArg[op] = argLine
	}
	pickleArg['c'] = argLine2
	for _, op := range []byte("io\x81\x92\x82\x83\x84\x97\x98") {
		pickleArg[op] = argRefuse
	}
}

// scanPickle walks the opcodes of p without running them and checks that
// every argument lies within p, numbers are short, no refused opcode or
// disallowed GLOBAL appears, and p ends right after its first STOP. It
// bounds what the unpickler allocates: nothing it reads can be longer
// than p. It is one function of about 95 lines on purpose: one loop with
// one switch over the argument kinds of the opcode table, which reads
// best, and is fuzzed best, as a whole.
func scanPickle(p []byte) error {
	pos := 0
	line := func() ([]byte, error) {
		i := bytes.IndexByte(p[pos:], '\n')
		if i < 0 {
			return nil, fmt.Errorf("pickle: unterminated line at byte %d", pos)
		}
		l := p[pos : pos+i]
		pos += i + 1
		return l, nil
	}
	for pos < len(p) {
		at, op := pos, p[pos]
		pos++
		var n uint64
		switch pickleArg[op] {
		case argNone:
			if op == '.' {
				if pos != len(p) {
					return fmt.Errorf("pickle: %d bytes follow its STOP opcode", len(p)-pos)
				}
				return nil
			}
			continue
		case argFixed:
			n = uint64(fixedLen[op])
			if n > uint64(len(p)-pos) {
				return fmt.Errorf("pickle: opcode 0x%02x at byte %d is truncated", op, at)
			}
			if op == 0x95 { // FRAME: its contents follow inline
				fl := binary.LittleEndian.Uint64(p[pos:])
				if fl > uint64(len(p)-pos-8) {
					return fmt.Errorf("pickle: frame of %d bytes at byte %d runs past its end", fl, at)
				}
			}
			pos += int(n)
			continue
		case argLen1:
			if pos+1 > len(p) {
				return fmt.Errorf("pickle: opcode 0x%02x at byte %d is truncated", op, at)
			}
			n = uint64(p[pos])
			pos++
		case argLen4:
			if pos+4 > len(p) {
				return fmt.Errorf("pickle: opcode 0x%02x at byte %d is truncated", op, at)
			}
			n = uint64(binary.LittleEndian.Uint32(p[pos:]))
			if (op == 'T' || op == 0x8b) && n >= 1<<31 { // signed lengths
				return fmt.Errorf("pickle: negative length at byte %d", at)
			}
			pos += 4
		case argLen8:
			if pos+8 > len(p) {
				return fmt.Errorf("pickle: opcode 0x%02x at byte %d is truncated", op, at)
			}
			n = binary.LittleEndian.Uint64(p[pos:])
			pos += 8
		case argLine:
			l, err := line()
			if err != nil {
				return err
			}
			if (op == 'I' || op == 'L' || op == 'F') && len(l) > maxPickleNumber {
				return fmt.Errorf("pickle: number of %d characters at byte %d", len(l), at)
			}
			continue
		case argLine2:
			module, err := line()
			if err != nil {
				return err
			}
			name, err := line()
			if err != nil {
				return err
			}
			if _, err := torchGlobal(string(module), string(name)); err != nil {
				return err
			}
			continue
		case argRefuse:
			return fmt.Errorf("pickle: opcode 0x%02x at byte %d is not allowed in a state_dict (it builds arbitrary objects)", op, at)
		default:
			return fmt.Errorf("pickle: unknown opcode 0x%02x at byte %d", op, at)
		}
		if n > uint64(len(p)-pos) {
			return fmt.Errorf("pickle: opcode 0x%02x at byte %d declares %d bytes, past its end", op, at, n)
		}
		if (op == 0x8a || op == 0x8b) && n > maxPickleNumber {
			return fmt.Errorf("pickle: integer of %d bytes at byte %d", n, at)
		}
		pos += int(n)
	}
	return errors.New("pickle: no STOP opcode")
}

// torchStorageType is an allowed storage class: a value in a persistent id.
type torchStorageType struct {
	name  string
	dtype DType
}

// torchRebuild is an allowed rebuild function.
type torchRebuild struct{ name string }

// torchStore is one storage of the archive.
type torchStore struct {
	key   string
	dtype DType
	numel int64
	data  []byte
}

// torchTensor is a view of a storage, as _rebuild_tensor_v2 describes it.
type torchTensor struct {
	store  *torchStore
	offset int64
	shape  []int
	stride []int64
}

var torchStorageTypes = map[string]DType{
	"FloatStorage": F32, "HalfStorage": F16, "BFloat16Storage": BF16, "DoubleStorage": F64,
	"LongStorage": I64, "IntStorage": I32, "ShortStorage": I16, "CharStorage": I8,
	"ByteStorage": U8, "BoolStorage": BOOL, "UntypedStorage": U8,
}

// torchGlobal returns the value for an allowed global, or an error naming it.
func torchGlobal(module, name string) (any, error) {
	switch module {
	case "collections":
		if name == "OrderedDict" {
			return &types.OrderedDictClass{}, nil
		}
	case "torch._utils":
		switch name {
		case "_rebuild_tensor_v2", "_rebuild_tensor", "_rebuild_parameter":
			return &torchRebuild{name: name}, nil
		}
	case "torch", "torch.storage":
		if dt, ok := torchStorageTypes[name]; ok && (module == "torch" || name == "UntypedStorage") {
			return &torchStorageType{name: module + "." + name, dtype: dt}, nil
		}
	}
	return nil, fmt.Errorf("pickle: global %s is not allowed (a state_dict needs only OrderedDict, torch._utils._rebuild_* and torch storage types; no code is run)", quote(module+"."+name))
}

// unpickle runs the checked pickle with the allowlist and turns its value
// into a File.
func (a *torchArchive) unpickle(p []byte) (file *File, err error) {
	if err := scanPickle(p); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			file, err = nil, fmt.Errorf("pickle: malformed (%s)", oneLine(fmt.Sprint(r)))
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(p))
	u.FindClass = func(module, name string) (any, error) {
		return torchGlobal(module, name)
	}
	u.PersistentLoad = a.persistentLoad
	u.GetExtension = func(int) (any, error) { return nil, errors.New("pickle: extension codes are not allowed") }
	u.NextBuffer = func() (any, error) { return nil, errors.New("pickle: out-of-band buffers are not allowed") }
	v, err := u.Load()
	if err != nil {
		var te *torchError
		if errors.As(err, &te) {
			return nil, te
		}
		return nil, fmt.Errorf("pickle: %s", oneLine(err.Error()))
	}
	return a.stateDict(v)
}

// torchError is an error of this file's own, passed through the unpickler
// unchanged.
type torchError struct{ msg string }

func (e *torchError) Error() string { return e.msg }

func torchErrorf(format string, args ...any) error {
	return &torchError{fmt.Sprintf(format, args...)}
}

// persistentLoad resolves ('storage', TYPE, KEY, LOCATION, NUMEL).
func (a *torchArchive) persistentLoad(pid any) (any, error) {
	t, ok := pid.(*types.Tuple)
	if !ok || t.Len() != 5 {
		return nil, torchErrorf("pickle: persistent id is not a 5-tuple ('storage', type, key, location, numel)")
	}
	if s, _ := t.Get(0).(string); s != "storage" {
		return nil, torchErrorf("pickle: persistent id does not begin with 'storage'")
	}
	st, ok := t.Get(1).(*torchStorageType)
	if !ok {
		return nil, torchErrorf("pickle: persistent id names no allowed storage type")
	}
	key, ok := t.Get(2).(string)
	if !ok {
		return nil, torchErrorf("pickle: storage key is not a string")
	}
	numel, ok := pyInt(t.Get(4))
	if !ok || numel < 0 {
		return nil, torchErrorf("pickle: storage %s: element count is not a non-negative integer", quote(key))
	}
	if s, ok := a.storage[key]; ok {
		if s.dtype != st.dtype || s.numel != numel {
			return nil, torchErrorf("pickle: storage %s is named twice with different types or sizes", quote(key))
		}
		return s, nil
	}
	data, ok, err := a.entry("data/" + key)
	if err != nil {
		return nil, &torchError{err.Error()}
	}
	if !ok {
		return nil, torchErrorf("storage %s: no zip entry %s", quote(key), quote(a.prefix+"data/"+key))
	}
	want, ok := checked.Mul(numel, int64(st.dtype.Size()))
	if !ok || want != int64(len(data)) {
		return nil, torchErrorf("storage %s: %d elements of %s need %s bytes, the entry has %d", quote(key), numel, st.name, byteCount(numel, st.dtype), len(data))
	}
	s := &torchStore{key: key, dtype: st.dtype, numel: numel, data: data}
	a.storage[key] = s
	return s, nil
}

// byteCount formats numel*size, or "more than 2^63" when it overflows.
func byteCount(numel int64, d DType) string {
	if n, ok := checked.Mul(numel, int64(d.Size())); ok {
		return fmt.Sprint(n)
	}
	return "more than 2^63"
}

// pyInt returns v as an int64 when it is a Python int that fits.
func pyInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case *big.Int:
		if x.IsInt64() {
			return x.Int64(), true
		}
	case bool:
		// A bool is no size, offset or stride.
	}
	return 0, false
}

// Call rebuilds a tensor (or unwraps a parameter) without running code.
func (r *torchRebuild) Call(args ...any) (any, error) {
	if r.name == "_rebuild_parameter" {
		// (data, requires_grad, backward_hooks)
		if len(args) != 3 {
			return nil, torchErrorf("pickle: torch._utils._rebuild_parameter takes 3 arguments, got %d", len(args))
		}
		t, ok := args[0].(*torchTensor)
		if !ok {
			return nil, torchErrorf("pickle: torch._utils._rebuild_parameter of something that is not a tensor")
		}
		if err := emptyHooks(args[2]); err != nil {
			return nil, err
		}
		return t, nil
	}
	// _rebuild_tensor(storage, offset, size, stride) and
	// _rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
	// backward_hooks[, metadata]).
	if r.name == "_rebuild_tensor" && len(args) != 4 || r.name == "_rebuild_tensor_v2" && len(args) != 6 && len(args) != 7 {
		return nil, torchErrorf("pickle: torch._utils.%s: unexpected %d arguments", r.name, len(args))
	}
	s, ok := args[0].(*torchStore)
	if !ok {
		return nil, torchErrorf("pickle: torch._utils.%s: first argument is not a storage", r.name)
	}
	if len(args) >= 6 {
		if err := emptyHooks(args[5]); err != nil {
			return nil, err
		}
	}
	offset, ok := pyInt(args[1])
	if !ok || offset < 0 {
		return nil, torchErrorf("pickle: tensor on storage %s: storage offset is not a non-negative integer", quote(s.key))
	}
	shape, err := intTuple(args[2], "size", s.key)
	if err != nil {
		return nil, err
	}
	stride, err := intTuple(args[3], "stride", s.key)
	if err != nil {
		return nil, err
	}
	if len(stride) != len(shape) {
		return nil, torchErrorf("pickle: tensor on storage %s: %d sizes but %d strides", quote(s.key), len(shape), len(stride))
	}
	t := &torchTensor{store: s, offset: offset, shape: make([]int, len(shape)), stride: stride}
	for i, d := range shape {
		if d > int64(maxInt) {
			return nil, torchErrorf("pickle: tensor on storage %s: dimension %d does not fit in an int", quote(s.key), d)
		}
		t.shape[i] = int(d)
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	return t, nil
}

const maxInt = int(^uint(0) >> 1)

// emptyHooks checks that backward hooks are absent or an empty dict.
func emptyHooks(v any) error {
	switch h := v.(type) {
	case nil:
		return nil
	case *types.OrderedDict:
		if h.Len() == 0 {
			return nil
		}
	case *types.Dict:
		if h.Len() == 0 {
			return nil
		}
	}
	return torchErrorf("pickle: tensor has backward hooks; a state_dict has none")
}

// intTuple reads a tuple of non-negative ints of at most MaxRank items.
func intTuple(v any, what, key string) ([]int64, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, torchErrorf("pickle: tensor on storage %s: %s is not a tuple", quote(key), what)
	}
	if t.Len() > MaxRank {
		return nil, torchErrorf("pickle: tensor on storage %s: %s has %d dimensions, more than %d", quote(key), what, t.Len(), MaxRank)
	}
	out := make([]int64, t.Len())
	for i := range out {
		x, ok := pyInt(t.Get(i))
		if !ok || x < 0 {
			return nil, torchErrorf("pickle: tensor on storage %s: %s[%d] is not a non-negative integer", quote(key), what, i)
		}
		out[i] = x
	}
	return out, nil
}

// check verifies that every element the view addresses lies in its storage.
func (t *torchTensor) check() error {
	n, err := numElements(t.shape)
	if err != nil {
		return torchErrorf("pickle: tensor on storage %s: %v", quote(t.store.key), err)
	}
	if _, ok := checked.Mul(n, t.store.dtype.Size()); !ok {
		return torchErrorf("pickle: tensor on storage %s: byte size of shape %s overflows", quote(t.store.key), formatShape(t.shape))
	}
	if n == 0 {
		if t.offset > t.store.numel {
			return torchErrorf("pickle: tensor on storage %s: offset %d is past the storage's %d elements", quote(t.store.key), t.offset, t.store.numel)
		}
		return nil
	}
	last := t.offset // the highest element index the view reaches
	for i, d := range t.shape {
		step, ok := checked.Mul(int64(d-1), t.stride[i])
		if ok {
			last, ok = checked.Add(last, step)
		}
		if !ok {
			return torchErrorf("pickle: tensor on storage %s: offset and strides overflow", quote(t.store.key))
		}
	}
	if last >= t.store.numel {
		return torchErrorf("pickle: tensor on storage %s: shape %s, strides %v and offset %d reach element %d, past the storage's %d elements", quote(t.store.key), formatShape(t.shape), t.stride, t.offset, last, t.store.numel)
	}
	return nil
}

// bytes copies the view out of its storage in row-major order.
func (t *torchTensor) bytes() []byte {
	size := t.store.dtype.Size()
	n, _ := numElements(t.shape)
	out := make([]byte, n*size)
	if n == 0 {
		return out
	}
	contiguous, want := true, int64(1)
	for i := len(t.shape) - 1; i >= 0; i-- {
		if t.shape[i] != 1 && t.stride[i] != want {
			contiguous = false
			break
		}
		want *= int64(t.shape[i])
	}
	src := t.store.data
	if contiguous {
		copy(out, src[t.offset*int64(size):])
		return out
	}
	idx := make([]int, len(t.shape))
	pos := t.offset
	for e := 0; e < n; e++ {
		copy(out[e*size:(e+1)*size], src[pos*int64(size):])
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			pos += t.stride[d]
			if idx[d] < t.shape[d] {
				break
			}
			pos -= int64(idx[d]) * t.stride[d]
			idx[d] = 0
		}
	}
	return out
}

// stateDict turns the unpickled value into a File.
func (a *torchArchive) stateDict(v any) (*File, error) {
	type item struct {
		key any
		val any
	}
	var items []item
	switch d := v.(type) {
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			oe := e.Value.(*types.OrderedDictEntry)
			items = append(items, item{oe.Key, oe.Value})
		}
	case *types.Dict:
		for _, e := range *d {
			items = append(items, item{e.Key, e.Value})
		}
	default:
		return nil, fmt.Errorf("pickle: holds a %T, not a state_dict (a dict of tensors)", v)
	}
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		name, ok := it.key.(string)
		if !ok {
			return nil, fmt.Errorf("pickle: state_dict key of type %T is not a string", it.key)
		}
		if seen[name] {
			return nil, fmt.Errorf("pickle: state_dict key %s appears twice", quote(name))
		}
		seen[name] = true
	}
	file := &File{Tensors: make(map[string]*Tensor, len(items))}
	budget := a.budget
	for _, it := range items {
		name := it.key.(string)
		t, ok := it.val.(*torchTensor)
		if !ok {
			return nil, fmt.Errorf("pickle: state_dict entry %s is a %T, not a tensor", quote(name), it.val)
		}
		n, _ := numElements(t.shape)
		nb := int64(n) * int64(t.store.dtype.Size())
		if nb > budget {
			return nil, fmt.Errorf("tensor %s: the tensors' bytes would exceed %d times the file's size (views that repeat their storage)", quote(name), maxTorchExpansion)
		}
		budget -= nb
		file.Tensors[name] = &Tensor{Name: name, DType: t.store.dtype, Shape: t.shape, Data: t.bytes()}
	}
	return file, nil
}
