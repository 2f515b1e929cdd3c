package vk

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Vulkan calls that take or fill arrays of structures go through these
// helpers rather than through vulkan-go. Its wrappers copy such arrays into C
// memory that a finalizer frees, and the finalizer hangs on a value that is
// unreachable once the copy is made: a garbage collection during the call
// (likely during a pipeline compile, which takes seconds on lavapipe) could
// free the structures while the driver reads them. Here they live on the C
// stack or in malloc'd memory for the whole call. The structures are the
// Vulkan 1.0 ones, spelled out for 64-bit platforms, where every handle is
// pointer-sized.

typedef void* (*isabGIPA2)(void* instance, const char* name);
typedef void* (*isabGDPA)(void* device, const char* name);

typedef struct {
	void* createComputePipelines;
	void* updateDescriptorSets;
	void* queueSubmit;
	void* cmdPipelineBarrier;
	void* cmdCopyBuffer;
} isabDeviceFns;

static int isabLoadDeviceFns(void* gipa, void* instance, void* device, isabDeviceFns* f) {
	isabGDPA gdpa = (isabGDPA)((isabGIPA2)gipa)(instance, "vkGetDeviceProcAddr");
	if (gdpa == NULL) return -1;
	f->createComputePipelines = gdpa(device, "vkCreateComputePipelines");
	f->updateDescriptorSets = gdpa(device, "vkUpdateDescriptorSets");
	f->queueSubmit = gdpa(device, "vkQueueSubmit");
	f->cmdPipelineBarrier = gdpa(device, "vkCmdPipelineBarrier");
	f->cmdCopyBuffer = gdpa(device, "vkCmdCopyBuffer");
	if (!f->createComputePipelines || !f->updateDescriptorSets || !f->queueSubmit ||
	    !f->cmdPipelineBarrier || !f->cmdCopyBuffer) return -2;
	return 0;
}

typedef struct { uint32_t constantID; uint32_t offset; size_t size; } isabSpecEntry;
typedef struct { uint32_t mapEntryCount; const isabSpecEntry* pMapEntries; size_t dataSize; const void* pData; } isabSpecInfo;
typedef struct {
	int32_t sType; const void* pNext; uint32_t flags; uint32_t stage;
	void* module; const char* pName; const isabSpecInfo* pSpecializationInfo;
} isabStageInfo;
typedef struct {
	int32_t sType; const void* pNext; uint32_t flags; isabStageInfo stage;
	void* layout; void* basePipelineHandle; int32_t basePipelineIndex;
} isabComputeInfo;

// VkPipelineShaderStageRequiredSubgroupSizeCreateInfo (Vulkan 1.3,
// VK_EXT_subgroup_size_control).
typedef struct { int32_t sType; void* pNext; uint32_t requiredSubgroupSize; } isabRequiredSize;

// isabCreateComputePipeline creates one compute pipeline of module's
// "main" with the 4-byte specialization constants spec[0..n) at
// constant_ids 0..n-1, the shader stage flags stageFlags and, when
// requiredSize is not 0, that required subgroup size.
static int32_t isabCreateComputePipeline(isabDeviceFns* f, void* device, void* cache, void* module,
		void* layout, const uint32_t* spec, uint32_t n, uint32_t stageFlags, uint32_t requiredSize, void** out) {
	typedef int32_t (*fn)(void*, void*, uint32_t, const isabComputeInfo*, const void*, void**);
	isabSpecEntry* entries = NULL;
	uint32_t* data = NULL;
	isabSpecInfo si;
	memset(&si, 0, sizeof si);
	if (n > 0) {
		entries = (isabSpecEntry*)calloc(n, sizeof *entries);
		data = (uint32_t*)calloc(n, sizeof *data);
		if (entries == NULL || data == NULL) { free(entries); free(data); return -1; } // VK_ERROR_OUT_OF_HOST_MEMORY
		for (uint32_t i = 0; i < n; i++) {
			entries[i].constantID = i; entries[i].offset = 4 * i; entries[i].size = 4;
			data[i] = spec[i];
		}
		si.mapEntryCount = n; si.pMapEntries = entries; si.dataSize = 4 * (size_t)n; si.pData = data;
	}
	isabRequiredSize rs;
	memset(&rs, 0, sizeof rs);
	rs.sType = 1000225001; // VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO
	rs.requiredSubgroupSize = requiredSize;
	isabComputeInfo ci;
	memset(&ci, 0, sizeof ci);
	ci.sType = 29; // VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO
	ci.stage.sType = 18; // VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO
	ci.stage.pNext = requiredSize != 0 ? &rs : NULL;
	ci.stage.flags = stageFlags;
	ci.stage.stage = 0x20; // VK_SHADER_STAGE_COMPUTE_BIT
	ci.stage.module = module;
	ci.stage.pName = "main";
	ci.stage.pSpecializationInfo = n > 0 ? &si : NULL;
	ci.layout = layout;
	ci.basePipelineIndex = -1;
	int32_t r = ((fn)f->createComputePipelines)(device, cache, 1, &ci, NULL, out);
	free(entries);
	free(data);
	return r;
}

typedef struct { void* buffer; uint64_t offset; uint64_t range; } isabBufferInfo;
typedef struct {
	int32_t sType; const void* pNext; void* dstSet; uint32_t dstBinding; uint32_t dstArrayElement;
	uint32_t descriptorCount; int32_t descriptorType; const void* pImageInfo;
	const isabBufferInfo* pBufferInfo; void* const* pTexelBufferView;
} isabWrite;

// isabUpdateDescriptorSet writes n single-descriptor bindings of set:
// binding i gets descriptor type types[i] and either the view views[i]
// (texel buffers) or the range [offsets[i], offsets[i]+ranges[i]) of
// buffers[i].
static int isabUpdateDescriptorSet(isabDeviceFns* f, void* device, void* set, uint32_t n,
		const int32_t* types, void* const* buffers, const uint64_t* offsets, const uint64_t* ranges,
		void* const* views) {
	typedef void (*fn)(void*, uint32_t, const isabWrite*, uint32_t, const void*);
	if (n == 0) return 0;
	isabWrite* w = (isabWrite*)calloc(n, sizeof *w);
	isabBufferInfo* bi = (isabBufferInfo*)calloc(n, sizeof *bi);
	void** vs = (void**)calloc(n, sizeof *vs);
	if (w == NULL || bi == NULL || vs == NULL) { free(w); free(bi); free(vs); return -1; }
	for (uint32_t i = 0; i < n; i++) {
		w[i].sType = 35; // VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET
		w[i].dstSet = set;
		w[i].dstBinding = i;
		w[i].descriptorCount = 1;
		w[i].descriptorType = types[i];
		if (views[i] != NULL) {
			vs[i] = views[i];
			w[i].pTexelBufferView = &vs[i];
		} else {
			bi[i].buffer = buffers[i]; bi[i].offset = offsets[i]; bi[i].range = ranges[i];
			w[i].pBufferInfo = &bi[i];
		}
	}
	((fn)f->updateDescriptorSets)(device, n, w, 0, NULL);
	free(w); free(bi); free(vs);
	return 0;
}

typedef struct {
	int32_t sType; const void* pNext; uint32_t waitSemaphoreCount; const void* pWaitSemaphores;
	const uint32_t* pWaitDstStageMask; uint32_t commandBufferCount; void* const* pCommandBuffers;
	uint32_t signalSemaphoreCount; const void* pSignalSemaphores;
} isabSubmit;

// isabQueueSubmit submits one command buffer, signalling fence.
static int32_t isabQueueSubmit(isabDeviceFns* f, void* queue, void* cmd, void* fence) {
	typedef int32_t (*fn)(void*, uint32_t, const isabSubmit*, void*);
	isabSubmit s;
	memset(&s, 0, sizeof s);
	s.sType = 4; // VK_STRUCTURE_TYPE_SUBMIT_INFO
	s.commandBufferCount = 1;
	s.pCommandBuffers = &cmd;
	return ((fn)f->queueSubmit)(queue, 1, &s, fence);
}

typedef struct { int32_t sType; const void* pNext; uint32_t srcAccessMask; uint32_t dstAccessMask; } isabMemoryBarrier;

// isabCmdMemoryBarrier records one global memory barrier.
static void isabCmdMemoryBarrier(isabDeviceFns* f, void* cmd, uint32_t srcStage, uint32_t dstStage,
		uint32_t srcAccess, uint32_t dstAccess) {
	typedef void (*fn)(void*, uint32_t, uint32_t, uint32_t, uint32_t, const isabMemoryBarrier*,
		uint32_t, const void*, uint32_t, const void*);
	isabMemoryBarrier b;
	memset(&b, 0, sizeof b);
	b.sType = 46; // VK_STRUCTURE_TYPE_MEMORY_BARRIER
	b.srcAccessMask = srcAccess;
	b.dstAccessMask = dstAccess;
	((fn)f->cmdPipelineBarrier)(cmd, srcStage, dstStage, 0, 1, &b, 0, NULL, 0, NULL);
}

typedef struct { uint64_t srcOffset; uint64_t dstOffset; uint64_t size; } isabBufferCopy;

// isabCmdCopyBuffer records one buffer-to-buffer copy.
static void isabCmdCopyBuffer(isabDeviceFns* f, void* cmd, void* src, void* dst, uint64_t srcOff, uint64_t dstOff, uint64_t size) {
	typedef void (*fn)(void*, void*, void*, uint32_t, const isabBufferCopy*);
	isabBufferCopy c = { srcOff, dstOff, size };
	((fn)f->cmdCopyBuffer)(cmd, src, dst, 1, &c);
}

// isabEnumNames lists up to max names (256 bytes each) into out: kind 0
// the instance extensions, 1 the instance layers, 2 the extensions of
// physical device phys. It returns the count, or -1.
static int32_t isabEnumNames(void* gipa, void* instance, void* phys, int kind, char* out, uint32_t max) {
	isabGIPA2 g = (isabGIPA2)gipa;
	uint32_t n = 0;
	size_t stride;
	int32_t r;
	typedef int32_t (*instFn)(const char*, uint32_t*, void*);
	typedef int32_t (*devFn)(void*, const char*, uint32_t*, void*);
	typedef int32_t (*layerFn)(uint32_t*, void*);
	void* f;
	switch (kind) {
	case 0: f = g(NULL, "vkEnumerateInstanceExtensionProperties"); stride = 260; break;
	case 1: f = g(NULL, "vkEnumerateInstanceLayerProperties"); stride = 520; break;
	default: f = g(instance, "vkEnumerateDeviceExtensionProperties"); stride = 260; break;
	}
	if (f == NULL) return -1;
	for (int tries = 0; tries < 4; tries++) {
		switch (kind) {
		case 0: r = ((instFn)f)(NULL, &n, NULL); break;
		case 1: r = ((layerFn)f)(&n, NULL); break;
		default: r = ((devFn)f)(phys, NULL, &n, NULL); break;
		}
		if (r != 0) return -1;
		if (n == 0) return 0;
		char* props = (char*)calloc(n, stride);
		if (props == NULL) return -1;
		switch (kind) {
		case 0: r = ((instFn)f)(NULL, &n, props); break;
		case 1: r = ((layerFn)f)(&n, props); break;
		default: r = ((devFn)f)(phys, NULL, &n, props); break;
		}
		if (r == 5) { free(props); continue; } // VK_INCOMPLETE: the list grew; again
		if (r != 0) { free(props); return -1; }
		if (n > max) n = max;
		for (uint32_t i = 0; i < n; i++) {
			memcpy(out + 256 * (size_t)i, props + stride * i, 256);
			out[256 * (size_t)i + 255] = 0;
		}
		free(props);
		return (int32_t)n;
	}
	return -1;
}

// isabQueueFamilies fills flags, counts and timestamp bits of up to max
// queue families of phys and returns how many there are.
static uint32_t isabQueueFamilies(void* gipa, void* instance, void* phys, uint32_t* flags, uint32_t* counts, uint32_t* tsBits, uint32_t max) {
	typedef void (*fn)(void*, uint32_t*, void*);
	fn f = (fn)((isabGIPA2)gipa)(instance, "vkGetPhysicalDeviceQueueFamilyProperties");
	if (f == NULL) return 0;
	uint32_t n = 0;
	f(phys, &n, NULL);
	if (n == 0) return 0;
	uint32_t* p = (uint32_t*)calloc(n, 24); // VkQueueFamilyProperties: 6 words
	if (p == NULL) return 0;
	f(phys, &n, p);
	if (n > max) n = max;
	for (uint32_t i = 0; i < n; i++) {
		flags[i] = p[6 * i]; counts[i] = p[6 * i + 1]; tsBits[i] = p[6 * i + 2];
	}
	free(p);
	return n;
}
*/
import "C"

import (
	"errors"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// deviceFns holds the device-level entry points that vk calls itself (see
// the comment in this file's C part).
type deviceFns struct{ c C.isabDeviceFns }

// loadDeviceFns resolves them for device h of instance in.
func loadDeviceFns(in vk.Instance, h vk.Device) (*deviceFns, error) {
	f := &deviceFns{}
	if C.isabLoadDeviceFns(gipaPointer(), unsafe.Pointer(in), unsafe.Pointer(h), &f.c) != 0 {
		return nil, errors.New("vk: vkGetDeviceProcAddr did not give the core compute entry points")
	}
	return f, nil
}

// createComputePipeline creates the pipeline of module's "main" with spec
// as specialization constants 0..len(spec)-1 and the subgroups sub asks
// for.
func (d *Device) createComputePipeline(module vk.ShaderModule, layout vk.PipelineLayout, spec []uint32, sub subgroupRequest) (vk.Pipeline, error) {
	var specPtr *C.uint32_t
	if len(spec) > 0 {
		specPtr = (*C.uint32_t)(unsafe.Pointer(&spec[0]))
	}
	var out unsafe.Pointer
	r := C.isabCreateComputePipeline(&d.fns.c, unsafe.Pointer(d.handle), unsafe.Pointer(d.cache), unsafe.Pointer(module), unsafe.Pointer(layout),
		specPtr, C.uint32_t(len(spec)), C.uint32_t(sub.flags), C.uint32_t(sub.required), &out)
	if err := check("vkCreateComputePipelines", vk.Result(r)); err != nil {
		return nil, err
	}
	return vk.Pipeline(out), nil
}

// descriptorWrite is one binding of a descriptor set: a buffer range, or a
// texel-buffer view.
type descriptorWrite struct {
	typ            vk.DescriptorType
	buf            vk.Buffer
	offset, length int64
	view           vk.BufferView
}

// updateDescriptorSet writes bindings 0..len(w)-1 of set.
func (d *Device) updateDescriptorSet(set vk.DescriptorSet, w []descriptorWrite) error {
	n := len(w)
	if n == 0 {
		return nil
	}
	// Arrays of C memory: the handles are C pointers, which cgo does not
	// allow inside Go memory passed to C.
	types := (*[1 << 20]C.int32_t)(C.calloc(C.size_t(n), 4))[:n:n]
	bufs := (*[1 << 20]unsafe.Pointer)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(unsafe.Pointer(nil)))))[:n:n]
	views := (*[1 << 20]unsafe.Pointer)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(unsafe.Pointer(nil)))))[:n:n]
	offs := (*[1 << 20]C.uint64_t)(C.calloc(C.size_t(n), 8))[:n:n]
	lens := (*[1 << 20]C.uint64_t)(C.calloc(C.size_t(n), 8))[:n:n]
	defer func() {
		for _, p := range []unsafe.Pointer{unsafe.Pointer(&types[0]), unsafe.Pointer(&bufs[0]), unsafe.Pointer(&views[0]),
			unsafe.Pointer(&offs[0]), unsafe.Pointer(&lens[0])} {
			C.free(p)
		}
	}()
	for i, x := range w {
		types[i] = C.int32_t(x.typ)
		if x.view != nil {
			views[i] = unsafe.Pointer(x.view)
			continue
		}
		bufs[i] = unsafe.Pointer(x.buf)
		offs[i], lens[i] = C.uint64_t(x.offset), C.uint64_t(x.length)
	}
	if C.isabUpdateDescriptorSet(&d.fns.c, unsafe.Pointer(d.handle), unsafe.Pointer(set), C.uint32_t(n), &types[0], &bufs[0], &offs[0], &lens[0], &views[0]) != 0 {
		return errors.New("vk: out of host memory writing a descriptor set")
	}
	return nil
}

// queueSubmit submits cmd to the device's queue, signalling fence. The
// caller holds submitMu.
func (d *Device) queueSubmit(cmd vk.CommandBuffer, fence vk.Fence) vk.Result {
	return vk.Result(C.isabQueueSubmit(&d.fns.c, unsafe.Pointer(d.queue), unsafe.Pointer(cmd), unsafe.Pointer(fence)))
}

// memoryBarrier records a global memory barrier.
func (d *Device) memoryBarrier(cmd vk.CommandBuffer, src, dst vk.PipelineStageFlagBits, srcAccess, dstAccess vk.AccessFlagBits) {
	C.isabCmdMemoryBarrier(&d.fns.c, unsafe.Pointer(cmd), C.uint32_t(src), C.uint32_t(dst), C.uint32_t(srcAccess), C.uint32_t(dstAccess))
}

// cmdCopyBuffer records a copy of n bytes from src at srcOff to dst at
// dstOff.
func (d *Device) cmdCopyBuffer(cmd vk.CommandBuffer, src vk.Buffer, srcOff int64, dst vk.Buffer, dstOff, n int64) {
	C.isabCmdCopyBuffer(&d.fns.c, unsafe.Pointer(cmd), unsafe.Pointer(src), unsafe.Pointer(dst), C.uint64_t(srcOff), C.uint64_t(dstOff), C.uint64_t(n))
}

// maxNames bounds the names and queue families listed below.
const maxNames = 1024

// enumNames lists instance extensions (kind 0), instance layers (1) or the
// extensions of device phys (2).
func enumNames(instance vk.Instance, phys vk.PhysicalDevice, kind int) []string {
	buf := (*[maxNames * 256]byte)(C.calloc(maxNames, 256))
	defer C.free(unsafe.Pointer(buf))
	n := C.isabEnumNames(gipaPointer(), unsafe.Pointer(instance), unsafe.Pointer(phys), C.int(kind), (*C.char)(unsafe.Pointer(buf)), maxNames)
	var names []string
	for i := 0; i < int(n); i++ {
		names = append(names, vk.ToString(buf[256*i:256*(i+1)]))
	}
	return names
}

// queueFamilies returns the queue families of phys (flags, queue count and
// timestamp bits filled in).
func queueFamilies(instance vk.Instance, phys vk.PhysicalDevice) []vk.QueueFamilyProperties {
	var flags, counts, ts [64]C.uint32_t
	n := C.isabQueueFamilies(gipaPointer(), unsafe.Pointer(instance), unsafe.Pointer(phys), &flags[0], &counts[0], &ts[0], 64)
	out := make([]vk.QueueFamilyProperties, n)
	for i := range out {
		out[i] = vk.QueueFamilyProperties{QueueFlags: vk.QueueFlags(flags[i]), QueueCount: uint32(counts[i]), TimestampValidBits: uint32(ts[i])}
	}
	return out
}
