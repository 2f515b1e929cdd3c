// Package window shows the view in a GLFW window presented through a Vulkan
// swapchain. Each frame is drawn by view's compute shader into a storage
// buffer on the compute device, copied into a host-visible transfer buffer
// of the presenting device, and from there into the swapchain image with
// vkCmdCopyBufferToImage.
//
// Keys: n / p next and previous inducing point (or seed), h next head,
// r resample the set, q or Esc quit; a left click adds a point.
//
// This package is the only one in the module that imports GLFW.
package window

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"unsafe"

	"github.com/go-gl/glfw/v3.3/glfw"
	vkb "github.com/vulkan-go/vulkan"

	"github.com/isab-vk/isab-vk/view"
	"github.com/isab-vk/isab-vk/vk"
)

func init() {
	// GLFW must be called from the process's main thread.
	runtime.LockOSThread()
}

// Options tune Run.
type Options struct {
	// Frames, when positive, closes the window after that many frames have
	// been presented (for tests and demos).
	Frames int
	// Keys are pressed one per presented frame, as if typed (for tests).
	Keys string
	// Log receives a line per notable event (nil: none).
	Log func(format string, args ...any)
}

func check(call string, r vkb.Result) error {
	if r != vkb.Success {
		return fmt.Errorf("window: %s: VkResult %d", call, r)
	}
	return nil
}

// presenter holds the presenting instance, device and swapchain.
type presenter struct {
	inst     vkb.Instance
	surface  vkb.Surface
	phys     vkb.PhysicalDevice
	dev      vkb.Device
	queue    vkb.Queue
	family   uint32
	swap     vkb.Swapchain
	images   []vkb.Image
	format   vkb.Format
	extent   vkb.Extent2D
	stage    vkb.Buffer
	stageMem vkb.DeviceMemory
	stageMap unsafe.Pointer
	stageLen int
	pool     vkb.CommandPool
	cmd      vkb.CommandBuffer
	acquired vkb.Semaphore
	done     vkb.Semaphore
	fence    vkb.Fence
}

// Run opens a window of app's size and shows app until the window is
// closed, q or Esc is pressed, or opts.Frames frames were shown. dev draws
// the frames; the window presents them through its own Vulkan instance.
func Run(dev *vk.Device, app *view.App, opts Options) error {
	logf := opts.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	// GLFW logs a missing display rather than failing Init, so check first.
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return errors.New("window: no display (DISPLAY is not set); use --screenshot out.png to render a frame offscreen, or xvfb-run")
	}
	if err := glfw.Init(); err != nil {
		return fmt.Errorf("window: %w", err)
	}
	defer glfw.Terminate()
	if !glfw.VulkanSupported() {
		return errors.New("window: GLFW finds no Vulkan loader")
	}
	glfw.WindowHint(glfw.ClientAPI, glfw.NoAPI)
	glfw.WindowHint(glfw.Resizable, glfw.False)
	win, err := glfw.CreateWindow(app.Width, app.Height, "isab view", nil, nil)
	if err != nil {
		return fmt.Errorf("window: %w", err)
	}
	defer win.Destroy()

	p := &presenter{}
	defer p.destroy()
	if err := p.init(win, dev.Info().Name); err != nil {
		return err
	}
	fw, fh := win.GetFramebufferSize()
	if err := p.createSwapchain(fw, fh); err != nil {
		return err
	}
	logf("presenting on %s, %dx%d, format %d, %d images", deviceName(p.phys), p.extent.Width, p.extent.Height, p.format, len(p.images))

	var r *view.Renderer
	defer func() {
		if r != nil {
			r.Close()
		}
	}()
	dirty := true
	var failure error
	key := func(k rune) {
		switch k {
		case 'n':
			app.Next()
		case 'p':
			app.Prev()
		case 'h':
			app.NextHead()
		case 'r':
			failure = app.Resample()
		case 'q', 27:
			win.SetShouldClose(true)
			return
		default:
			return
		}
		dirty = true
	}
	keyNames := map[glfw.Key]rune{glfw.KeyN: 'n', glfw.KeyP: 'p', glfw.KeyH: 'h', glfw.KeyR: 'r', glfw.KeyQ: 'q', glfw.KeyEscape: 27}
	win.SetKeyCallback(func(_ *glfw.Window, k glfw.Key, _ int, action glfw.Action, _ glfw.ModifierKey) {
		if action == glfw.Press || action == glfw.Repeat {
			if c, ok := keyNames[k]; ok {
				key(c)
			}
		}
	})
	win.SetMouseButtonCallback(func(w *glfw.Window, b glfw.MouseButton, action glfw.Action, _ glfw.ModifierKey) {
		if b != glfw.MouseButtonLeft || action != glfw.Press {
			return
		}
		x, y := w.GetCursorPos()
		ww, wh := w.GetSize()
		fw, fh := w.GetFramebufferSize()
		if ww > 0 && wh > 0 {
			x, y = x*float64(fw)/float64(ww), y*float64(fh)/float64(wh)
		}
		added, err := app.AddPoint(x, y)
		if err != nil {
			failure = err
		}
		dirty = dirty || added
	})
	win.SetRefreshCallback(func(*glfw.Window) { dirty = true })

	frames := 0
	keys := []rune(strings.ToLower(opts.Keys))
	for !win.ShouldClose() {
		if failure != nil {
			return failure
		}
		if dirty {
			dirty = false
			app.Width, app.Height = int(p.extent.Width), int(p.extent.Height)
			if r == nil {
				if r, err = view.NewRenderer(dev, app.Width, app.Height); err != nil {
					return err
				}
			}
			img, err := r.Frame(context.Background(), app.State())
			if err != nil {
				return err
			}
			resized, err := p.present(img.Pix, fw, fh)
			if err != nil {
				return err
			}
			if resized {
				fw, fh = win.GetFramebufferSize()
				if err := p.createSwapchain(fw, fh); err != nil {
					return err
				}
				r.Close()
				r = nil
				dirty = true
				continue
			}
			frames++
			if len(keys) > 0 {
				logf("key %q", keys[0])
				key(keys[0])
				keys = keys[1:]
				dirty = true
			}
			if opts.Frames > 0 {
				if frames >= opts.Frames {
					logf("presented %d frames", frames)
					break
				}
				dirty = true // keep presenting until the count is reached
			}
		}
		glfw.WaitEventsTimeout(0.25)
	}
	return failure
}

const validationLayer = "VK_LAYER_KHRONOS_validation"

func hasLayer(name string) bool {
	var n uint32
	vkb.EnumerateInstanceLayerProperties(&n, nil)
	props := make([]vkb.LayerProperties, n)
	vkb.EnumerateInstanceLayerProperties(&n, props)
	for _, p := range props[:n] {
		p.Deref()
		if vkb.ToString(p.LayerName[:]) == name {
			return true
		}
	}
	return false
}

func deviceName(p vkb.PhysicalDevice) string {
	var props vkb.PhysicalDeviceProperties
	vkb.GetPhysicalDeviceProperties(p, &props)
	props.Deref()
	return vkb.ToString(props.DeviceName[:])
}

// init makes the instance, the surface and the device, preferring the
// physical device called want.
func (p *presenter) init(win *glfw.Window, want string) error {
	var exts []string
	for _, e := range win.GetRequiredInstanceExtensions() {
		exts = append(exts, e+"\x00")
	}
	if len(exts) == 0 {
		return errors.New("window: the Vulkan loader offers no window-surface extensions")
	}
	app := &vkb.ApplicationInfo{
		SType:            vkb.StructureTypeApplicationInfo,
		PApplicationName: "isab view\x00",
		PEngineName:      "isab-vk\x00",
		ApiVersion:       vkb.MakeVersion(1, 0, 0),
	}
	ci := &vkb.InstanceCreateInfo{
		SType:                   vkb.StructureTypeInstanceCreateInfo,
		PApplicationInfo:        app,
		EnabledExtensionCount:   uint32(len(exts)),
		PpEnabledExtensionNames: exts,
	}
	// Under ISAB_VALIDATION=1 the presenting instance runs the validation
	// layer too; with no messenger the layer prints its messages to stdout.
	if os.Getenv("ISAB_VALIDATION") == "1" && hasLayer(validationLayer) {
		ci.EnabledLayerCount = 1
		ci.PpEnabledLayerNames = []string{validationLayer + "\x00"}
	}
	var inst vkb.Instance
	r := vkb.CreateInstance(ci, nil, &inst)
	p.inst = inst
	ci.Free()
	app.Free()
	if err := check("vkCreateInstance", r); err != nil {
		return err
	}
	if err := vkb.InitInstance(p.inst); err != nil {
		return fmt.Errorf("window: %w", err)
	}
	sp, err := win.CreateWindowSurface(p.inst, nil)
	if err != nil {
		return fmt.Errorf("window: %w", err)
	}
	p.surface = vkb.SurfaceFromPointer(sp)

	var n uint32
	vkb.EnumeratePhysicalDevices(p.inst, &n, nil)
	phys := make([]vkb.PhysicalDevice, n)
	if err := check("vkEnumeratePhysicalDevices", vkb.EnumeratePhysicalDevices(p.inst, &n, phys)); err != nil {
		return err
	}
	found := false
	for pass := 0; pass < 2 && !found; pass++ {
		for _, ph := range phys[:n] {
			if pass == 0 && deviceName(ph) != want {
				continue
			}
			if fam, ok := presentFamily(ph, p.surface); ok {
				p.phys, p.family, found = ph, fam, true
				break
			}
		}
	}
	if !found {
		return errors.New("window: no Vulkan device can present to this window")
	}
	qci := []vkb.DeviceQueueCreateInfo{{
		SType:            vkb.StructureTypeDeviceQueueCreateInfo,
		QueueFamilyIndex: p.family,
		QueueCount:       1,
		PQueuePriorities: []float32{1},
	}}
	dci := &vkb.DeviceCreateInfo{
		SType:                   vkb.StructureTypeDeviceCreateInfo,
		QueueCreateInfoCount:    1,
		PQueueCreateInfos:       qci,
		EnabledExtensionCount:   1,
		PpEnabledExtensionNames: []string{"VK_KHR_swapchain\x00"},
	}
	var dev vkb.Device
	r = vkb.CreateDevice(p.phys, dci, nil, &dev)
	p.dev = dev
	dci.Free()
	if err := check("vkCreateDevice", r); err != nil {
		return err
	}
	var q vkb.Queue
	vkb.GetDeviceQueue(p.dev, p.family, 0, &q)
	p.queue = q

	pci := &vkb.CommandPoolCreateInfo{
		SType:            vkb.StructureTypeCommandPoolCreateInfo,
		Flags:            vkb.CommandPoolCreateFlags(vkb.CommandPoolCreateResetCommandBufferBit),
		QueueFamilyIndex: p.family,
	}
	var pool vkb.CommandPool
	r = vkb.CreateCommandPool(p.dev, pci, nil, &pool)
	p.pool = pool
	pci.Free()
	if err := check("vkCreateCommandPool", r); err != nil {
		return err
	}
	cai := &vkb.CommandBufferAllocateInfo{
		SType:              vkb.StructureTypeCommandBufferAllocateInfo,
		CommandPool:        p.pool,
		Level:              vkb.CommandBufferLevelPrimary,
		CommandBufferCount: 1,
	}
	cmds := make([]vkb.CommandBuffer, 1)
	r = vkb.AllocateCommandBuffers(p.dev, cai, cmds)
	cai.Free()
	if err := check("vkAllocateCommandBuffers", r); err != nil {
		return err
	}
	p.cmd = cmds[0]
	for _, s := range []*vkb.Semaphore{&p.acquired, &p.done} {
		sci := &vkb.SemaphoreCreateInfo{SType: vkb.StructureTypeSemaphoreCreateInfo}
		var sem vkb.Semaphore
		r = vkb.CreateSemaphore(p.dev, sci, nil, &sem)
		*s = sem
		sci.Free()
		if err := check("vkCreateSemaphore", r); err != nil {
			return err
		}
	}
	fci := &vkb.FenceCreateInfo{SType: vkb.StructureTypeFenceCreateInfo}
	var fence vkb.Fence
	r = vkb.CreateFence(p.dev, fci, nil, &fence)
	p.fence = fence
	fci.Free()
	return check("vkCreateFence", r)
}

// presentFamily finds a queue family that can copy (graphics or compute)
// and present to surface.
func presentFamily(ph vkb.PhysicalDevice, surface vkb.Surface) (uint32, bool) {
	var n uint32
	vkb.GetPhysicalDeviceQueueFamilyProperties(ph, &n, nil)
	props := make([]vkb.QueueFamilyProperties, n)
	vkb.GetPhysicalDeviceQueueFamilyProperties(ph, &n, props)
	for i := uint32(0); i < n; i++ {
		props[i].Deref()
		flags := vkb.QueueFlagBits(props[i].QueueFlags)
		if flags&(vkb.QueueGraphicsBit|vkb.QueueComputeBit) == 0 {
			continue
		}
		var ok vkb.Bool32
		if vkb.GetPhysicalDeviceSurfaceSupport(ph, i, surface, &ok) == vkb.Success && ok == vkb.True {
			return i, true
		}
	}
	return 0, false
}

// createSwapchain (re)creates the swapchain for a w x h framebuffer, and a
// transfer buffer of its size.
func (p *presenter) createSwapchain(w, h int) error {
	if p.dev != nil {
		vkb.DeviceWaitIdle(p.dev)
	}
	var caps vkb.SurfaceCapabilities
	if err := check("vkGetPhysicalDeviceSurfaceCapabilitiesKHR", vkb.GetPhysicalDeviceSurfaceCapabilities(p.phys, p.surface, &caps)); err != nil {
		return err
	}
	caps.Deref()
	caps.CurrentExtent.Deref()
	caps.MinImageExtent.Deref()
	caps.MaxImageExtent.Deref()
	if vkb.ImageUsageFlagBits(caps.SupportedUsageFlags)&vkb.ImageUsageTransferDstBit == 0 {
		return errors.New("window: swapchain images cannot be transfer destinations on this device")
	}
	ext := caps.CurrentExtent
	if ext.Width == ^uint32(0) {
		ext = vkb.Extent2D{
			Width:  clamp(uint32(w), caps.MinImageExtent.Width, caps.MaxImageExtent.Width),
			Height: clamp(uint32(h), caps.MinImageExtent.Height, caps.MaxImageExtent.Height),
		}
	}
	var nf uint32
	vkb.GetPhysicalDeviceSurfaceFormats(p.phys, p.surface, &nf, nil)
	formats := make([]vkb.SurfaceFormat, nf)
	vkb.GetPhysicalDeviceSurfaceFormats(p.phys, p.surface, &nf, formats)
	p.format = vkb.FormatUndefined
	var space vkb.ColorSpace
	for _, f := range formats[:nf] {
		f.Deref()
		if f.Format == vkb.FormatB8g8r8a8Unorm || f.Format == vkb.FormatR8g8b8a8Unorm {
			p.format, space = f.Format, f.ColorSpace
			break
		}
	}
	if p.format == vkb.FormatUndefined {
		return errors.New("window: the surface offers neither B8G8R8A8_UNORM nor R8G8B8A8_UNORM")
	}
	count := caps.MinImageCount + 1
	if caps.MaxImageCount > 0 && count > caps.MaxImageCount {
		count = caps.MaxImageCount
	}
	alpha := vkb.CompositeAlphaOpaqueBit
	if vkb.CompositeAlphaFlagBits(caps.SupportedCompositeAlpha)&alpha == 0 {
		alpha = vkb.CompositeAlphaInheritBit
	}
	old := p.swap
	sci := &vkb.SwapchainCreateInfo{
		SType:            vkb.StructureTypeSwapchainCreateInfo,
		Surface:          p.surface,
		MinImageCount:    count,
		ImageFormat:      p.format,
		ImageColorSpace:  space,
		ImageExtent:      ext,
		ImageArrayLayers: 1,
		ImageUsage:       vkb.ImageUsageFlags(vkb.ImageUsageTransferDstBit),
		ImageSharingMode: vkb.SharingModeExclusive,
		PreTransform:     caps.CurrentTransform,
		CompositeAlpha:   alpha,
		PresentMode:      vkb.PresentModeFifo,
		Clipped:          vkb.True,
		OldSwapchain:     old,
	}
	var sw vkb.Swapchain
	r := vkb.CreateSwapchain(p.dev, sci, nil, &sw)
	sci.Free()
	if old != vkb.NullSwapchain {
		vkb.DestroySwapchain(p.dev, old, nil)
		p.swap = vkb.NullSwapchain
	}
	if err := check("vkCreateSwapchainKHR", r); err != nil {
		return err
	}
	p.swap, p.extent = sw, ext
	var ni uint32
	vkb.GetSwapchainImages(p.dev, p.swap, &ni, nil)
	p.images = make([]vkb.Image, ni)
	if err := check("vkGetSwapchainImagesKHR", vkb.GetSwapchainImages(p.dev, p.swap, &ni, p.images)); err != nil {
		return err
	}
	return p.makeStage(int(ext.Width) * int(ext.Height) * 4)
}

func clamp(v, lo, hi uint32) uint32 { return max(lo, min(v, hi)) }

// makeStage makes the host-visible transfer buffer of size bytes.
func (p *presenter) makeStage(size int) error {
	p.freeStage()
	bci := &vkb.BufferCreateInfo{
		SType:       vkb.StructureTypeBufferCreateInfo,
		Size:        vkb.DeviceSize(size),
		Usage:       vkb.BufferUsageFlags(vkb.BufferUsageTransferSrcBit),
		SharingMode: vkb.SharingModeExclusive,
	}
	var buf vkb.Buffer
	r := vkb.CreateBuffer(p.dev, bci, nil, &buf)
	p.stage = buf
	bci.Free()
	if err := check("vkCreateBuffer", r); err != nil {
		return err
	}
	var req vkb.MemoryRequirements
	vkb.GetBufferMemoryRequirements(p.dev, p.stage, &req)
	req.Deref()
	var mem vkb.PhysicalDeviceMemoryProperties
	vkb.GetPhysicalDeviceMemoryProperties(p.phys, &mem)
	mem.Deref()
	want := vkb.MemoryPropertyHostVisibleBit | vkb.MemoryPropertyHostCoherentBit
	idx := -1
	for i := uint32(0); i < mem.MemoryTypeCount; i++ {
		mem.MemoryTypes[i].Deref()
		if req.MemoryTypeBits&(1<<i) != 0 && vkb.MemoryPropertyFlagBits(mem.MemoryTypes[i].PropertyFlags)&want == want {
			idx = int(i)
			break
		}
	}
	if idx < 0 {
		return errors.New("window: no host-visible coherent memory for the transfer buffer")
	}
	mai := &vkb.MemoryAllocateInfo{
		SType:           vkb.StructureTypeMemoryAllocateInfo,
		AllocationSize:  req.Size,
		MemoryTypeIndex: uint32(idx),
	}
	var dm vkb.DeviceMemory
	r = vkb.AllocateMemory(p.dev, mai, nil, &dm)
	p.stageMem = dm
	mai.Free()
	if err := check("vkAllocateMemory", r); err != nil {
		return err
	}
	if err := check("vkBindBufferMemory", vkb.BindBufferMemory(p.dev, p.stage, p.stageMem, 0)); err != nil {
		return err
	}
	var mapped unsafe.Pointer
	if err := check("vkMapMemory", vkb.MapMemory(p.dev, p.stageMem, 0, vkb.DeviceSize(size), 0, &mapped)); err != nil {
		return err
	}
	p.stageMap = mapped
	p.stageLen = size
	return nil
}

func (p *presenter) freeStage() {
	if p.stageMem != vkb.NullDeviceMemory {
		vkb.UnmapMemory(p.dev, p.stageMem)
		vkb.FreeMemory(p.dev, p.stageMem, nil)
		p.stageMem = vkb.NullDeviceMemory
	}
	if p.stage != vkb.NullBuffer {
		vkb.DestroyBuffer(p.dev, p.stage, nil)
		p.stage = vkb.NullBuffer
	}
	p.stageMap = nil
}

// present copies an RGBA8 frame of the swapchain's size into the next
// swapchain image and presents it. It reports resized when the swapchain
// is out of date and must be made again.
func (p *presenter) present(rgba []byte, _, _ int) (resized bool, err error) {
	if len(rgba) != p.stageLen {
		return true, nil
	}
	dst := unsafe.Slice((*byte)(p.stageMap), p.stageLen)
	if p.format == vkb.FormatB8g8r8a8Unorm {
		for i := 0; i+3 < len(rgba); i += 4 {
			dst[i], dst[i+1], dst[i+2], dst[i+3] = rgba[i+2], rgba[i+1], rgba[i], rgba[i+3]
		}
	} else {
		copy(dst, rgba)
	}
	var idx uint32
	r := vkb.AcquireNextImage(p.dev, p.swap, ^uint64(0), p.acquired, vkb.NullFence, &idx)
	if r == vkb.ErrorOutOfDate {
		return true, nil
	}
	if r != vkb.Success && r != vkb.Suboptimal {
		return false, check("vkAcquireNextImageKHR", r)
	}
	img := p.images[idx]
	rng := vkb.ImageSubresourceRange{AspectMask: vkb.ImageAspectFlags(vkb.ImageAspectColorBit), LevelCount: 1, LayerCount: 1}
	vkb.ResetCommandBuffer(p.cmd, 0)
	bi := &vkb.CommandBufferBeginInfo{SType: vkb.StructureTypeCommandBufferBeginInfo, Flags: vkb.CommandBufferUsageFlags(vkb.CommandBufferUsageOneTimeSubmitBit)}
	r = vkb.BeginCommandBuffer(p.cmd, bi)
	bi.Free()
	if err := check("vkBeginCommandBuffer", r); err != nil {
		return false, err
	}
	vkb.CmdPipelineBarrier(p.cmd, vkb.PipelineStageFlags(vkb.PipelineStageTransferBit), vkb.PipelineStageFlags(vkb.PipelineStageTransferBit), 0, 0, nil, 0, nil, 1,
		[]vkb.ImageMemoryBarrier{{
			SType:               vkb.StructureTypeImageMemoryBarrier,
			DstAccessMask:       vkb.AccessFlags(vkb.AccessTransferWriteBit),
			OldLayout:           vkb.ImageLayoutUndefined,
			NewLayout:           vkb.ImageLayoutTransferDstOptimal,
			SrcQueueFamilyIndex: vkb.QueueFamilyIgnored,
			DstQueueFamilyIndex: vkb.QueueFamilyIgnored,
			Image:               img,
			SubresourceRange:    rng,
		}})
	vkb.CmdCopyBufferToImage(p.cmd, p.stage, img, vkb.ImageLayoutTransferDstOptimal, 1, []vkb.BufferImageCopy{{
		ImageSubresource: vkb.ImageSubresourceLayers{AspectMask: vkb.ImageAspectFlags(vkb.ImageAspectColorBit), LayerCount: 1},
		ImageExtent:      vkb.Extent3D{Width: p.extent.Width, Height: p.extent.Height, Depth: 1},
	}})
	vkb.CmdPipelineBarrier(p.cmd, vkb.PipelineStageFlags(vkb.PipelineStageTransferBit), vkb.PipelineStageFlags(vkb.PipelineStageBottomOfPipeBit), 0, 0, nil, 0, nil, 1,
		[]vkb.ImageMemoryBarrier{{
			SType:               vkb.StructureTypeImageMemoryBarrier,
			SrcAccessMask:       vkb.AccessFlags(vkb.AccessTransferWriteBit),
			OldLayout:           vkb.ImageLayoutTransferDstOptimal,
			NewLayout:           vkb.ImageLayoutPresentSrc,
			SrcQueueFamilyIndex: vkb.QueueFamilyIgnored,
			DstQueueFamilyIndex: vkb.QueueFamilyIgnored,
			Image:               img,
			SubresourceRange:    rng,
		}})
	if err := check("vkEndCommandBuffer", vkb.EndCommandBuffer(p.cmd)); err != nil {
		return false, err
	}
	r = vkb.QueueSubmit(p.queue, 1, []vkb.SubmitInfo{{
		SType:                vkb.StructureTypeSubmitInfo,
		WaitSemaphoreCount:   1,
		PWaitSemaphores:      []vkb.Semaphore{p.acquired},
		PWaitDstStageMask:    []vkb.PipelineStageFlags{vkb.PipelineStageFlags(vkb.PipelineStageTransferBit)},
		CommandBufferCount:   1,
		PCommandBuffers:      []vkb.CommandBuffer{p.cmd},
		SignalSemaphoreCount: 1,
		PSignalSemaphores:    []vkb.Semaphore{p.done},
	}}, p.fence)
	if err := check("vkQueueSubmit", r); err != nil {
		return false, err
	}
	pi := &vkb.PresentInfo{
		SType:              vkb.StructureTypePresentInfo,
		WaitSemaphoreCount: 1,
		PWaitSemaphores:    []vkb.Semaphore{p.done},
		SwapchainCount:     1,
		PSwapchains:        []vkb.Swapchain{p.swap},
		PImageIndices:      []uint32{idx},
	}
	pr := vkb.QueuePresent(p.queue, pi)
	pi.Free()
	// Wait for the copy so that the transfer buffer can be refilled.
	if err := check("vkWaitForFences", vkb.WaitForFences(p.dev, 1, []vkb.Fence{p.fence}, vkb.True, ^uint64(0))); err != nil {
		return false, err
	}
	vkb.ResetFences(p.dev, 1, []vkb.Fence{p.fence})
	if pr == vkb.ErrorOutOfDate || pr == vkb.Suboptimal {
		return true, nil
	}
	return false, check("vkQueuePresentKHR", pr)
}

func (p *presenter) destroy() {
	if p.dev != nil {
		vkb.DeviceWaitIdle(p.dev)
		p.freeStage()
		if p.fence != vkb.NullFence {
			vkb.DestroyFence(p.dev, p.fence, nil)
		}
		for _, s := range []vkb.Semaphore{p.acquired, p.done} {
			if s != vkb.NullSemaphore {
				vkb.DestroySemaphore(p.dev, s, nil)
			}
		}
		if p.pool != vkb.NullCommandPool {
			vkb.DestroyCommandPool(p.dev, p.pool, nil)
		}
		if p.swap != vkb.NullSwapchain {
			vkb.DestroySwapchain(p.dev, p.swap, nil)
		}
		vkb.DestroyDevice(p.dev, nil)
	}
	if p.inst != nil {
		if p.surface != vkb.NullSurface {
			vkb.DestroySurface(p.inst, p.surface, nil)
		}
		vkb.DestroyInstance(p.inst, nil)
	}
}
