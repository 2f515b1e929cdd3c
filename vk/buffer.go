package vk

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"

	"github.com/isab-vk/isab-vk/internal/checked"
)

// Buffer is a device-local buffer, bindable as a storage or a texel
// buffer. When the device's local memory is host-visible (lavapipe,
// integrated GPUs) it is mapped and filled directly;
// otherwise Write and Read go through a temporary staging buffer.
type Buffer struct {
	d      *Device
	handle vk.Buffer
	memory vk.DeviceMemory
	size   int64
	mapped unsafe.Pointer // non-nil when host-visible
	once   sync.Once
}

// Size is the buffer's size in bytes.
func (b *Buffer) Size() int64 { return b.size }

// NewBuffer allocates a buffer (storage and texel-buffer usage) of the
// given size in bytes. A size that is not positive is an error; so is one
// larger than the device-local heap (Info.DeviceLocalBytes), which wraps
// ErrOutOfMemory and is reported before any allocation is attempted. A
// size the heap could hold may still fail to allocate (memory in use,
// driver limits), with an error wrapping ErrOutOfMemory too. Buffers larger
// than Info.MaxStorageBufferRange are allowed; they are bound in pieces.
func (d *Device) NewBuffer(size int64) (*Buffer, error) {
	if size <= 0 {
		return nil, fmt.Errorf("vk: buffer size must be positive, got %d bytes", size)
	}
	if err := d.CheckFootprint("a buffer", size); err != nil {
		return nil, err
	}
	usage := vk.BufferUsageStorageBufferBit | vk.BufferUsageUniformTexelBufferBit | vk.BufferUsageStorageTexelBufferBit |
		vk.BufferUsageTransferSrcBit | vk.BufferUsageTransferDstBit
	h, mem, mapped, err := d.allocBuffer(size, usage, true)
	if err != nil {
		return nil, err
	}
	b := &Buffer{d: d, handle: h, memory: mem, size: size, mapped: mapped}
	d.addLiveBytes(size)
	return b, nil
}

// allocBuffer creates a buffer with its own memory allocation and maps it
// when the memory is host-visible.
func (d *Device) allocBuffer(size int64, usage vk.BufferUsageFlagBits, deviceLocal bool) (vk.Buffer, vk.DeviceMemory, unsafe.Pointer, error) {
	ci := &vk.BufferCreateInfo{
		SType:       vk.StructureTypeBufferCreateInfo,
		Size:        vk.DeviceSize(size),
		Usage:       vk.BufferUsageFlags(usage),
		SharingMode: vk.SharingModeExclusive,
	}
	var h vk.Buffer
	r := vk.CreateBuffer(d.handle, ci, nil, &h)
	ci.Free()
	if err := check("vkCreateBuffer", r); err != nil {
		return nil, nil, nil, fmt.Errorf("vk: a buffer of %s (%d bytes): %w", checked.Bytes(size), size, err)
	}
	var req vk.MemoryRequirements
	vk.GetBufferMemoryRequirements(d.handle, h, &req)
	req.Deref()
	t, ok := pickMemoryType(d.mem, req.MemoryTypeBits, deviceLocal)
	if !ok {
		vk.DestroyBuffer(d.handle, h, nil)
		return nil, nil, nil, errors.New("vk: no suitable memory type for a buffer")
	}
	ai := &vk.MemoryAllocateInfo{
		SType:           vk.StructureTypeMemoryAllocateInfo,
		AllocationSize:  req.Size,
		MemoryTypeIndex: t,
	}
	var mem vk.DeviceMemory
	r = vk.AllocateMemory(d.handle, ai, nil, &mem)
	ai.Free()
	if err := check("vkAllocateMemory", r); err != nil {
		vk.DestroyBuffer(d.handle, h, nil)
		return nil, nil, nil, fmt.Errorf("vk: allocating %s (%d bytes) on %q (device-local heap %s): %w",
			checked.Bytes(size), size, d.info.Name, checked.Bytes(d.info.DeviceLocalBytes), err)
	}
	if err := check("vkBindBufferMemory", vk.BindBufferMemory(d.handle, h, mem, 0)); err != nil {
		vk.FreeMemory(d.handle, mem, nil)
		vk.DestroyBuffer(d.handle, h, nil)
		return nil, nil, nil, err
	}
	var mapped unsafe.Pointer
	f := memFlags(d.mem, t)
	if f&vk.MemoryPropertyHostVisibleBit != 0 && f&vk.MemoryPropertyHostCoherentBit != 0 {
		if err := d.check("vkMapMemory", vk.MapMemory(d.handle, mem, 0, vk.DeviceSize(size), 0, &mapped)); err != nil {
			vk.FreeMemory(d.handle, mem, nil)
			vk.DestroyBuffer(d.handle, h, nil)
			return nil, nil, nil, err
		}
	}
	d.live.Add(1)
	return h, mem, mapped, nil
}

func (d *Device) freeBuffer(h vk.Buffer, mem vk.DeviceMemory, mapped unsafe.Pointer) {
	if mapped != nil {
		vk.UnmapMemory(d.handle, mem)
	}
	vk.DestroyBuffer(d.handle, h, nil)
	vk.FreeMemory(d.handle, mem, nil)
	d.live.Add(-1)
}

// Free releases the buffer. It must not be in use by a running sequence.
// Calling Free twice is harmless. While a submission of the device is
// stuck (its wait ran out of time, see Sequence.Run), it may still use any
// buffer, so Free then only marks the buffer freed: its memory is released
// once no stuck work is left (seen by a later submission, wait or
// Device.Close), and never if the work never finishes.
func (b *Buffer) Free() {
	if b == nil {
		return
	}
	b.once.Do(func() {
		release := func() {
			b.d.freeBuffer(b.handle, b.memory, b.mapped)
			b.d.addLiveBytes(-b.size)
		}
		if !b.d.deferWhileStuck(release) {
			release()
		}
	})
}

// checkRange checks that the n bytes at off lie within the buffer, for op
// ("write", "read").
func (b *Buffer) checkRange(op string, off, n int64) error {
	if checked.Range(off, n, b.size) {
		return nil
	}
	return fmt.Errorf("vk: %s of %s is outside a buffer of %s (%d bytes)", op, byteRange(off, n), checked.Bytes(b.size), b.size)
}

// byteRange formats the n bytes at off as "bytes [off, off+n)", or as "n
// bytes at offset off" when either is negative or the end does not fit an
// int64.
func byteRange(off, n int64) string {
	if end, ok := checked.Add(off, n); ok {
		return fmt.Sprintf("bytes [%d, %d)", off, end)
	}
	if off < 0 || n < 0 {
		return fmt.Sprintf("%d bytes at offset %d", n, off)
	}
	return fmt.Sprintf("%d bytes at offset %d (the end overflows int64)", n, off)
}

// Write copies data into the buffer at byte offset off.
func (b *Buffer) Write(off int64, data []byte) error {
	if err := b.checkRange("write", off, int64(len(data))); err != nil {
		return err
	}
	if len(data) == 0 {
		return nil
	}
	if b.mapped != nil {
		copy(unsafe.Slice((*byte)(unsafe.Add(b.mapped, off)), len(data)), data)
		return nil
	}
	return b.d.staged(b, off, data, true)
}

// Read copies len(dst) bytes from byte offset off of the buffer into dst.
func (b *Buffer) Read(off int64, dst []byte) error {
	if err := b.checkRange("read", off, int64(len(dst))); err != nil {
		return err
	}
	if len(dst) == 0 {
		return nil
	}
	if b.mapped != nil {
		copy(dst, unsafe.Slice((*byte)(unsafe.Add(b.mapped, off)), len(dst)))
		return nil
	}
	return b.d.staged(b, off, dst, false)
}

// staged moves data between host memory and a buffer that is not
// host-visible, through a staging buffer, in pieces of at most 64 MiB.
func (d *Device) staged(b *Buffer, off int64, data []byte, upload bool) error {
	total := int64(len(data))
	if !checked.Range(off, total, b.size) {
		return b.checkRange("staged copy", off, total)
	}
	chunk := min(int64(stagingChunkSize), total)
	sh, smem, smapped, err := d.allocBuffer(chunk, vk.BufferUsageTransferSrcBit|vk.BufferUsageTransferDstBit, false)
	if err != nil {
		return fmt.Errorf("vk: staging buffer: %w", err)
	}
	var stuck *work
	defer func() {
		if stuck != nil { // the copy may still use it
			d.orphan(stuck, func() { d.freeBuffer(sh, smem, smapped) })
			return
		}
		d.freeBuffer(sh, smem, smapped)
	}()
	if smapped == nil {
		return errors.New("vk: staging memory is not host-visible")
	}
	stage := unsafe.Slice((*byte)(smapped), chunk)
	for done := int64(0); done < total; done += chunk {
		n := min(total-done, chunk)
		at, ok := checked.Add(off, done)
		if !ok {
			return b.checkRange("staged copy", off, total)
		}
		if upload {
			copy(stage[:n], data[done:done+n])
		}
		src, dst := sh, b.handle
		srcOff, dstOff := int64(0), at
		if !upload {
			src, dst = b.handle, sh
			srcOff, dstOff = at, 0
		}
		if stuck, err = d.copyBuffer(src, srcOff, dst, dstOff, n); err != nil {
			return err
		}
		if !upload {
			copy(data[done:done+n], stage[:n])
		}
	}
	return nil
}

// copyBuffer records and runs one buffer-to-buffer copy, ordered after all
// earlier work on the queue, and waits for it (within the wait limit). When
// the wait ends without the copy having finished it returns the copy's
// work with the error: the caller must then keep the buffers alive until
// that work finishes (Device.orphan).
func (d *Device) copyBuffer(src vk.Buffer, srcOff int64, dst vk.Buffer, dstOff, n int64) (*work, error) {
	d.xferMu.Lock()
	defer d.xferMu.Unlock()
	cmd, err := allocCommandBuffer(d.handle, d.xferPool)
	if err != nil {
		return nil, err
	}
	fence, err := d.newFence()
	if err != nil {
		vk.FreeCommandBuffers(d.handle, d.xferPool, 1, []vk.CommandBuffer{cmd})
		return nil, err
	}
	free := func() {
		d.destroyFence(fence)
		vk.FreeCommandBuffers(d.handle, d.xferPool, 1, []vk.CommandBuffer{cmd})
	}
	if err := d.recordCopy(cmd, src, srcOff, dst, dstOff, n); err != nil {
		free()
		return nil, err
	}
	w, err := d.submitWork(cmd, fence, func() string { return fmt.Sprintf("a buffer copy of %s (%d bytes)", checked.Bytes(n), n) })
	if err != nil {
		free()
		return nil, err
	}
	err = d.await(nil, w)
	if err != nil && !errors.Is(err, ErrDeviceLost) {
		// The copy may still run. Its command buffer stays allocated in
		// the transfer pool, which Device.Close destroys only after all
		// work has finished; its fence lives until it has signalled.
		d.orphan(w, func() { d.destroyFence(fence) })
		return w, err
	}
	free()
	return nil, err
}

// recordCopy records into cmd a copy of n bytes between barriers that order
// it after earlier shader and transfer writes and before later reads.
func (d *Device) recordCopy(cmd vk.CommandBuffer, src vk.Buffer, srcOff int64, dst vk.Buffer, dstOff, n int64) error {
	if err := beginCommandBuffer(cmd); err != nil {
		return err
	}
	d.memoryBarrier(cmd, vk.PipelineStageAllCommandsBit, vk.PipelineStageTransferBit,
		vk.AccessShaderWriteBit|vk.AccessTransferWriteBit, vk.AccessTransferReadBit|vk.AccessTransferWriteBit)
	d.cmdCopyBuffer(cmd, src, srcOff, dst, dstOff, n)
	d.memoryBarrier(cmd, vk.PipelineStageTransferBit, vk.PipelineStageAllCommandsBit|vk.PipelineStageHostBit,
		vk.AccessTransferWriteBit, vk.AccessShaderReadBit|vk.AccessShaderWriteBit|vk.AccessHostReadBit)
	return check("vkEndCommandBuffer", vk.EndCommandBuffer(cmd))
}

// Number is the element types that Upload and Download move.
type Number interface {
	~float32 | ~float64 | ~int32 | ~uint32 | ~uint16 | ~int16 | ~uint8 | ~int8 | ~int64 | ~uint64
}

func asBytes[T Number](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	var z T
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(z)))
}

// Upload writes data into b starting at element offset off (in units of T).
func Upload[T Number](b *Buffer, off int, data []T) error {
	var z T
	sz := int64(unsafe.Sizeof(z))
	at, ok := checked.Mul(int64(off), sz)
	if !ok {
		return fmt.Errorf("vk: upload of %d elements of %d bytes at element offset %d: the offset is negative or overflows int64; the buffer holds %s (%d bytes)",
			len(data), sz, off, checked.Bytes(b.size), b.size)
	}
	return b.Write(at, asBytes(data))
}

// Download reads n elements of type T from b starting at element offset off.
func Download[T Number](b *Buffer, off, n int) ([]T, error) {
	var z T
	sz := int64(unsafe.Sizeof(z))
	at, ok1 := checked.Mul(int64(off), sz)
	bytes, ok2 := checked.Mul(int64(n), sz)
	if !ok1 || !ok2 || !checked.Range(at, bytes, b.size) {
		return nil, fmt.Errorf("vk: download of %d elements of %d bytes at element offset %d is outside a buffer of %s (%d bytes, %d elements)",
			n, sz, off, checked.Bytes(b.size), b.size, b.size/sz)
	}
	out := make([]T, n)
	if err := b.Read(int64(off)*sz, asBytes(out)); err != nil {
		return nil, err
	}
	return out, nil
}

// BufferFrom allocates a buffer holding data.
func BufferFrom[T Number](d *Device, data []T) (*Buffer, error) {
	var z T
	size, ok := checked.Mul(int64(len(data)), int64(unsafe.Sizeof(z)))
	if !ok {
		return nil, fmt.Errorf("vk: a buffer of %d elements of %d bytes overflows int64", len(data), unsafe.Sizeof(z))
	}
	if size == 0 {
		size = 4
	}
	b, err := d.NewBuffer(size)
	if err != nil {
		return nil, err
	}
	if err := Upload(b, 0, data); err != nil {
		b.Free()
		return nil, err
	}
	return b, nil
}

func allocCommandBuffer(dev vk.Device, pool vk.CommandPool) (vk.CommandBuffer, error) {
	ai := &vk.CommandBufferAllocateInfo{
		SType:              vk.StructureTypeCommandBufferAllocateInfo,
		CommandPool:        pool,
		Level:              vk.CommandBufferLevelPrimary,
		CommandBufferCount: 1,
	}
	cmds := make([]vk.CommandBuffer, 1)
	r := vk.AllocateCommandBuffers(dev, ai, cmds)
	ai.Free()
	if err := check("vkAllocateCommandBuffers", r); err != nil {
		return nil, err
	}
	return cmds[0], nil
}

func beginCommandBuffer(cmd vk.CommandBuffer) error {
	bi := &vk.CommandBufferBeginInfo{SType: vk.StructureTypeCommandBufferBeginInfo}
	r := vk.BeginCommandBuffer(cmd, bi)
	bi.Free()
	return check("vkBeginCommandBuffer", r)
}

func (d *Device) newFence() (vk.Fence, error) {
	ci := &vk.FenceCreateInfo{SType: vk.StructureTypeFenceCreateInfo}
	var f vk.Fence
	r := vk.CreateFence(d.handle, ci, nil, &f)
	ci.Free()
	if err := check("vkCreateFence", r); err != nil {
		return nil, err
	}
	return f, nil
}

func (d *Device) destroyFence(f vk.Fence) { vk.DestroyFence(d.handle, f, nil) }
