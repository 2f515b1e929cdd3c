package vk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// Binding is one buffer bound to a kernel: a byte range of a buffer, and
// whether the dispatch writes it (which decides where barriers go). Whether
// it is a storage or a texel buffer comes from the kernel (KernelSpec.Texel
// and KernelSpec.StorageTexel).
type Binding struct {
	Buf    *Buffer
	Offset int64 // bytes; a multiple of Info.MinStorageBufferOffsetAlignment (MinTexelBufferOffsetAlignment for texel buffers)
	Size   int64 // bytes; 0 means from Offset to the end of the buffer
	Write  bool
}

// In binds the whole of b for reading.
func In(b *Buffer) Binding { return Binding{Buf: b} }

// Out binds the whole of b for writing.
func Out(b *Buffer) Binding { return Binding{Buf: b, Write: true} }

func (b Binding) span() (int64, int64) {
	size := b.Size
	if size == 0 {
		size = b.Buf.size - b.Offset
	}
	return b.Offset, b.Offset + size
}

type dispatch struct {
	k        *Kernel
	groups   [3]uint32
	push     []byte
	bindings []Binding
	barrier  bool // a barrier goes before this dispatch
}

type access struct {
	buf        *Buffer
	start, end int64
	write      bool
}

// Sequence is a command buffer of dispatches, recorded once and run any
// number of times. Dispatch inserts a barrier only before a dispatch that
// reads or writes a range that an earlier dispatch since the last barrier
// wrote (or writes one that it read). A Sequence is not safe for concurrent
// use; use one per goroutine.
type Sequence struct {
	d          *Device
	ops        []dispatch
	pending    []access // accesses since the last barrier
	timestamps bool

	recorded bool
	inFlight bool
	pool     vk.CommandPool
	cmd      vk.CommandBuffer
	descPool vk.DescriptorPool
	views    []vk.BufferView // texel-buffer views of the recorded bindings
	fence    vk.Fence
	query    vk.QueryPool
	closed   bool
}

// NewSequence starts an empty sequence.
func (d *Device) NewSequence() *Sequence {
	return &Sequence{d: d}
}

// EnableTimestamps makes Run record a GPU timestamp after every dispatch,
// read back by Timings. It must be called before the first Run; it is
// ignored on devices without timestamp support (Info.Timestamps).
func (s *Sequence) EnableTimestamps() {
	if s.d.info.Timestamps && !s.recorded {
		s.timestamps = true
	}
}

// Len is the number of dispatches recorded.
func (s *Sequence) Len() int { return len(s.ops) }

// Names lists the kernel name of every dispatch, in order, matching Timings.
func (s *Sequence) Names() []string {
	names := make([]string, len(s.ops))
	for i, op := range s.ops {
		names[i] = op.k.spec.Name
	}
	return names
}

// Barriers is the number of barriers that the sequence inserts between its
// dispatches.
func (s *Sequence) Barriers() int {
	n := 0
	for _, op := range s.ops {
		if op.barrier {
			n++
		}
	}
	return n
}

// Dispatch appends a kernel dispatch of groups workgroups with the given
// push-constant bytes (see Push) and buffers, in binding order.
func (s *Sequence) Dispatch(k *Kernel, groups [3]uint32, push []byte, bindings ...Binding) error {
	if s.closed {
		return errors.New("vk: dispatch on a closed sequence")
	}
	if s.recorded {
		return fmt.Errorf("vk: dispatch of %s on a sequence that already ran; use Reset first", k.spec.Name)
	}
	if k.d != s.d {
		return fmt.Errorf("vk: kernel %s belongs to another device", k.spec.Name)
	}
	if len(push) != k.spec.PushSize {
		return fmt.Errorf("vk: kernel %s takes %d bytes of push constants, got %d", k.spec.Name, k.spec.PushSize, len(push))
	}
	if len(bindings) != k.spec.Buffers {
		return fmt.Errorf("vk: kernel %s takes %d buffers, got %d", k.spec.Name, k.spec.Buffers, len(bindings))
	}
	info := s.d.info
	for i, g := range groups {
		if g == 0 || g > info.MaxGroupCount[i] {
			return fmt.Errorf("vk: kernel %s: %d workgroups in dimension %d (allowed 1..%d)", k.spec.Name, g, i, info.MaxGroupCount[i])
		}
	}
	for i, b := range bindings {
		if b.Buf == nil {
			return fmt.Errorf("vk: kernel %s: binding %d has no buffer", k.spec.Name, i)
		}
		if b.Buf.d != s.d {
			return fmt.Errorf("vk: kernel %s: binding %d is a buffer of another device", k.spec.Name, i)
		}
		start, end := b.span()
		if start < 0 || end > b.Buf.size || end <= start {
			return fmt.Errorf("vk: kernel %s: binding %d range [%d, %d) is outside its buffer of %d bytes", k.spec.Name, i, start, end, b.Buf.size)
		}
		if typ := k.spec.descriptorType(i); isTexel(typ) {
			if b.Write && typ == vk.DescriptorTypeUniformTexelBuffer {
				return fmt.Errorf("vk: kernel %s: binding %d is a uniform texel buffer and cannot be written", k.spec.Name, i)
			}
			if a := int64(info.MinTexelBufferOffsetAlignment); a > 1 && start%a != 0 {
				return fmt.Errorf("vk: kernel %s: texel binding %d offset %d is not a multiple of %d", k.spec.Name, i, start, a)
			}
			if tb := k.spec.texelSize(i); (end-start)%tb != 0 || uint64((end-start)/tb) > info.MaxTexelBufferElements {
				return fmt.Errorf("vk: kernel %s: texel binding %d covers %d bytes: want whole %d-byte texels, at most %d of them",
					k.spec.Name, i, end-start, tb, info.MaxTexelBufferElements)
			}
			continue
		}
		if a := int64(info.MinStorageBufferOffsetAlignment); a > 1 && start%a != 0 {
			return fmt.Errorf("vk: kernel %s: binding %d offset %d is not a multiple of %d", k.spec.Name, i, start, a)
		}
		if uint64(end-start) > info.MaxStorageBufferRange {
			return fmt.Errorf("vk: kernel %s: binding %d covers %d bytes, more than the device's maxStorageBufferRange %d; bind it in pieces",
				k.spec.Name, i, end-start, info.MaxStorageBufferRange)
		}
	}
	op := dispatch{k: k, groups: groups, push: append([]byte(nil), push...), bindings: append([]Binding(nil), bindings...)}
	var mine []access
	for _, b := range bindings {
		start, end := b.span()
		mine = append(mine, access{buf: b.Buf, start: start, end: end, write: b.Write})
	}
	if s.conflicts(mine) {
		op.barrier = true
		s.pending = nil
	}
	s.pending = append(s.pending, mine...)
	s.ops = append(s.ops, op)
	return nil
}

// conflicts reports whether any of the new accesses overlaps an access since
// the last barrier where at least one of the two writes.
func (s *Sequence) conflicts(mine []access) bool {
	for _, a := range mine {
		for _, p := range s.pending {
			if a.buf == p.buf && a.start < p.end && p.start < a.end && (a.write || p.write) {
				return true
			}
		}
	}
	return false
}

// Reset drops the recorded dispatches so the sequence can be filled anew.
func (s *Sequence) Reset() error {
	if err := s.settle(); err != nil {
		return err
	}
	s.release()
	s.ops, s.pending, s.recorded = nil, nil, false
	return nil
}

// Run submits the sequence and waits for it. The first Run records the
// command buffer; later runs replay it. If ctx ends first, Run returns
// ctx.Err(); the GPU work still finishes, and the next Run, Reset or Close
// waits for it.
func (s *Sequence) Run(ctx context.Context) error {
	if s.closed {
		return errors.New("vk: run of a closed sequence")
	}
	if len(s.ops) == 0 {
		return nil
	}
	if err := s.settle(); err != nil {
		return err
	}
	if !s.recorded {
		if err := s.record(); err != nil {
			s.release()
			return err
		}
		s.recorded = true
	}
	if err := check("vkResetFences", vk.ResetFences(s.d.handle, 1, []vk.Fence{s.fence})); err != nil {
		return err
	}
	if err := s.d.submit(s.cmd, s.fence); err != nil {
		return err
	}
	s.inFlight = true
	return s.wait(ctx)
}

// wait blocks until the submitted work is done or ctx ends.
func (s *Sequence) wait(ctx context.Context) error {
	for {
		r := vk.WaitForFences(s.d.handle, 1, []vk.Fence{s.fence}, vk.True, 20_000_000)
		if r == vk.Success {
			s.inFlight = false
			return nil
		}
		if r != vk.Timeout {
			return check("vkWaitForFences", r)
		}
		if ctx != nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			default:
			}
		}
	}
}

// settle waits for a run that an earlier context cancelled.
func (s *Sequence) settle() error {
	if !s.inFlight {
		return nil
	}
	return s.wait(context.Background())
}

func (s *Sequence) record() error {
	d := s.d
	var err error
	if s.pool, err = d.newCommandPool(); err != nil {
		return err
	}
	if s.cmd, err = allocCommandBuffer(d.handle, s.pool); err != nil {
		return err
	}
	if s.fence, err = d.newFence(); err != nil {
		return err
	}
	d.live.Add(1)
	counts := map[vk.DescriptorType]int{vk.DescriptorTypeStorageBuffer: 0}
	for _, op := range s.ops {
		for j := range op.bindings {
			counts[op.k.spec.descriptorType(j)]++
		}
	}
	var sizes []vk.DescriptorPoolSize
	for _, t := range []vk.DescriptorType{vk.DescriptorTypeStorageBuffer, vk.DescriptorTypeUniformTexelBuffer, vk.DescriptorTypeStorageTexelBuffer} {
		if n, ok := counts[t]; ok {
			sizes = append(sizes, vk.DescriptorPoolSize{Type: t, DescriptorCount: uint32(max(n, 1))})
		}
	}
	pci := &vk.DescriptorPoolCreateInfo{
		SType:         vk.StructureTypeDescriptorPoolCreateInfo,
		MaxSets:       uint32(len(s.ops)),
		PoolSizeCount: uint32(len(sizes)),
		PPoolSizes:    sizes,
	}
	var madeDescPool = s.descPool
	r := vk.CreateDescriptorPool(d.handle, pci, nil, &madeDescPool)
	s.descPool = madeDescPool
	pci.Free()
	if err := check("vkCreateDescriptorPool", r); err != nil {
		return err
	}
	if s.timestamps {
		qci := &vk.QueryPoolCreateInfo{
			SType:      vk.StructureTypeQueryPoolCreateInfo,
			QueryType:  vk.QueryTypeTimestamp,
			QueryCount: uint32(len(s.ops) + 1),
		}
		var madeQuery = s.query
		r := vk.CreateQueryPool(d.handle, qci, nil, &madeQuery)
		s.query = madeQuery
		qci.Free()
		if err := check("vkCreateQueryPool", r); err != nil {
			return err
		}
	}
	sets := make([]vk.DescriptorSet, len(s.ops))
	for i, op := range s.ops {
		ai := &vk.DescriptorSetAllocateInfo{
			SType:              vk.StructureTypeDescriptorSetAllocateInfo,
			DescriptorPool:     s.descPool,
			DescriptorSetCount: 1,
			PSetLayouts:        []vk.DescriptorSetLayout{op.k.setLayout},
		}
		one := make([]vk.DescriptorSet, 1)
		r := vk.AllocateDescriptorSets(d.handle, ai, &one[0])
		ai.Free()
		if err := check("vkAllocateDescriptorSets", r); err != nil {
			return err
		}
		sets[i] = one[0]
		writes := make([]descriptorWrite, len(op.bindings))
		for j, b := range op.bindings {
			start, end := b.span()
			typ := op.k.spec.descriptorType(j)
			writes[j] = descriptorWrite{typ: typ, buf: b.Buf.handle, offset: start, length: end - start}
			if isTexel(typ) {
				view, err := d.newTexelView(b.Buf, start, end-start, op.k.spec.texelFormat(j))
				if err != nil {
					return err
				}
				s.views = append(s.views, view)
				writes[j].view = view
			}
		}
		if err := d.updateDescriptorSet(sets[i], writes); err != nil {
			return err
		}
	}

	cmd := s.cmd
	if err := beginCommandBuffer(cmd); err != nil {
		return err
	}
	if s.timestamps {
		vk.CmdResetQueryPool(cmd, s.query, 0, uint32(len(s.ops)+1))
		vk.CmdWriteTimestamp(cmd, vk.PipelineStageTopOfPipeBit, s.query, 0)
	}
	for i, op := range s.ops {
		if op.barrier {
			d.memoryBarrier(cmd, vk.PipelineStageComputeShaderBit, vk.PipelineStageComputeShaderBit,
				vk.AccessShaderWriteBit|vk.AccessShaderReadBit, vk.AccessShaderReadBit|vk.AccessShaderWriteBit)
		}
		vk.CmdBindPipeline(cmd, vk.PipelineBindPointCompute, op.k.pipeline)
		vk.CmdBindDescriptorSets(cmd, vk.PipelineBindPointCompute, op.k.layout, 0, 1, []vk.DescriptorSet{sets[i]}, 0, nil)
		if len(op.push) > 0 {
			vk.CmdPushConstants(cmd, op.k.layout, vk.ShaderStageFlags(vk.ShaderStageComputeBit), 0, uint32(len(op.push)), unsafe.Pointer(&op.push[0]))
		}
		vk.CmdDispatch(cmd, op.groups[0], op.groups[1], op.groups[2])
		if s.timestamps {
			vk.CmdWriteTimestamp(cmd, vk.PipelineStageBottomOfPipeBit, s.query, uint32(i+1))
		}
	}
	// Make the results visible to the host and to later submissions.
	d.memoryBarrier(cmd, vk.PipelineStageComputeShaderBit, vk.PipelineStageHostBit|vk.PipelineStageTransferBit|vk.PipelineStageComputeShaderBit,
		vk.AccessShaderWriteBit, vk.AccessHostReadBit|vk.AccessTransferReadBit|vk.AccessShaderReadBit)
	return check("vkEndCommandBuffer", vk.EndCommandBuffer(cmd))
}

// Timings returns the GPU time of each dispatch of the last Run, in order.
// It needs EnableTimestamps before the first Run.
func (s *Sequence) Timings() ([]time.Duration, error) {
	if !s.timestamps {
		return nil, errors.New("vk: timestamps are not enabled on this sequence (or the device lacks them)")
	}
	if !s.recorded || s.inFlight {
		return nil, errors.New("vk: no finished run to time")
	}
	n := len(s.ops) + 1
	raw := make([]byte, 8*n)
	r := vk.GetQueryPoolResults(s.d.handle, s.query, 0, uint32(n), uint(len(raw)), unsafe.Pointer(&raw[0]), 8,
		vk.QueryResultFlags(vk.QueryResult64Bit|vk.QueryResultWaitBit))
	if err := check("vkGetQueryPoolResults", r); err != nil {
		return nil, err
	}
	period := float64(s.d.info.TimestampPeriod)
	out := make([]time.Duration, len(s.ops))
	prev := binary.LittleEndian.Uint64(raw) & s.d.tsMask
	for i := range out {
		t := binary.LittleEndian.Uint64(raw[8*(i+1):]) & s.d.tsMask
		out[i] = time.Duration(float64((t-prev)&s.d.tsMask) * period)
		prev = t
	}
	return out, nil
}

// release destroys the recorded Vulkan objects.
func (s *Sequence) release() {
	h := s.d.handle
	if s.query != vk.NullQueryPool {
		vk.DestroyQueryPool(h, s.query, nil)
		s.query = vk.NullQueryPool
	}
	if s.descPool != vk.NullDescriptorPool {
		vk.DestroyDescriptorPool(h, s.descPool, nil)
		s.descPool = vk.NullDescriptorPool
	}
	for _, v := range s.views {
		vk.DestroyBufferView(h, v, nil)
	}
	s.views = nil
	if s.fence != vk.NullFence {
		vk.DestroyFence(h, s.fence, nil)
		s.fence = vk.NullFence
		s.d.live.Add(-1)
	}
	if s.pool != vk.NullCommandPool {
		vk.DestroyCommandPool(h, s.pool, nil) // frees s.cmd too
		s.pool = vk.NullCommandPool
		s.cmd = nil
	}
	s.recorded = false
}

// Close waits for any run in flight and frees the sequence's Vulkan objects.
// Calling Close twice is harmless.
func (s *Sequence) Close() {
	if s.closed {
		return
	}
	_ = s.settle()
	s.release()
	s.closed = true
	s.ops, s.pending = nil, nil
}

// Push encodes push-constant values as consecutive little-endian 4-byte
// words: int, int32, uint32 and uint as 32-bit integers, float32 and float64
// as float32, bool as 0 or 1. It panics on any other type, or on an integer
// that does not fit 32 bits, since both are programming errors.
func Push(vals ...any) []byte {
	out := make([]byte, 4*len(vals))
	for i, v := range vals {
		var w uint32
		switch x := v.(type) {
		case int:
			if x < math.MinInt32 || x > math.MaxUint32 {
				panic(fmt.Sprintf("vk.Push: %d does not fit 32 bits", x))
			}
			w = uint32(x)
		case int32:
			w = uint32(x)
		case uint32:
			w = x
		case uint:
			if x > math.MaxUint32 {
				panic(fmt.Sprintf("vk.Push: %d does not fit 32 bits", x))
			}
			w = uint32(x)
		case float32:
			w = math.Float32bits(x)
		case float64:
			w = math.Float32bits(float32(x))
		case bool:
			if x {
				w = 1
			}
		default:
			panic(fmt.Sprintf("vk.Push: unsupported type %T", v))
		}
		binary.LittleEndian.PutUint32(out[4*i:], w)
	}
	return out
}

// newTexelView creates a view of size bytes of b from byte off as texels of
// the given format.
func (d *Device) newTexelView(b *Buffer, off, size int64, format vk.Format) (vk.BufferView, error) {
	ci := &vk.BufferViewCreateInfo{
		SType:  vk.StructureTypeBufferViewCreateInfo,
		Buffer: b.handle,
		Format: format,
		Offset: vk.DeviceSize(off),
		Range:  vk.DeviceSize(size),
	}
	var v vk.BufferView
	r := vk.CreateBufferView(d.handle, ci, nil, &v)
	ci.Free()
	if err := check("vkCreateBufferView", r); err != nil {
		return vk.NullBufferView, err
	}
	return v, nil
}
