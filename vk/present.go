package vk

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// SurfaceFunc makes the window's surface (a VkSurfaceKHR) for instance (a
// VkInstance) and returns it with the VkResult of the call that made it
// (0, VK_SUCCESS, or an error code, which vk names). The window system's
// library provides it (glfwCreateWindowSurface for isab's viewer), so that
// vk links no window system and the headless binary no X11.
type SurfaceFunc func(instance unsafe.Pointer) (surface unsafe.Pointer, result int32)

// PresentOptions configures OpenPresenter.
type PresentOptions struct {
	// Extensions are the instance extensions that the window system needs
	// for its surface (GLFW's GetRequiredInstanceExtensions), for
	// example VK_KHR_surface and VK_KHR_xcb_surface.
	Extensions []string
	// Surface makes the window's surface; it is required.
	Surface SurfaceFunc
	// Width and Height are the window's framebuffer size in pixels, for
	// the first swapchain (see Resize).
	Width, Height int
	// Device prefers the physical device of this name (Info.Name), when
	// it can present to the surface; other devices are tried next, also
	// when a device that says it can present fails to make the swapchain.
	Device string
	// Validation turns on the Khronos validation layer, whose messages
	// join ValidationMessages. ISAB_VALIDATION=1 does the same.
	Validation bool
	// WaitTimeout bounds each wait for a swapchain image and for a
	// frame's copy, as Options.WaitTimeout does a device's work.
	WaitTimeout time.Duration
}

// Presenter shows frames in a window: it has its own Vulkan instance with
// the window system's surface extensions, the surface, a device with one
// queue that can present to it, a swapchain whose images are transfer
// destinations, and a host-visible transfer buffer that each frame is
// copied through (vkCmdCopyBufferToImage). It is not safe for concurrent
// use.
type Presenter struct {
	in        *instance
	surface   vk.Surface
	phys      vk.PhysicalDevice
	info      Info
	family    uint32
	handle    vk.Device
	fns       *presentFns
	queue     vk.Queue
	mem       vk.PhysicalDeviceMemoryProperties
	pool      vk.CommandPool
	cmd       vk.CommandBuffer
	acquired  vk.Semaphore // signalled when the acquired image may be written
	done      vk.Semaphore // signalled when the frame's copy is done
	fence     vk.Fence     // signalled with done, for the host
	waitLimit time.Duration

	swap          vk.Swapchain
	images        []vk.Image
	format        int32 // VkFormat of the images
	width, height uint32
	stage         hostBuffer
}

// hostBuffer is a mapped, host-visible, coherent transfer-source buffer.
type hostBuffer struct {
	handle vk.Buffer
	memory vk.DeviceMemory
	mapped []byte
}

// The two image formats a Presenter writes: VK_FORMAT_R8G8B8A8_UNORM and
// VK_FORMAT_B8G8R8A8_UNORM.
const (
	formatRGBA8 = 37
	formatBGRA8 = 44
)

// OpenPresenter opens a Presenter for the window whose surface
// opts.Surface makes, with a swapchain of opts.Width x opts.Height.
func OpenPresenter(opts PresentOptions) (*Presenter, error) {
	if opts.Surface == nil {
		return nil, errors.New("vk: OpenPresenter: PresentOptions.Surface is nil")
	}
	if len(opts.Extensions) == 0 {
		return nil, errors.New("vk: OpenPresenter: the window system names no instance extensions for its surface")
	}
	limit, err := resolveWaitTimeout(opts.WaitTimeout)
	if err != nil {
		return nil, err
	}
	if err := load(); err != nil {
		return nil, err
	}
	available := instanceExtensions()
	for _, e := range opts.Extensions {
		if !hasName(available, e) {
			return nil, fmt.Errorf("vk: the Vulkan loader lacks %s, which the window's surface needs", e)
		}
	}
	in, err := newInstance(opts.Validation || envValidation(), opts.Extensions...)
	if err != nil {
		return nil, err
	}
	p := &Presenter{in: in, waitLimit: limit}
	s, r := opts.Surface(unsafe.Pointer(in.handle))
	if err := check("PresentOptions.Surface", vk.Result(r)); err != nil {
		p.Close()
		return nil, fmt.Errorf("vk: creating the window's surface: %w", err)
	}
	p.surface = vk.Surface(s)
	cands, err := p.candidates(opts.Device)
	if err != nil {
		p.Close()
		return nil, err
	}
	var errs []error
	for _, c := range cands {
		p.phys, p.info, p.family = p.in.phys[c.index], p.in.infos[c.index], c.family
		err := p.openDevice()
		if err == nil {
			err = p.Resize(opts.Width, opts.Height)
		}
		if err == nil {
			return p, nil
		}
		errs = append(errs, fmt.Errorf("vk: presenting with %q: %w", p.info.Name, err))
		p.closeDevice()
	}
	p.Close()
	return nil, errors.Join(errs...)
}

// presentCandidate is a physical device (its index) and a queue family of
// it that can present to the surface.
type presentCandidate struct {
	index  int
	family uint32
}

// candidates lists the devices with a queue family that can copy (graphics
// or compute) and present, those named want first, each with its first
// such family.
func (p *Presenter) candidates(want string) ([]presentCandidate, error) {
	var cands []presentCandidate
	var errs []error // of devices that could not say
	for pass := 0; pass < 2; pass++ {
		for i, ph := range p.in.phys {
			if (p.in.infos[i].Name == want) != (pass == 0) {
				continue
			}
			for f, q := range queueFamilies(p.in.handle, ph) {
				if vk.QueueFlagBits(q.QueueFlags)&(vk.QueueGraphicsBit|vk.QueueComputeBit) == 0 {
					continue
				}
				ok, err := surfaceSupport(p.in.handle, ph, uint32(f), p.surface)
				if err != nil {
					errs = append(errs, fmt.Errorf("vk: asking %q whether it can present: %w", p.in.infos[i].Name, err))
					break
				}
				if ok {
					cands = append(cands, presentCandidate{i, uint32(f)})
					break
				}
			}
		}
	}
	if len(cands) == 0 {
		return nil, errors.Join(append([]error{errors.New("vk: no Vulkan device can present to this window")}, errs...)...)
	}
	return cands, nil
}

// openDevice creates the device and the objects each frame uses.
func (p *Presenter) openDevice() error {
	h, err := createPresentDevice(p.in.handle, p.phys, p.family, hasName(p.in.exts[p.info.Index], portabilitySub))
	if err != nil {
		return err
	}
	p.handle = h
	if p.fns, err = loadPresentFns(p.in.handle, h); err != nil {
		return err
	}
	var q vk.Queue
	vk.GetDeviceQueue(h, p.family, 0, &q)
	p.queue = q
	vk.GetPhysicalDeviceMemoryProperties(p.phys, &p.mem)
	p.mem.Deref()
	for i := uint32(0); i < p.mem.MemoryTypeCount; i++ {
		p.mem.MemoryTypes[i].Deref()
	}
	pci := &vk.CommandPoolCreateInfo{
		SType:            vk.StructureTypeCommandPoolCreateInfo,
		Flags:            vk.CommandPoolCreateFlags(vk.CommandPoolCreateResetCommandBufferBit),
		QueueFamilyIndex: p.family,
	}
	var pool vk.CommandPool
	r := vk.CreateCommandPool(h, pci, nil, &pool)
	pci.Free()
	if err := check("vkCreateCommandPool", r); err != nil {
		return err
	}
	p.pool = pool
	if p.cmd, err = allocCommandBuffer(h, pool); err != nil {
		return err
	}
	for _, s := range []*vk.Semaphore{&p.acquired, &p.done} {
		sci := &vk.SemaphoreCreateInfo{SType: vk.StructureTypeSemaphoreCreateInfo}
		var sem vk.Semaphore
		r := vk.CreateSemaphore(h, sci, nil, &sem)
		sci.Free()
		if err := check("vkCreateSemaphore", r); err != nil {
			return err
		}
		*s = sem
	}
	fci := &vk.FenceCreateInfo{SType: vk.StructureTypeFenceCreateInfo}
	var fence vk.Fence
	r = vk.CreateFence(h, fci, nil, &fence)
	fci.Free()
	if err := check("vkCreateFence", r); err != nil {
		return err
	}
	p.fence = fence
	return nil
}

// Info describes the presenting device.
func (p *Presenter) Info() Info { return p.info }

// Size is the swapchain's size in pixels: what Present wants.
func (p *Presenter) Size() (width, height int) { return int(p.width), int(p.height) }

// Images is the number of swapchain images.
func (p *Presenter) Images() int { return len(p.images) }

// Format names the swapchain images' format.
func (p *Presenter) Format() string {
	switch p.format {
	case formatRGBA8:
		return "R8G8B8A8_UNORM"
	case formatBGRA8:
		return "B8G8R8A8_UNORM"
	}
	return fmt.Sprintf("VkFormat %d", p.format)
}

// Resize makes the swapchain for a window whose framebuffer is width x
// height pixels (where the surface fixes its own extent, that wins),
// replacing the one before, and a transfer buffer of its size. Call it
// when Present reports the swapchain stale.
func (p *Presenter) Resize(width, height int) error {
	vk.DeviceWaitIdle(p.handle)
	caps, err := surfaceCapabilities(p.in.handle, p.phys, p.surface)
	if err != nil {
		return err
	}
	if caps.usages&uint32(vk.ImageUsageTransferDstBit) == 0 {
		return fmt.Errorf("vk: the swapchain images of %q cannot be transfer destinations", p.info.Name)
	}
	ext := caps.current
	if ext[0] == ^uint32(0) { // the window's size decides
		for i, v := range [2]int{width, height} {
			ext[i] = max(caps.least[i], min(uint32(max(v, 0)), caps.most[i]))
		}
	}
	if ext[0] == 0 || ext[1] == 0 {
		return fmt.Errorf("vk: the window has no area (%dx%d): nothing to present", ext[0], ext[1])
	}
	spec := swapchainSpec{width: ext[0], height: ext[1], transform: caps.transform, old: p.swap}
	if spec.format, spec.space, err = p.chooseFormat(); err != nil {
		return err
	}
	spec.images = caps.minImages + 1
	if caps.maxImages > 0 && spec.images > caps.maxImages {
		spec.images = caps.maxImages
	}
	spec.alpha = caps.alpha & -caps.alpha // the lowest supported mode: opaque where offered
	sw, err := p.fns.createSwapchain(p.handle, p.surface, spec)
	if p.swap != nil {
		p.fns.destroySwapchain(p.handle, p.swap)
		p.swap, p.images = nil, nil
	}
	if err != nil {
		return err
	}
	p.swap, p.format, p.width, p.height = sw, spec.format, spec.width, spec.height
	if p.images, err = p.fns.swapchainImages(p.handle, sw); err != nil {
		return err
	}
	p.freeStage()
	p.stage, err = p.newHostBuffer(int64(spec.width) * int64(spec.height) * 4)
	return err
}

// chooseFormat picks the first 8-bit RGBA or BGRA format of the surface.
func (p *Presenter) chooseFormat() (format, space int32, err error) {
	formats, err := surfaceFormats(p.in.handle, p.phys, p.surface)
	if err != nil {
		return 0, 0, err
	}
	for _, f := range formats {
		if f[0] == formatBGRA8 || f[0] == formatRGBA8 {
			return f[0], f[1], nil
		}
	}
	return 0, 0, fmt.Errorf("vk: the window's surface on %q offers neither B8G8R8A8_UNORM nor R8G8B8A8_UNORM", p.info.Name)
}

// newHostBuffer makes a mapped transfer-source buffer of size bytes.
func (p *Presenter) newHostBuffer(size int64) (hostBuffer, error) {
	bci := &vk.BufferCreateInfo{
		SType:       vk.StructureTypeBufferCreateInfo,
		Size:        vk.DeviceSize(size),
		Usage:       vk.BufferUsageFlags(vk.BufferUsageTransferSrcBit),
		SharingMode: vk.SharingModeExclusive,
	}
	var b hostBuffer
	r := vk.CreateBuffer(p.handle, bci, nil, &b.handle)
	bci.Free()
	if err := check("vkCreateBuffer", r); err != nil {
		return hostBuffer{}, err
	}
	var req vk.MemoryRequirements
	vk.GetBufferMemoryRequirements(p.handle, b.handle, &req)
	req.Deref()
	t, ok := pickMemoryType(p.mem, req.MemoryTypeBits, false)
	if !ok {
		p.freeHostBuffer(b)
		return hostBuffer{}, fmt.Errorf("vk: %q has no host-visible coherent memory for the transfer buffer", p.info.Name)
	}
	mai := &vk.MemoryAllocateInfo{SType: vk.StructureTypeMemoryAllocateInfo, AllocationSize: req.Size, MemoryTypeIndex: t}
	r = vk.AllocateMemory(p.handle, mai, nil, &b.memory)
	mai.Free()
	if err := check("vkAllocateMemory", r); err != nil {
		p.freeHostBuffer(b)
		return hostBuffer{}, err
	}
	if err := check("vkBindBufferMemory", vk.BindBufferMemory(p.handle, b.handle, b.memory, 0)); err != nil {
		p.freeHostBuffer(b)
		return hostBuffer{}, err
	}
	var mapped unsafe.Pointer
	if err := check("vkMapMemory", vk.MapMemory(p.handle, b.memory, 0, vk.DeviceSize(size), 0, &mapped)); err != nil {
		p.freeHostBuffer(b)
		return hostBuffer{}, err
	}
	b.mapped = unsafe.Slice((*byte)(mapped), size)
	return b, nil
}

func (p *Presenter) freeHostBuffer(b hostBuffer) {
	if b.mapped != nil {
		vk.UnmapMemory(p.handle, b.memory)
	}
	if b.memory != nil {
		vk.FreeMemory(p.handle, b.memory, nil)
	}
	if b.handle != nil {
		vk.DestroyBuffer(p.handle, b.handle, nil)
	}
}

func (p *Presenter) freeStage() {
	p.freeHostBuffer(p.stage)
	p.stage = hostBuffer{}
}

// Present shows a frame: rgba holds Size's width x height pixels, four
// bytes each (R, G, B, A), row after row. It returns stale, and presents
// nothing, when the swapchain no longer fits the window (it is out of
// date, or rgba is not of its size): call Resize, and Present a frame of
// the new size. Present returns once the frame's copy is done, so that
// rgba and the transfer buffer may be reused.
func (p *Presenter) Present(rgba []byte) (stale bool, err error) {
	if p.swap == nil {
		return false, errors.New("vk: Present before Resize: the presenter has no swapchain")
	}
	if len(rgba) != len(p.stage.mapped) {
		return true, nil
	}
	dst := p.stage.mapped
	if p.format == formatBGRA8 {
		for i := 0; i+3 < len(rgba); i += 4 {
			dst[i], dst[i+1], dst[i+2], dst[i+3] = rgba[i+2], rgba[i+1], rgba[i], rgba[i+3]
		}
	} else {
		copy(dst, rgba)
	}
	idx, r := p.fns.acquireNextImage(p.handle, p.swap, uint64(p.waitLimit.Nanoseconds()), p.acquired)
	switch r {
	case vk.Success, vk.Suboptimal:
	case vk.ErrorOutOfDate:
		return true, nil
	case vk.Timeout, vk.NotReady:
		return false, fmt.Errorf("vk: no swapchain image of %q came within %v: %w", p.info.Name, p.waitLimit, ErrWaitTimeout)
	default:
		return false, check("vkAcquireNextImageKHR", r)
	}
	if err := p.recordCopy(p.images[idx]); err != nil {
		return false, err
	}
	if err := check("vkQueueSubmit", p.fns.submitWaitSignal(p.queue, p.cmd, p.acquired, vk.PipelineStageTransferBit, p.done, p.fence)); err != nil {
		return false, err
	}
	pr := p.fns.queuePresent(p.queue, p.done, p.swap, idx)
	// Wait for the copy, so that the transfer buffer can be refilled.
	fences := []vk.Fence{p.fence}
	wr := vk.WaitForFences(p.handle, 1, fences, vk.True, uint64(p.waitLimit.Nanoseconds()))
	if wr == vk.Timeout {
		return false, fmt.Errorf("vk: a frame's copy on %q did not finish within %v: %w", p.info.Name, p.waitLimit, ErrWaitTimeout)
	}
	if err := check("vkWaitForFences", wr); err != nil {
		return false, err
	}
	if err := check("vkResetFences", vk.ResetFences(p.handle, 1, fences)); err != nil {
		return false, err
	}
	if pr == vk.ErrorOutOfDate || pr == vk.Suboptimal {
		return true, nil
	}
	return false, check("vkQueuePresentKHR", pr)
}

// recordCopy records into the command buffer the copy of the transfer
// buffer into img, between the layout changes that a swapchain image
// needs: from undefined (its old contents are not kept) to a transfer
// destination, then to presentable.
func (p *Presenter) recordCopy(img vk.Image) error {
	if err := check("vkResetCommandBuffer", vk.ResetCommandBuffer(p.cmd, 0)); err != nil {
		return err
	}
	if err := beginCommandBuffer(p.cmd); err != nil {
		return err
	}
	p.fns.imageLayout(p.cmd, img, vk.ImageLayoutUndefined, vk.ImageLayoutTransferDstOptimal,
		vk.PipelineStageTransferBit, vk.PipelineStageTransferBit, 0, vk.AccessTransferWriteBit)
	p.fns.copyBufferToImage(p.cmd, p.stage.handle, img, p.width, p.height)
	p.fns.imageLayout(p.cmd, img, vk.ImageLayoutTransferDstOptimal, vk.ImageLayoutPresentSrc,
		vk.PipelineStageTransferBit, vk.PipelineStageBottomOfPipeBit, vk.AccessTransferWriteBit, 0)
	return check("vkEndCommandBuffer", vk.EndCommandBuffer(p.cmd))
}

// Close waits for the presenter's work and destroys everything it made,
// its instance last. The window must outlive it. Calling Close twice is
// harmless.
func (p *Presenter) Close() {
	p.closeDevice()
	if p.in != nil {
		if p.surface != nil {
			destroySurface(p.in.handle, p.surface)
		}
		p.in.destroy()
	}
	*p = Presenter{}
}

// closeDevice destroys the device and what was made from it, leaving the
// instance and the surface.
func (p *Presenter) closeDevice() {
	if p.handle != nil {
		vk.DeviceWaitIdle(p.handle)
		p.freeStage()
		if p.fence != nil {
			vk.DestroyFence(p.handle, p.fence, nil)
		}
		for _, s := range []vk.Semaphore{p.acquired, p.done} {
			if s != nil {
				vk.DestroySemaphore(p.handle, s, nil)
			}
		}
		if p.pool != nil {
			vk.DestroyCommandPool(p.handle, p.pool, nil)
		}
		if p.swap != nil {
			p.fns.destroySwapchain(p.handle, p.swap)
		}
		vk.DestroyDevice(p.handle, nil)
	}
	p.handle, p.fns, p.queue, p.pool, p.cmd = nil, nil, nil, nil, nil
	p.acquired, p.done, p.fence = nil, nil, nil
	p.swap, p.images, p.stage = nil, nil, hostBuffer{}
}
