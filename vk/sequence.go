package vk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"

	"github.com/isab-vk/isab-vk/internal/checked"
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

// extent is the binding's offset and length in bytes, Size 0 meaning the
// rest of the buffer. The length is 0 when Offset lies outside the
// buffer; checkBinding refuses that and every range that does not lie
// within the buffer, after which off+n cannot overflow.
func (b Binding) extent() (off, n int64) {
	if b.Size != 0 {
		return b.Offset, b.Size
	}
	if b.Offset < 0 || b.Offset > b.Buf.size {
		return b.Offset, 0
	}
	return b.Offset, b.Buf.size - b.Offset
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
//
// A run that does not finish within the device's wait limit
// (Options.WaitTimeout) leaves the sequence stuck: Run returns an error
// naming the unfinished kernel, and since the GPU may still use the
// sequence's command buffer, fence, descriptors, views and query pool, none
// of them is destroyed while it may. Later Run and Reset calls look once
// whether the work has finished since: if it has, they go on as usual;
// otherwise they return an error saying the sequence is stuck. Close
// returns at once: it frees the objects if the work has finished by then,
// and otherwise leaves them to the device, which frees them when it sees
// the work finish (on a later submission, or in Device.Close); if it never
// does they are leaked, deliberately, as is the device (see Device.Close).
type Sequence struct {
	d          *Device
	ops        []dispatch
	pending    []access // accesses since the last barrier
	timestamps bool

	recorded bool
	obj      seqObjects
	what     func() string // names the recorded work in errors
	work     *work         // the last submission, until it is seen finished
	closed   bool
}

// seqObjects are the Vulkan objects of a recorded sequence.
type seqObjects struct {
	pool     vk.CommandPool
	cmd      vk.CommandBuffer
	descPool vk.DescriptorPool
	views    []vk.BufferView // texel-buffer views of the recorded bindings
	fence    vk.Fence
	query    vk.QueryPool
	probe    *queryProbe // reads query's availability for errors
}

// destroy destroys the objects that exist.
func (o *seqObjects) destroy(d *Device) {
	h := d.handle
	if o.probe != nil {
		o.probe.destroy()
	} else if o.query != vk.NullQueryPool {
		vk.DestroyQueryPool(h, o.query, nil)
	}
	if o.descPool != vk.NullDescriptorPool {
		vk.DestroyDescriptorPool(h, o.descPool, nil)
	}
	for _, v := range o.views {
		vk.DestroyBufferView(h, v, nil)
	}
	if o.fence != vk.NullFence {
		vk.DestroyFence(h, o.fence, nil)
		d.live.Add(-1)
	}
	if o.pool != vk.NullCommandPool {
		vk.DestroyCommandPool(h, o.pool, nil) // frees cmd too
	}
	*o = seqObjects{}
}

// NewSequence starts an empty sequence.
func (d *Device) NewSequence() *Sequence {
	return &Sequence{d: d}
}

// EnableTimestamps makes Run record a GPU timestamp after every dispatch,
// read back by Timings (and used to name the unfinished dispatch when a
// run exceeds the wait limit). It must be called before the first Run; it
// is ignored on devices without timestamp support (Info.Timestamps).
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
// push-constant bytes (see PushStruct and Push) and buffers, in binding order.
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
		if err := s.checkBinding(k, i, b); err != nil {
			return err
		}
	}
	op := dispatch{k: k, groups: groups, push: append([]byte(nil), push...), bindings: append([]Binding(nil), bindings...)}
	var mine []access
	for _, b := range bindings {
		off, n := b.extent()
		mine = append(mine, access{buf: b.Buf, start: off, end: off + n, write: b.Write})
	}
	if s.conflicts(mine) {
		op.barrier = true
		s.pending = nil
	}
	s.pending = append(s.pending, mine...)
	s.ops = append(s.ops, op)
	return nil
}

// checkBinding checks binding i of a dispatch of k: its buffer, its range
// (with overflow-checked arithmetic), alignment and size limits.
func (s *Sequence) checkBinding(k *Kernel, i int, b Binding) error {
	info := s.d.info
	if b.Buf == nil {
		return fmt.Errorf("vk: kernel %s: binding %d has no buffer", k.spec.Name, i)
	}
	if b.Buf.d != s.d {
		return fmt.Errorf("vk: kernel %s: binding %d is a buffer of another device", k.spec.Name, i)
	}
	off, n := b.extent()
	if n <= 0 || !checked.Range(off, n, b.Buf.size) {
		return fmt.Errorf("vk: kernel %s: binding %d covers %s, which is empty or outside its buffer of %s (%d bytes)",
			k.spec.Name, i, byteRange(off, n), checked.Bytes(b.Buf.size), b.Buf.size)
	}
	if typ := k.spec.descriptorType(i); isTexel(typ) {
		if b.Write && typ == vk.DescriptorTypeUniformTexelBuffer {
			return fmt.Errorf("vk: kernel %s: binding %d is a uniform texel buffer and cannot be written", k.spec.Name, i)
		}
		if a := int64(info.MinTexelBufferOffsetAlignment); a > 1 && off%a != 0 {
			return fmt.Errorf("vk: kernel %s: texel binding %d offset %d is not a multiple of %d", k.spec.Name, i, off, a)
		}
		if tb := k.spec.texelSize(i); n%tb != 0 || uint64(n/tb) > info.MaxTexelBufferElements {
			return fmt.Errorf("vk: kernel %s: texel binding %d covers %d bytes: want whole %d-byte texels, at most %d of them",
				k.spec.Name, i, n, tb, info.MaxTexelBufferElements)
		}
		return nil
	}
	if a := int64(info.MinStorageBufferOffsetAlignment); a > 1 && off%a != 0 {
		return fmt.Errorf("vk: kernel %s: binding %d offset %d is not a multiple of %d", k.spec.Name, i, off, a)
	}
	if uint64(n) > info.MaxStorageBufferRange {
		return fmt.Errorf("vk: kernel %s: binding %d covers %s (%d bytes), more than the device's maxStorageBufferRange %d; bind it in pieces",
			k.spec.Name, i, checked.Bytes(n), n, info.MaxStorageBufferRange)
	}
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
// It first waits for a run that a context cancelled (within the wait
// limit from that run's submission), and fails on a stuck sequence (see
// Sequence).
func (s *Sequence) Reset() error {
	if err := s.settle(nil); err != nil {
		return err
	}
	s.release()
	s.ops, s.pending = nil, nil
	return nil
}

// Run submits the sequence and waits for it. The first Run records the
// command buffer; later runs replay it. If ctx ends first, Run returns
// ctx.Err() within about 10 ms; the GPU work still finishes, and the next
// Run, Reset or Close waits for it, at most until the device's wait limit
// (Options.WaitTimeout) has passed since that run's submission: the limit
// bounds how long the work may take, not each wait. If ctx has already
// ended, Run submits nothing. A run that does not finish within the wait
// limit returns an error wrapping ErrWaitTimeout that names the kernel
// still running (the first dispatch whose end timestamp is not yet
// written, with EnableTimestamps) or the sequence's kernels, and leaves the
// sequence stuck (see Sequence). On a lost device Run returns an error
// wrapping ErrDeviceLost, at once for every run after the loss.
func (s *Sequence) Run(ctx context.Context) error {
	if s.closed {
		return errors.New("vk: run of a closed sequence")
	}
	if len(s.ops) == 0 {
		return nil
	}
	if ctx != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if err := s.settle(ctx); err != nil {
		return err
	}
	if s.d.lost.Load() {
		return s.d.lostError("vkQueueSubmit", true)
	}
	if !s.recorded {
		if err := s.record(); err != nil {
			s.release()
			return err
		}
		s.recorded = true
	}
	if err := s.d.check("vkResetFences", vk.ResetFences(s.d.handle, 1, []vk.Fence{s.obj.fence})); err != nil {
		return err
	}
	w, err := s.d.submitWork(s.obj.cmd, s.obj.fence, s.what)
	if err != nil {
		return err
	}
	s.work = w
	return s.wait(ctx)
}

// wait waits for the last submission (see Device.await) and forgets it
// once it has finished.
func (s *Sequence) wait(ctx context.Context) error {
	w := s.work
	err := s.d.await(ctx, w)
	if w.done.Load() {
		s.work = nil
	}
	if err != nil && w.stuck.Load() {
		return fmt.Errorf("%w; the sequence is stuck: Run and Reset refuse it until that work finishes, and Close keeps its Vulkan objects until then", err)
	}
	return err
}

// settle waits for a run that an earlier context cancelled, or looks once
// whether the work of a stuck sequence has finished since.
func (s *Sequence) settle(ctx context.Context) error {
	w := s.work
	if w == nil {
		return nil
	}
	if !w.stuck.Load() {
		return s.wait(ctx)
	}
	if s.d.poll(w) {
		s.work = nil
		return nil
	}
	return fmt.Errorf("vk: the sequence is stuck: %s did not finish within the wait limit of %v and may still be running; Close the sequence: %w",
		w.what(), s.d.waitLimit, ErrWaitTimeout)
}

// record creates the sequence's Vulkan objects and records its command
// buffer.
func (s *Sequence) record() error {
	d := s.d
	var err error
	if s.obj.pool, err = d.newCommandPool(); err != nil {
		return err
	}
	if s.obj.cmd, err = allocCommandBuffer(d.handle, s.obj.pool); err != nil {
		return err
	}
	if s.obj.fence, err = d.newFence(); err != nil {
		return err
	}
	d.live.Add(1)
	if err := s.createPools(); err != nil {
		return err
	}
	sets, err := s.writeDescriptors()
	if err != nil {
		return err
	}
	names, probe := s.Names(), s.obj.probe
	s.what = func() string { return describeRun(probe, names) }
	return s.recordCommands(sets)
}

// createPools creates the descriptor pool and, with timestamps, the query
// pool.
func (s *Sequence) createPools() error {
	d := s.d
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
	var madeDescPool = s.obj.descPool
	r := vk.CreateDescriptorPool(d.handle, pci, nil, &madeDescPool)
	s.obj.descPool = madeDescPool
	pci.Free()
	if err := check("vkCreateDescriptorPool", r); err != nil {
		return err
	}
	if !s.timestamps {
		return nil
	}
	qci := &vk.QueryPoolCreateInfo{
		SType:      vk.StructureTypeQueryPoolCreateInfo,
		QueryType:  vk.QueryTypeTimestamp,
		QueryCount: uint32(len(s.ops) + 1),
	}
	var madeQuery = s.obj.query
	r = vk.CreateQueryPool(d.handle, qci, nil, &madeQuery)
	s.obj.query = madeQuery
	qci.Free()
	if err := check("vkCreateQueryPool", r); err != nil {
		return err
	}
	s.obj.probe = &queryProbe{d: d, pool: s.obj.query, n: len(s.ops)}
	return nil
}

// writeDescriptors allocates and writes one descriptor set per dispatch,
// creating the texel-buffer views its bindings need.
func (s *Sequence) writeDescriptors() ([]vk.DescriptorSet, error) {
	d := s.d
	sets := make([]vk.DescriptorSet, len(s.ops))
	for i, op := range s.ops {
		ai := &vk.DescriptorSetAllocateInfo{
			SType:              vk.StructureTypeDescriptorSetAllocateInfo,
			DescriptorPool:     s.obj.descPool,
			DescriptorSetCount: 1,
			PSetLayouts:        []vk.DescriptorSetLayout{op.k.setLayout},
		}
		one := make([]vk.DescriptorSet, 1)
		r := vk.AllocateDescriptorSets(d.handle, ai, &one[0])
		ai.Free()
		if err := check("vkAllocateDescriptorSets", r); err != nil {
			return nil, err
		}
		sets[i] = one[0]
		writes := make([]descriptorWrite, len(op.bindings))
		for j, b := range op.bindings {
			off, n := b.extent()
			typ := op.k.spec.descriptorType(j)
			writes[j] = descriptorWrite{typ: typ, buf: b.Buf.handle, offset: off, length: n}
			if isTexel(typ) {
				view, err := d.newTexelView(b.Buf, off, n, op.k.spec.texelFormat(j))
				if err != nil {
					return nil, err
				}
				s.obj.views = append(s.obj.views, view)
				writes[j].view = view
			}
		}
		if err := d.updateDescriptorSet(sets[i], writes); err != nil {
			return nil, err
		}
	}
	return sets, nil
}

// recordCommands records the dispatches, their barriers and timestamps.
func (s *Sequence) recordCommands(sets []vk.DescriptorSet) error {
	d, cmd := s.d, s.obj.cmd
	if err := beginCommandBuffer(cmd); err != nil {
		return err
	}
	if s.timestamps {
		vk.CmdResetQueryPool(cmd, s.obj.query, 0, uint32(len(s.ops)+1))
		vk.CmdWriteTimestamp(cmd, vk.PipelineStageTopOfPipeBit, s.obj.query, 0)
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
			vk.CmdWriteTimestamp(cmd, vk.PipelineStageBottomOfPipeBit, s.obj.query, uint32(i+1))
		}
	}
	// Make the results visible to the host and to later submissions.
	d.memoryBarrier(cmd, vk.PipelineStageComputeShaderBit, vk.PipelineStageHostBit|vk.PipelineStageTransferBit|vk.PipelineStageComputeShaderBit,
		vk.AccessShaderWriteBit, vk.AccessHostReadBit|vk.AccessTransferReadBit|vk.AccessShaderReadBit)
	return check("vkEndCommandBuffer", vk.EndCommandBuffer(cmd))
}

// describeRun names the work of a sequence of dispatches of the kernels
// names for an error: with timestamps (probe not nil), the first dispatch
// whose end timestamp is not yet available, which is the one running or
// waiting to run; otherwise, or when every timestamp is there, the
// sequence's kernels.
func describeRun(probe *queryProbe, names []string) string {
	all := describeKernels(names)
	if probe == nil {
		return all
	}
	i, err := probe.firstUnavailable()
	switch {
	case err != nil:
		return fmt.Sprintf("%s, whose timestamps %v,", all, err)
	case i >= 0 && i < len(names):
		return fmt.Sprintf("dispatch %d (kernel %s), the first unfinished of %s,", i, names[i], all)
	}
	return all
}

// Timings returns the GPU time of each dispatch of the last Run, in order.
// It needs EnableTimestamps before the first Run.
func (s *Sequence) Timings() ([]time.Duration, error) {
	if !s.timestamps {
		return nil, errors.New("vk: timestamps are not enabled on this sequence (or the device lacks them)")
	}
	if !s.recorded || s.work != nil {
		return nil, errors.New("vk: no finished run to time")
	}
	n := len(s.ops) + 1
	raw := make([]byte, 8*n)
	r := vk.GetQueryPoolResults(s.d.handle, s.obj.query, 0, uint32(n), uint(len(raw)), unsafe.Pointer(&raw[0]), 8,
		vk.QueryResultFlags(vk.QueryResult64Bit|vk.QueryResultWaitBit))
	if err := s.d.check("vkGetQueryPoolResults", r); err != nil {
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

// release destroys the recorded Vulkan objects; no work may be using them.
func (s *Sequence) release() {
	s.obj.destroy(s.d)
	s.recorded = false
	s.what = nil
}

// Close frees the sequence's Vulkan objects. It first waits for a run that
// a context cancelled, at most until the wait limit from that run's
// submission. If the work has not finished then (or the sequence is
// stuck and its work has not finished since), Close returns at once and
// leaves the objects to the device, which frees them once it sees the work
// finish, or leaks them if it never does (see Sequence). Calling Close
// twice is harmless.
func (s *Sequence) Close() {
	if s.closed {
		return
	}
	s.closed = true
	if w := s.work; w != nil && !w.stuck.Load() {
		_ = s.wait(nil)
	}
	if w := s.work; w != nil && !s.d.poll(w) {
		d, obj := s.d, s.obj
		s.obj = seqObjects{}
		d.orphan(w, func() { obj.destroy(d) })
	}
	s.work = nil
	s.release()
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

// PushStruct encodes p, a struct or a pointer to one whose fields are all
// uint32, int32 or float32, as push constants: each field one little-endian
// 4-byte word, in field order, which is how GLSL lays out a push_constant
// block of uint, int and float members. Kernels with more than a few push
// constants take such a struct, written once beside the GLSL block it
// mirrors, instead of Push's positional values. It panics when p is not
// such a struct, a programming error that PushStructSize reports as an
// error.
func PushStruct(p any) []byte {
	v := reflect.Indirect(reflect.ValueOf(p))
	if err := checkPushType(v.Type()); err != nil {
		panic(err.Error())
	}
	out := make([]byte, 4*v.NumField())
	for i := range v.NumField() {
		f := v.Field(i)
		var w uint32
		switch f.Kind() {
		case reflect.Uint32:
			w = uint32(f.Uint())
		case reflect.Int32:
			w = uint32(int32(f.Int()))
		case reflect.Float32:
			w = math.Float32bits(float32(f.Float()))
		}
		binary.LittleEndian.PutUint32(out[4*i:], w)
	}
	return out
}

// PushStructSize returns the bytes of push constants that PushStruct
// encodes for values of p's type (4 per field), or an error when p is not a
// struct, or a pointer to one, whose fields are all uint32, int32 or float32.
func PushStructSize(p any) (int, error) {
	if p == nil {
		return 0, errors.New("vk: push constants: nil")
	}
	t := reflect.TypeOf(p)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if err := checkPushType(t); err != nil {
		return 0, err
	}
	return 4 * t.NumField(), nil
}

// checkPushType checks that t is a struct of uint32, int32 and float32
// fields.
func checkPushType(t reflect.Type) error {
	if t.Kind() != reflect.Struct {
		return fmt.Errorf("vk: push constants: %s is not a struct", t)
	}
	for i := range t.NumField() {
		switch f := t.Field(i); f.Type.Kind() {
		case reflect.Uint32, reflect.Int32, reflect.Float32:
		default:
			return fmt.Errorf("vk: push constants: field %s of %s is a %s, not uint32, int32 or float32", f.Name, t, f.Type)
		}
	}
	return nil
}

// newTexelView creates a view of size bytes of b from byte off as texels of
// the given format.
func (d *Device) newTexelView(b *Buffer, off, size int64, format vk.Format) (vk.BufferView, error) {
	if !checked.Range(off, size, b.size) {
		return vk.NullBufferView, fmt.Errorf("vk: texel view of %s is outside a buffer of %s (%d bytes)", byteRange(off, size), checked.Bytes(b.size), b.size)
	}
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
