package vk

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// The Vulkan calls of Presenter that take or fill arrays of structures, and
// those of the surface and swapchain extensions, go through these helpers
// rather than through vulkan-go, for the reason calls.go gives: every array
// lives on the C stack for the whole call. Structures are spelled out for
// 64-bit platforms, as in calls.go.

typedef void* (*isabPresentGIPA)(void* instance, const char* name);
typedef void* (*isabPresentGDPA)(void* device, const char* name);

typedef struct {
	void* createSwapchain;
	void* destroySwapchain;
	void* getSwapchainImages;
	void* acquireNextImage;
	void* queuePresent;
	void* queueSubmit;
	void* cmdPipelineBarrier;
	void* cmdCopyBufferToImage;
} isabPresentFns;

static int isabLoadPresentFns(void* gipa, void* instance, void* device, isabPresentFns* f) {
	isabPresentGDPA gdpa = (isabPresentGDPA)((isabPresentGIPA)gipa)(instance, "vkGetDeviceProcAddr");
	if (gdpa == NULL) return -1;
	f->createSwapchain = gdpa(device, "vkCreateSwapchainKHR");
	f->destroySwapchain = gdpa(device, "vkDestroySwapchainKHR");
	f->getSwapchainImages = gdpa(device, "vkGetSwapchainImagesKHR");
	f->acquireNextImage = gdpa(device, "vkAcquireNextImageKHR");
	f->queuePresent = gdpa(device, "vkQueuePresentKHR");
	f->queueSubmit = gdpa(device, "vkQueueSubmit");
	f->cmdPipelineBarrier = gdpa(device, "vkCmdPipelineBarrier");
	f->cmdCopyBufferToImage = gdpa(device, "vkCmdCopyBufferToImage");
	if (!f->createSwapchain || !f->destroySwapchain || !f->getSwapchainImages || !f->acquireNextImage ||
	    !f->queuePresent || !f->queueSubmit || !f->cmdPipelineBarrier || !f->cmdCopyBufferToImage) return -2;
	return 0;
}

// isabSurfaceSupport reports whether queue family fam of phys can present
// to surface: 1 yes, 0 no, negative a VkResult.
static int32_t isabSurfaceSupport(void* gipa, void* instance, void* phys, uint32_t fam, void* surface) {
	typedef int32_t (*fn)(void*, uint32_t, void*, uint32_t*);
	fn f = (fn)((isabPresentGIPA)gipa)(instance, "vkGetPhysicalDeviceSurfaceSupportKHR");
	if (f == NULL) return -7; // VK_ERROR_EXTENSION_NOT_PRESENT
	uint32_t ok = 0;
	int32_t r = f(phys, fam, surface, &ok);
	if (r != 0) return r;
	return ok ? 1 : 0;
}

// isabSurfaceCaps is VkSurfaceCapabilitiesKHR.
typedef struct {
	uint32_t minImageCount, maxImageCount;
	uint32_t curW, curH, minW, minH, maxW, maxH;
	uint32_t maxImageArrayLayers, supportedTransforms, currentTransform, supportedCompositeAlpha, supportedUsageFlags;
} isabSurfaceCaps;

static int32_t isabSurfaceCapabilities(void* gipa, void* instance, void* phys, void* surface, isabSurfaceCaps* caps) {
	typedef int32_t (*fn)(void*, void*, isabSurfaceCaps*);
	fn f = (fn)((isabPresentGIPA)gipa)(instance, "vkGetPhysicalDeviceSurfaceCapabilitiesKHR");
	if (f == NULL) return -7;
	return f(phys, surface, caps);
}

// isabSurfaceFormats lists up to max (format, colour space) pairs of
// surface into out, two words each, and sets *n to how many it wrote.
static int32_t isabSurfaceFormats(void* gipa, void* instance, void* phys, void* surface, int32_t* out, uint32_t max, uint32_t* n) {
	typedef int32_t (*fn)(void*, void*, uint32_t*, int32_t*);
	fn f = (fn)((isabPresentGIPA)gipa)(instance, "vkGetPhysicalDeviceSurfaceFormatsKHR");
	if (f == NULL) return -7;
	uint32_t count = max;
	int32_t r = f(phys, surface, &count, out);
	if (r == 5) r = 0; // VK_INCOMPLETE: the first max are enough
	*n = r == 0 ? count : 0;
	return r;
}

static void isabDestroySurface(void* gipa, void* instance, void* surface) {
	typedef void (*fn)(void*, void*, const void*);
	fn f = (fn)((isabPresentGIPA)gipa)(instance, "vkDestroySurfaceKHR");
	if (f != NULL) f(instance, surface, NULL);
}

typedef struct {
	int32_t sType; const void* pNext; uint32_t flags; uint32_t queueFamilyIndex;
	uint32_t queueCount; const float* pQueuePriorities;
} isabQueueCreateInfo;
typedef struct {
	int32_t sType; const void* pNext; uint32_t flags;
	uint32_t queueCreateInfoCount; const isabQueueCreateInfo* pQueueCreateInfos;
	uint32_t enabledLayerCount; const char* const* ppEnabledLayerNames;
	uint32_t enabledExtensionCount; const char* const* ppEnabledExtensionNames;
	const void* pEnabledFeatures;
} isabDeviceCreateInfo;

// isabCreatePresentDevice creates a device of phys with one queue of family
// fam and VK_KHR_swapchain (and VK_KHR_portability_subset when portability).
static int32_t isabCreatePresentDevice(void* gipa, void* instance, void* phys, uint32_t fam, int portability, void** out) {
	typedef int32_t (*fn)(void*, const isabDeviceCreateInfo*, const void*, void**);
	fn f = (fn)((isabPresentGIPA)gipa)(instance, "vkCreateDevice");
	if (f == NULL) return -3; // VK_ERROR_INITIALIZATION_FAILED
	float priority = 1;
	isabQueueCreateInfo q;
	memset(&q, 0, sizeof q);
	q.sType = 2; // VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO
	q.queueFamilyIndex = fam;
	q.queueCount = 1;
	q.pQueuePriorities = &priority;
	const char* exts[2] = { "VK_KHR_swapchain", "VK_KHR_portability_subset" };
	isabDeviceCreateInfo ci;
	memset(&ci, 0, sizeof ci);
	ci.sType = 3; // VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO
	ci.queueCreateInfoCount = 1;
	ci.pQueueCreateInfos = &q;
	ci.enabledExtensionCount = portability ? 2 : 1;
	ci.ppEnabledExtensionNames = exts;
	return f(phys, &ci, NULL, out);
}

typedef struct {
	int32_t sType; const void* pNext; uint32_t flags; void* surface;
	uint32_t minImageCount; int32_t imageFormat; int32_t imageColorSpace; uint32_t width, height;
	uint32_t imageArrayLayers; uint32_t imageUsage; int32_t imageSharingMode;
	uint32_t queueFamilyIndexCount; const uint32_t* pQueueFamilyIndices;
	uint32_t preTransform; uint32_t compositeAlpha; int32_t presentMode; uint32_t clipped;
	void* oldSwapchain;
} isabSwapchainCreateInfo;

// isabCreateSwapchain creates a FIFO swapchain of count width x height
// images that are transfer destinations.
static int32_t isabCreateSwapchain(isabPresentFns* f, void* device, void* surface, uint32_t count, int32_t format,
		int32_t space, uint32_t width, uint32_t height, uint32_t transform, uint32_t alpha, void* old, void** out) {
	typedef int32_t (*fn)(void*, const isabSwapchainCreateInfo*, const void*, void**);
	isabSwapchainCreateInfo ci;
	memset(&ci, 0, sizeof ci);
	ci.sType = 1000001000; // VK_STRUCTURE_TYPE_SWAPCHAIN_CREATE_INFO_KHR
	ci.surface = surface;
	ci.minImageCount = count;
	ci.imageFormat = format;
	ci.imageColorSpace = space;
	ci.width = width;
	ci.height = height;
	ci.imageArrayLayers = 1;
	ci.imageUsage = 0x2; // VK_IMAGE_USAGE_TRANSFER_DST_BIT
	ci.imageSharingMode = 0; // VK_SHARING_MODE_EXCLUSIVE
	ci.preTransform = transform;
	ci.compositeAlpha = alpha;
	ci.presentMode = 2; // VK_PRESENT_MODE_FIFO_KHR, which every surface supports
	ci.clipped = 1;
	ci.oldSwapchain = old;
	return ((fn)f->createSwapchain)(device, &ci, NULL, out);
}

static void isabDestroySwapchain(isabPresentFns* f, void* device, void* swapchain) {
	typedef void (*fn)(void*, void*, const void*);
	((fn)f->destroySwapchain)(device, swapchain, NULL);
}

// isabSwapchainImages writes up to max image handles of swapchain into out
// and sets *n to how many it wrote.
static int32_t isabSwapchainImages(isabPresentFns* f, void* device, void* swapchain, void** out, uint32_t max, uint32_t* n) {
	typedef int32_t (*fn)(void*, void*, uint32_t*, void**);
	uint32_t count = 0;
	int32_t r = ((fn)f->getSwapchainImages)(device, swapchain, &count, NULL);
	if (r != 0) return r;
	if (count > max) return -1000001004; // more images than asked for: VK_ERROR_OUT_OF_DATE_KHR makes the caller retry
	r = ((fn)f->getSwapchainImages)(device, swapchain, &count, out);
	*n = r == 0 ? count : 0;
	return r;
}

static int32_t isabAcquireNextImage(isabPresentFns* f, void* device, void* swapchain, uint64_t timeout, void* semaphore, uint32_t* index) {
	typedef int32_t (*fn)(void*, void*, uint64_t, void*, void*, uint32_t*);
	return ((fn)f->acquireNextImage)(device, swapchain, timeout, semaphore, NULL, index);
}

typedef struct {
	int32_t sType; const void* pNext; uint32_t srcAccessMask, dstAccessMask;
	int32_t oldLayout, newLayout; uint32_t srcQueueFamilyIndex, dstQueueFamilyIndex; void* image;
	uint32_t aspectMask, baseMipLevel, levelCount, baseArrayLayer, layerCount;
} isabImageBarrier;

typedef struct {
	uint64_t bufferOffset; uint32_t bufferRowLength, bufferImageHeight;
	uint32_t aspectMask, mipLevel, baseArrayLayer, layerCount;
	int32_t x, y, z; uint32_t width, height, depth;
} isabBufferImageCopy;

// isabImageLayout records a barrier that moves the colour image from layout
// from to layout to, between the given stages and accesses.
static void isabImageLayout(isabPresentFns* f, void* cmd, void* image, int32_t from, int32_t to,
		uint32_t srcStage, uint32_t dstStage, uint32_t srcAccess, uint32_t dstAccess) {
	typedef void (*fn)(void*, uint32_t, uint32_t, uint32_t, uint32_t, const void*,
		uint32_t, const void*, uint32_t, const isabImageBarrier*);
	isabImageBarrier b;
	memset(&b, 0, sizeof b);
	b.sType = 45; // VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER
	b.srcAccessMask = srcAccess;
	b.dstAccessMask = dstAccess;
	b.oldLayout = from;
	b.newLayout = to;
	b.srcQueueFamilyIndex = ~0u; // VK_QUEUE_FAMILY_IGNORED
	b.dstQueueFamilyIndex = ~0u;
	b.image = image;
	b.aspectMask = 1; // VK_IMAGE_ASPECT_COLOR_BIT
	b.levelCount = 1;
	b.layerCount = 1;
	((fn)f->cmdPipelineBarrier)(cmd, srcStage, dstStage, 0, 0, NULL, 0, NULL, 1, &b);
}

// isabCopyBufferToImage records a copy of a tightly packed width x height
// buffer into the colour image, which is in TRANSFER_DST_OPTIMAL layout.
static void isabCopyBufferToImage(isabPresentFns* f, void* cmd, void* buffer, void* image, uint32_t width, uint32_t height) {
	typedef void (*fn)(void*, void*, void*, int32_t, uint32_t, const isabBufferImageCopy*);
	isabBufferImageCopy c;
	memset(&c, 0, sizeof c);
	c.aspectMask = 1; // VK_IMAGE_ASPECT_COLOR_BIT
	c.layerCount = 1;
	c.width = width;
	c.height = height;
	c.depth = 1;
	((fn)f->cmdCopyBufferToImage)(cmd, buffer, image, 7, 1, &c); // VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL
}

typedef struct {
	int32_t sType; const void* pNext; uint32_t waitSemaphoreCount; void* const* pWaitSemaphores;
	const uint32_t* pWaitDstStageMask; uint32_t commandBufferCount; void* const* pCommandBuffers;
	uint32_t signalSemaphoreCount; void* const* pSignalSemaphores;
} isabPresentSubmit;

// isabSubmitWaitSignal submits cmd, which waits for wait at stage waitStage
// and signals signal and fence when done.
static int32_t isabSubmitWaitSignal(isabPresentFns* f, void* queue, void* cmd, void* wait, uint32_t waitStage, void* signal, void* fence) {
	typedef int32_t (*fn)(void*, uint32_t, const isabPresentSubmit*, void*);
	isabPresentSubmit s;
	memset(&s, 0, sizeof s);
	s.sType = 4; // VK_STRUCTURE_TYPE_SUBMIT_INFO
	s.waitSemaphoreCount = 1;
	s.pWaitSemaphores = &wait;
	s.pWaitDstStageMask = &waitStage;
	s.commandBufferCount = 1;
	s.pCommandBuffers = &cmd;
	s.signalSemaphoreCount = 1;
	s.pSignalSemaphores = &signal;
	return ((fn)f->queueSubmit)(queue, 1, &s, fence);
}

typedef struct {
	int32_t sType; const void* pNext; uint32_t waitSemaphoreCount; void* const* pWaitSemaphores;
	uint32_t swapchainCount; void* const* pSwapchains; const uint32_t* pImageIndices; int32_t* pResults;
} isabPresentInfo;

// isabQueuePresent presents image index of swapchain once wait is signalled.
static int32_t isabQueuePresent(isabPresentFns* f, void* queue, void* wait, void* swapchain, uint32_t index) {
	typedef int32_t (*fn)(void*, const isabPresentInfo*);
	isabPresentInfo p;
	memset(&p, 0, sizeof p);
	p.sType = 1000001001; // VK_STRUCTURE_TYPE_PRESENT_INFO_KHR
	p.waitSemaphoreCount = 1;
	p.pWaitSemaphores = &wait;
	p.swapchainCount = 1;
	p.pSwapchains = &swapchain;
	p.pImageIndices = &index;
	return ((fn)f->queuePresent)(queue, &p);
}
*/
import "C"

import (
	"errors"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// presentFns holds the device-level entry points of a Presenter (see the
// comment in this file's C part).
type presentFns struct{ c C.isabPresentFns }

// loadPresentFns resolves them for device h of instance in.
func loadPresentFns(in vk.Instance, h vk.Device) (*presentFns, error) {
	f := &presentFns{}
	if C.isabLoadPresentFns(gipaPointer(), unsafe.Pointer(in), unsafe.Pointer(h), &f.c) != 0 {
		return nil, errors.New("vk: vkGetDeviceProcAddr did not give the swapchain entry points (is VK_KHR_swapchain enabled?)")
	}
	return f, nil
}

// surfaceSupport reports whether queue family fam of phys can present to
// surface.
func surfaceSupport(in vk.Instance, phys vk.PhysicalDevice, fam uint32, surface vk.Surface) (bool, error) {
	r := C.isabSurfaceSupport(gipaPointer(), unsafe.Pointer(in), unsafe.Pointer(phys), C.uint32_t(fam), unsafe.Pointer(surface))
	if r < 0 {
		return false, check("vkGetPhysicalDeviceSurfaceSupportKHR", vk.Result(r))
	}
	return r == 1, nil
}

// surfaceCaps is what a swapchain for a surface must respect.
type surfaceCaps struct {
	minImages, maxImages     uint32 // maxImages 0: no limit
	current, least, most     [2]uint32
	transform, alpha, usages uint32 // currentTransform, supportedCompositeAlpha, supportedUsageFlags
}

func surfaceCapabilities(in vk.Instance, phys vk.PhysicalDevice, surface vk.Surface) (surfaceCaps, error) {
	var c C.isabSurfaceCaps
	r := C.isabSurfaceCapabilities(gipaPointer(), unsafe.Pointer(in), unsafe.Pointer(phys), unsafe.Pointer(surface), &c)
	if err := check("vkGetPhysicalDeviceSurfaceCapabilitiesKHR", vk.Result(r)); err != nil {
		return surfaceCaps{}, err
	}
	return surfaceCaps{
		minImages: uint32(c.minImageCount), maxImages: uint32(c.maxImageCount),
		current:   [2]uint32{uint32(c.curW), uint32(c.curH)},
		least:     [2]uint32{uint32(c.minW), uint32(c.minH)},
		most:      [2]uint32{uint32(c.maxW), uint32(c.maxH)},
		transform: uint32(c.currentTransform), alpha: uint32(c.supportedCompositeAlpha), usages: uint32(c.supportedUsageFlags),
	}, nil
}

// surfaceFormats lists the (VkFormat, VkColorSpaceKHR) pairs of surface.
func surfaceFormats(in vk.Instance, phys vk.PhysicalDevice, surface vk.Surface) ([][2]int32, error) {
	const max = 256
	var buf [2 * max]C.int32_t
	var n C.uint32_t
	r := C.isabSurfaceFormats(gipaPointer(), unsafe.Pointer(in), unsafe.Pointer(phys), unsafe.Pointer(surface), &buf[0], max, &n)
	if err := check("vkGetPhysicalDeviceSurfaceFormatsKHR", vk.Result(r)); err != nil {
		return nil, err
	}
	out := make([][2]int32, n)
	for i := range out {
		out[i] = [2]int32{int32(buf[2*i]), int32(buf[2*i+1])}
	}
	return out, nil
}

func destroySurface(in vk.Instance, surface vk.Surface) {
	C.isabDestroySurface(gipaPointer(), unsafe.Pointer(in), unsafe.Pointer(surface))
}

// createPresentDevice creates a device of phys with one queue of family fam
// and VK_KHR_swapchain enabled.
func createPresentDevice(in vk.Instance, phys vk.PhysicalDevice, fam uint32, portability bool) (vk.Device, error) {
	var out unsafe.Pointer
	r := C.isabCreatePresentDevice(gipaPointer(), unsafe.Pointer(in), unsafe.Pointer(phys), C.uint32_t(fam), cbool(portability), &out)
	if err := check("vkCreateDevice", vk.Result(r)); err != nil {
		return nil, err
	}
	return vk.Device(out), nil
}

// swapchainSpec is what createSwapchain makes.
type swapchainSpec struct {
	images           uint32
	format, space    int32
	width, height    uint32
	transform, alpha uint32
	old              vk.Swapchain
}

func (f *presentFns) createSwapchain(dev vk.Device, surface vk.Surface, s swapchainSpec) (vk.Swapchain, error) {
	var out unsafe.Pointer
	r := C.isabCreateSwapchain(&f.c, unsafe.Pointer(dev), unsafe.Pointer(surface), C.uint32_t(s.images), C.int32_t(s.format),
		C.int32_t(s.space), C.uint32_t(s.width), C.uint32_t(s.height), C.uint32_t(s.transform), C.uint32_t(s.alpha),
		unsafe.Pointer(s.old), &out)
	if err := check("vkCreateSwapchainKHR", vk.Result(r)); err != nil {
		return nil, err
	}
	return vk.Swapchain(out), nil
}

func (f *presentFns) destroySwapchain(dev vk.Device, sw vk.Swapchain) {
	C.isabDestroySwapchain(&f.c, unsafe.Pointer(dev), unsafe.Pointer(sw))
}

// maxSwapImages bounds the images of a swapchain that a Presenter takes.
const maxSwapImages = 16

func (f *presentFns) swapchainImages(dev vk.Device, sw vk.Swapchain) ([]vk.Image, error) {
	var buf [maxSwapImages]unsafe.Pointer
	var n C.uint32_t
	r := C.isabSwapchainImages(&f.c, unsafe.Pointer(dev), unsafe.Pointer(sw), &buf[0], maxSwapImages, &n)
	if err := check("vkGetSwapchainImagesKHR", vk.Result(r)); err != nil {
		return nil, err
	}
	images := make([]vk.Image, n)
	for i := range images {
		images[i] = vk.Image(buf[i])
	}
	return images, nil
}

func (f *presentFns) acquireNextImage(dev vk.Device, sw vk.Swapchain, timeout uint64, sem vk.Semaphore) (uint32, vk.Result) {
	var idx C.uint32_t
	r := C.isabAcquireNextImage(&f.c, unsafe.Pointer(dev), unsafe.Pointer(sw), C.uint64_t(timeout), unsafe.Pointer(sem), &idx)
	return uint32(idx), vk.Result(r)
}

// imageLayout records a layout transition of a colour image.
func (f *presentFns) imageLayout(cmd vk.CommandBuffer, img vk.Image, from, to vk.ImageLayout,
	srcStage, dstStage vk.PipelineStageFlagBits, srcAccess, dstAccess vk.AccessFlagBits) {
	C.isabImageLayout(&f.c, unsafe.Pointer(cmd), unsafe.Pointer(img), C.int32_t(from), C.int32_t(to),
		C.uint32_t(srcStage), C.uint32_t(dstStage), C.uint32_t(srcAccess), C.uint32_t(dstAccess))
}

// copyBufferToImage records a copy of a tightly packed w x h buffer into a
// colour image in TRANSFER_DST_OPTIMAL layout.
func (f *presentFns) copyBufferToImage(cmd vk.CommandBuffer, buf vk.Buffer, img vk.Image, w, h uint32) {
	C.isabCopyBufferToImage(&f.c, unsafe.Pointer(cmd), unsafe.Pointer(buf), unsafe.Pointer(img), C.uint32_t(w), C.uint32_t(h))
}

// submitWaitSignal submits cmd to queue: it waits for wait at waitStage and
// signals signal and fence.
func (f *presentFns) submitWaitSignal(queue vk.Queue, cmd vk.CommandBuffer, wait vk.Semaphore, waitStage vk.PipelineStageFlagBits,
	signal vk.Semaphore, fence vk.Fence) vk.Result {
	return vk.Result(C.isabSubmitWaitSignal(&f.c, unsafe.Pointer(queue), unsafe.Pointer(cmd), unsafe.Pointer(wait),
		C.uint32_t(waitStage), unsafe.Pointer(signal), unsafe.Pointer(fence)))
}

// queuePresent presents image index of sw once wait is signalled.
func (f *presentFns) queuePresent(queue vk.Queue, wait vk.Semaphore, sw vk.Swapchain, index uint32) vk.Result {
	return vk.Result(C.isabQueuePresent(&f.c, unsafe.Pointer(queue), unsafe.Pointer(wait), unsafe.Pointer(sw), C.uint32_t(index)))
}
