package vk

import (
	"fmt"
	"math"
	"strings"

	vk "github.com/vulkan-go/vulkan"
)

// CoopMatrixShape is one cooperative-matrix configuration that a device
// reports through VK_KHR_cooperative_matrix: C[MxN] += A[MxK] * B[KxN].
type CoopMatrixShape struct {
	M, N, K         uint32
	A, B, C, Result string // component types: "f16", "f32", "bf16", "i8", ...
	Subgroup        bool   // scope is a subgroup
}

// String formats the shape as "16x16x16 f16*f16+f32->f32".
func (s CoopMatrixShape) String() string {
	return fmt.Sprintf("%dx%dx%d %s*%s+%s->%s", s.M, s.N, s.K, s.A, s.B, s.C, s.Result)
}

// DeviceType is the kind of a physical device (VkPhysicalDeviceType). The
// constants are in ascending order of preference: Open, given no device,
// takes the first device of the greatest type.
type DeviceType uint8

// The device types, least preferred first.
const (
	DeviceOther      DeviceType = iota // none of the others
	DeviceCPU                          // a CPU rasteriser such as lavapipe or SwiftShader
	DeviceVirtual                      // a GPU seen through a virtualisation layer
	DeviceIntegrated                   // a GPU sharing the host's memory
	DeviceDiscrete                     // a GPU with memory of its own
)

// String is the type's name as isab devices and benchmark records print
// it: "discrete", "integrated", "virtual", "cpu" or "other".
func (t DeviceType) String() string {
	switch t {
	case DeviceDiscrete:
		return "discrete"
	case DeviceIntegrated:
		return "integrated"
	case DeviceVirtual:
		return "virtual"
	case DeviceCPU:
		return "cpu"
	}
	return "other"
}

// MarshalText writes the type as its String, so that JSON shows the name.
func (t DeviceType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// deviceTypeOf maps Vulkan's physical device type to DeviceType.
func deviceTypeOf(t vk.PhysicalDeviceType) DeviceType {
	switch t {
	case vk.PhysicalDeviceTypeDiscreteGpu:
		return DeviceDiscrete
	case vk.PhysicalDeviceTypeIntegratedGpu:
		return DeviceIntegrated
	case vk.PhysicalDeviceTypeVirtualGpu:
		return DeviceVirtual
	case vk.PhysicalDeviceTypeCpu:
		return DeviceCPU
	}
	return DeviceOther
}

// Version is a Vulkan version in Vulkan's packed form
// (VK_MAKE_API_VERSION: from the top, 3 bits of variant, 7 of major, 10 of
// minor and 12 of patch). Versions of one variant compare with < and >.
type Version uint32

// MakeVersion packs major.minor.patch (variant 0).
func MakeVersion(major, minor, patch uint32) Version {
	return Version(major&0x7f<<22 | minor&0x3ff<<12 | patch&0xfff)
}

// The Vulkan versions whose features vk looks for.
const (
	Version10 Version = 1<<22 | 0<<12
	Version11 Version = 1<<22 | 1<<12
	Version12 Version = 1<<22 | 2<<12
	Version13 Version = 1<<22 | 3<<12
)

// Major is the version's major number.
func (v Version) Major() uint32 { return uint32(v>>22) & 0x7f }

// Minor is the version's minor number.
func (v Version) Minor() uint32 { return uint32(v>>12) & 0x3ff }

// Patch is the version's patch number.
func (v Version) Patch() uint32 { return uint32(v) & 0xfff }

// String formats the version as "major.minor.patch", e.g. "1.3.230".
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major(), v.Minor(), v.Patch()) }

// MarshalText writes the version as its String, so that JSON shows
// "1.3.230".
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Info describes a physical device.
type Info struct {
	Index      int        // position in Devices()
	Name       string     // e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"
	Vendor     string     // "NVIDIA", "AMD", "Intel", "Apple", "Mesa", ...
	VendorID   uint32     // PCI vendor id (or Khronos vendor id, e.g. Mesa's 0x10005)
	DeviceID   uint32     // vendor-specific device id
	Type       DeviceType // discrete, integrated, virtual, cpu or other
	APIVersion Version    // the Vulkan version the device supports, e.g. 1.3.230
	Driver     string     // driver name and info, or its version number
	// DriverName and DriverInfo are VK_KHR_driver_properties' driverName
	// (e.g. "llvmpipe", "NVIDIA") and driverInfo (its version as the
	// driver writes it, e.g. "Mesa 22.3.6 (LLVM 15.0.6)"); empty where
	// the device does not report them. DriverVersion is the raw
	// driverVersion of VkPhysicalDeviceProperties, whose encoding is
	// vendor-specific.
	DriverName, DriverInfo string
	DriverVersion          uint32
	// SubgroupSize is the subgroup size the device reports
	// (VkPhysicalDeviceSubgroupProperties), 0 when it cannot report it
	// (Vulkan 1.0). A compute shader may run with another size in
	// [MinSubgroupSize, MaxSubgroupSize]: kernels that depend on the size
	// ask for one with KernelSpec.SubgroupSize.
	SubgroupSize uint32
	// MinSubgroupSize and MaxSubgroupSize are the range of subgroup sizes
	// the device may run compute shaders with
	// (VkPhysicalDeviceSubgroupSizeControlProperties, Vulkan 1.3 or
	// VK_EXT_subgroup_size_control); both 0 where the device does not
	// report them, and then nothing about the size a shader runs with is
	// assumed (SupportsSubgroupSize is false).
	MinSubgroupSize, MaxSubgroupSize uint32
	// MaxComputeWorkgroupSubgroups is the most subgroups a workgroup may
	// hold when its subgroup size is required (0 where not reported).
	MaxComputeWorkgroupSubgroups uint32
	// RequiredSubgroupSize says whether a compute pipeline may require a
	// subgroup size in [MinSubgroupSize, MaxSubgroupSize]: the
	// subgroupSizeControl feature (enabled at device creation) with the
	// compute stage in requiredSubgroupSizeStages.
	RequiredSubgroupSize bool
	// FullSubgroups is the computeFullSubgroups feature (enabled at device
	// creation): a compute pipeline may require that every subgroup of a
	// workgroup be full.
	FullSubgroups bool
	// SubgroupQuad says whether compute shaders may use subgroup quad
	// operations (subgroupQuadBroadcast and the quad swaps).
	SubgroupQuad     bool
	SharedMemory     uint32    // maxComputeSharedMemorySize in bytes
	MaxWorkgroup     uint32    // maxComputeWorkGroupInvocations
	MaxWorkgroupSize [3]uint32 // maxComputeWorkGroupSize
	MaxGroupCount    [3]uint32
	// MaxStorageBufferRange is the largest range one storage-buffer binding
	// may cover; larger buffers are bound in pieces.
	MaxStorageBufferRange uint64
	// MinStorageBufferOffsetAlignment is the alignment of binding offsets.
	MinStorageBufferOffsetAlignment uint64
	// MaxTexelBufferElements and MinTexelBufferOffsetAlignment limit
	// texel-buffer bindings (see KernelSpec.Texel).
	MaxTexelBufferElements        uint64
	MinTexelBufferOffsetAlignment uint64
	MaxPushConstants              uint32
	Float16                       bool // shaderFloat16
	Storage16                     bool // storageBuffer16BitAccess
	// Int64 and Float64 are shaderInt64 and shaderFloat64, enabled when
	// present: CPU kernels load 64-bit components, which lavapipe moves at
	// the cost of one 32-bit component each.
	Int64   bool
	Float64 bool
	// WriteWithoutFormat is shaderStorageImageWriteWithoutFormat, enabled
	// when supported: a shader may store to an image (storage texel
	// buffer) declared without a format, the view's format deciding.
	WriteWithoutFormat bool
	// CoopMatrix lists the shapes of VK_KHR_cooperative_matrix. It is
	// filled only when the device has the cooperativeMatrix feature and
	// vulkanMemoryModel (which shaders written with GL_KHR_cooperative_matrix
	// need); both are then enabled at device creation.
	CoopMatrix      []CoopMatrixShape
	Timestamps      bool    // compute queue supports timestamps
	TimestampPeriod float32 // nanoseconds per timestamp tick
	DeviceMemory    uint64  // size of the largest device-local heap (see DeviceLocalBytes)
	// DeviceLocalBytes is DeviceMemory as an int64 (capped at
	// math.MaxInt64): the size in bytes of the device's largest
	// device-local heap, as the driver reports it. No one buffer may be
	// larger (Vulkan's rule for an allocation; NewBuffer and
	// Device.CheckFootprint refuse it before allocating). What all
	// buffers together may hold is Device.MemoryBudget, which layers
	// above compare a shape's footprint with (minus what LiveObjects
	// reports in use) to refuse what cannot fit before they allocate
	// anything. 0 when the device reports no device-local heap (then
	// nothing is refused in advance).
	DeviceLocalBytes int64
	HostVisible      bool // device-local memory is host-visible (buffers are mapped directly)
}

// SupportsSubgroupSize reports whether a compute kernel can be made to run
// with subgroups of exactly size invocations (KernelSpec.SubgroupSize):
// the device can require that size (RequiredSubgroupSize, size within
// [MinSubgroupSize, MaxSubgroupSize]), or it runs no other size
// (MinSubgroupSize == MaxSubgroupSize == size). Kernels whose workgroup
// holds more than MaxComputeWorkgroupSubgroups subgroups of a required
// size are still refused by Device.Kernel.
func (in Info) SupportsSubgroupSize(size uint32) bool {
	if size == 0 || size&(size-1) != 0 || in.MinSubgroupSize == 0 {
		return false
	}
	if in.RequiredSubgroupSize && size >= in.MinSubgroupSize && size <= in.MaxSubgroupSize {
		return true
	}
	return in.MinSubgroupSize == size && in.MaxSubgroupSize == size
}

// vendorName names the vendor of a PCI vendor id (or a Khronos vendor id
// such as Mesa's), else formats the id in hex.
func vendorName(id uint32) string {
	switch id {
	case 0x10de:
		return "NVIDIA"
	case 0x1002, 0x1022:
		return "AMD"
	case 0x8086:
		return "Intel"
	case 0x106b:
		return "Apple"
	case 0x13b5:
		return "ARM"
	case 0x5143:
		return "Qualcomm"
	case 0x1010:
		return "Imagination"
	case 0x1ae0:
		return "Google" // SwiftShader
	case 0x10005:
		return "Mesa"
	}
	return fmt.Sprintf("0x%04x", id)
}

// describe queries what Info holds about physical device p (index in
// Devices(), with device extensions exts).
func (in *instance) describe(index int, p vk.PhysicalDevice, exts []string) Info {
	var props vk.PhysicalDeviceProperties
	vk.GetPhysicalDeviceProperties(p, &props)
	props.Deref()
	props.Limits.Deref()
	lim := props.Limits
	info := Info{
		Index:                           index,
		Name:                            vk.ToString(props.DeviceName[:]),
		VendorID:                        props.VendorID,
		DeviceID:                        props.DeviceID,
		Vendor:                          vendorName(props.VendorID),
		Type:                            deviceTypeOf(props.DeviceType),
		APIVersion:                      Version(props.ApiVersion),
		Driver:                          fmt.Sprintf("version 0x%x", props.DriverVersion),
		DriverVersion:                   props.DriverVersion,
		SharedMemory:                    lim.MaxComputeSharedMemorySize,
		MaxWorkgroup:                    lim.MaxComputeWorkGroupInvocations,
		MaxWorkgroupSize:                lim.MaxComputeWorkGroupSize,
		MaxGroupCount:                   lim.MaxComputeWorkGroupCount,
		MaxStorageBufferRange:           uint64(lim.MaxStorageBufferRange),
		MinStorageBufferOffsetAlignment: uint64(lim.MinStorageBufferOffsetAlignment),
		MaxTexelBufferElements:          uint64(lim.MaxTexelBufferElements),
		MinTexelBufferOffsetAlignment:   uint64(lim.MinTexelBufferOffsetAlignment),
		MaxPushConstants:                lim.MaxPushConstantsSize,
		TimestampPeriod:                 lim.TimestampPeriod,
	}
	var feats vk.PhysicalDeviceFeatures
	vk.GetPhysicalDeviceFeatures(p, &feats)
	feats.Deref()
	info.Int64 = feats.ShaderInt64 == vk.True
	info.Float64 = feats.ShaderFloat64 == vk.True
	info.WriteWithoutFormat = feats.ShaderStorageImageWriteWithoutFormat == vk.True
	if in.version >= Version11 && info.APIVersion >= Version11 {
		in.describeExt(&info, p, exts)
	}
	qprops := queueFamilies(in.handle, p)
	if fam, ok := computeFamily(qprops); ok {
		info.Timestamps = qprops[fam].TimestampValidBits > 0 && lim.TimestampPeriod > 0
	}
	describeMemory(&info, p)
	return info
}

// describeExt fills what the Vulkan 1.1+ queries (Properties2 and
// Features2 chains) report: subgroups, driver, fp16, 16-bit storage,
// cooperative matrices.
func (in *instance) describeExt(info *Info, p vk.PhysicalDevice, exts []string) {
	api := min(in.version, info.APIVersion)
	q := extQuery{
		driver:      info.APIVersion >= Version12 || hasName(exts, driverPropsExt),
		float16:     info.APIVersion >= Version12 || hasName(exts, float16Int8Ext),
		coop:        hasName(exts, coopMatrixExt),
		memoryModel: info.APIVersion >= Version12 || hasName(exts, memoryModelExt),
		sizeControl: api >= Version13 || hasName(exts, subgroupSizeExt),
	}
	e, ok := queryExt(in.handle, p, q)
	if !ok {
		return
	}
	info.SubgroupSize = e.subgroupSize
	info.SubgroupQuad = e.subgroupQuad
	if e.sizeControl {
		info.MinSubgroupSize, info.MaxSubgroupSize = e.minSubgroupSize, e.maxSubgroupSize
		info.MaxComputeWorkgroupSubgroups = e.maxWorkgroupSubgroups
		info.RequiredSubgroupSize = e.requiredSizeCompute
		info.FullSubgroups = e.fullSubgroups
	}
	info.Float16 = e.float16
	info.Storage16 = e.storage16
	if e.driverName != "" {
		info.Driver = strings.TrimSpace(e.driverName + " " + e.driverInfo)
		info.DriverName, info.DriverInfo = e.driverName, e.driverInfo
	}
	if q.coop && e.coopMatrix && e.memoryModel && !lavapipeCoopCrash(*info) {
		info.CoopMatrix = queryCoopMatrix(in.handle, p)
	}
}

// lavapipeCoopCrash reports a device whose cooperative matrices must not
// be used: lavapipe with subgroups of other than 8 lanes. Mesa 26.1 and
// 26.2 (the first lavapipes with VK_KHR_cooperative_matrix) crash inside
// vkCreateComputePipelines on any cooperative-matrix shader with 16 lanes
// (LP_NATIVE_VECTOR_WIDTH=512, which UseLavapipeDefaults picks on AVX-512
// CPUs), and work with 8.
func lavapipeCoopCrash(info Info) bool {
	return info.Type == DeviceCPU && strings.HasPrefix(info.Name, "llvmpipe") && info.SubgroupSize != 8
}

// describeMemory fills the heap sizes and whether device-local memory is
// host-visible.
func describeMemory(info *Info, p vk.PhysicalDevice) {
	var mem vk.PhysicalDeviceMemoryProperties
	vk.GetPhysicalDeviceMemoryProperties(p, &mem)
	mem.Deref()
	for i := uint32(0); i < mem.MemoryHeapCount; i++ {
		h := mem.MemoryHeaps[i]
		h.Deref()
		if vk.MemoryHeapFlagBits(h.Flags)&vk.MemoryHeapDeviceLocalBit != 0 && uint64(h.Size) > info.DeviceMemory {
			info.DeviceMemory = uint64(h.Size)
		}
	}
	info.DeviceLocalBytes = int64(min(info.DeviceMemory, math.MaxInt64))
	if t, ok := pickMemoryType(mem, ^uint32(0), true); ok {
		f := memFlags(mem, t)
		info.HostVisible = f&vk.MemoryPropertyHostVisibleBit != 0 && f&vk.MemoryPropertyHostCoherentBit != 0
	}
}
