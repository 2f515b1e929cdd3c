package vk

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
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

// NewBuffer allocates a buffer (storage and texel-buffer usage) of the given size in bytes. A size
// larger than the device's memory is an error wrapping ErrOutOfMemory.
func (d *Device) NewBuffer(size int64) (*Buffer, error) {
	if size <= 0 {
		return nil, fmt.Errorf("vk: buffer size must be positive, got %d", size)
	}
	if d.info.DeviceMemory > 0 && uint64(size) > d.info.DeviceMemory {
		return nil, fmt.Errorf("vk: a buffer of %d bytes exceeds the %d bytes of device memory of %q: %w",
			size, d.info.DeviceMemory, d.info.Name, ErrOutOfMemory)
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
		return nil, nil, nil, fmt.Errorf("a buffer of %d bytes: %w", size, err)
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
		return nil, nil, nil, fmt.Errorf("allocating %d bytes on %q: %w", size, d.info.Name, err)
	}
	if err := check("vkBindBufferMemory", vk.BindBufferMemory(d.handle, h, mem, 0)); err != nil {
		vk.FreeMemory(d.handle, mem, nil)
		vk.DestroyBuffer(d.handle, h, nil)
		return nil, nil, nil, err
	}
	var mapped unsafe.Pointer
	f := memFlags(d.mem, t)
	if f&vk.MemoryPropertyHostVisibleBit != 0 && f&vk.MemoryPropertyHostCoherentBit != 0 {
		if err := check("vkMapMemory", vk.MapMemory(d.handle, mem, 0, vk.DeviceSize(size), 0, &mapped)); err != nil {
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
// Calling Free twice is harmless.
func (b *Buffer) Free() {
	if b == nil {
		return
	}
	b.once.Do(func() {
		b.d.freeBuffer(b.handle, b.memory, b.mapped)
		b.d.addLiveBytes(-b.size)
	})
}

func (b *Buffer) checkRange(off, n int64) error {
	if off < 0 || n < 0 || off+n > b.size {
		return fmt.Errorf("vk: range [%d, %d) is outside a buffer of %d bytes", off, off+n, b.size)
	}
	return nil
}

// Write copies data into the buffer at byte offset off.
func (b *Buffer) Write(off int64, data []byte) error {
	if err := b.checkRange(off, int64(len(data))); err != nil {
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
	if err := b.checkRange(off, int64(len(dst))); err != nil {
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
	chunk := int64(stagingChunkSize)
	if int64(len(data)) < chunk {
		chunk = int64(len(data))
	}
	sh, smem, smapped, err := d.allocBuffer(chunk, vk.BufferUsageTransferSrcBit|vk.BufferUsageTransferDstBit, false)
	if err != nil {
		return fmt.Errorf("vk: staging buffer: %w", err)
	}
	defer d.freeBuffer(sh, smem, smapped)
	if smapped == nil {
		return errors.New("vk: staging memory is not host-visible")
	}
	stage := unsafe.Slice((*byte)(smapped), chunk)
	for done := int64(0); done < int64(len(data)); done += chunk {
		n := int64(len(data)) - done
		if n > chunk {
			n = chunk
		}
		if upload {
			copy(stage[:n], data[done:done+n])
		}
		src, dst := sh, b.handle
		srcOff, dstOff := int64(0), off+done
		if !upload {
			src, dst = b.handle, sh
			srcOff, dstOff = off+done, 0
		}
		if err := d.copyBuffer(src, srcOff, dst, dstOff, n); err != nil {
			return err
		}
		if !upload {
			copy(data[done:done+n], stage[:n])
		}
	}
	return nil
}

// copyBuffer records and runs one buffer-to-buffer copy, ordered after all
// earlier work on the queue.
func (d *Device) copyBuffer(src vk.Buffer, srcOff int64, dst vk.Buffer, dstOff, n int64) error {
	d.xferMu.Lock()
	defer d.xferMu.Unlock()
	cmd, err := allocCommandBuffer(d.handle, d.xferPool)
	if err != nil {
		return err
	}
	defer vk.FreeCommandBuffers(d.handle, d.xferPool, 1, []vk.CommandBuffer{cmd})
	if err := beginCommandBuffer(cmd); err != nil {
		return err
	}
	d.memoryBarrier(cmd, vk.PipelineStageAllCommandsBit, vk.PipelineStageTransferBit,
		vk.AccessShaderWriteBit|vk.AccessTransferWriteBit, vk.AccessTransferReadBit|vk.AccessTransferWriteBit)
	d.cmdCopyBuffer(cmd, src, srcOff, dst, dstOff, n)
	d.memoryBarrier(cmd, vk.PipelineStageTransferBit, vk.PipelineStageAllCommandsBit|vk.PipelineStageHostBit,
		vk.AccessTransferWriteBit, vk.AccessShaderReadBit|vk.AccessShaderWriteBit|vk.AccessHostReadBit)
	if err := check("vkEndCommandBuffer", vk.EndCommandBuffer(cmd)); err != nil {
		return err
	}
	fence, err := d.newFence()
	if err != nil {
		return err
	}
	defer d.destroyFence(fence)
	if err := d.submit(cmd, fence); err != nil {
		return err
	}
	return d.waitFence(fence)
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
	if off < 0 || int64(off) > math.MaxInt64/sz {
		return fmt.Errorf("vk: bad element offset %d", off)
	}
	return b.Write(int64(off)*sz, asBytes(data))
}

// Download reads n elements of type T from b starting at element offset off.
func Download[T Number](b *Buffer, off, n int) ([]T, error) {
	if n < 0 || off < 0 {
		return nil, fmt.Errorf("vk: bad download range: offset %d, count %d", off, n)
	}
	var z T
	sz := int64(unsafe.Sizeof(z))
	if int64(off)+int64(n) > b.size/sz {
		return nil, fmt.Errorf("vk: download of %d elements at %d exceeds a buffer of %d bytes", n, off, b.size)
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
	size := int64(len(data)) * int64(unsafe.Sizeof(z))
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

// waitFence blocks until the fence signals.
func (d *Device) waitFence(f vk.Fence) error {
	for {
		r := vk.WaitForFences(d.handle, 1, []vk.Fence{f}, vk.True, 1_000_000_000)
		if r == vk.Timeout {
			continue
		}
		return check("vkWaitForFences", r)
	}
}
