package vk

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vk "github.com/vulkan-go/vulkan"

	"github.com/isab-vk/isab-vk/internal/checked"
	"github.com/isab-vk/isab-vk/internal/sysmem"
)

// Options chooses and configures a device.
type Options struct {
	// Device selects the physical device: its index in Devices(), or a
	// case-insensitive substring of its name. Empty means the ISAB_DEVICE
	// environment variable, and when that is empty too, the first discrete
	// GPU, else integrated, else virtual, else CPU (lavapipe).
	Device string
	// Validation turns on the Khronos validation layer and collects its
	// messages (see ValidationMessages). ISAB_VALIDATION=1 does the same.
	// The choice is made when the process-wide Vulkan instance is created,
	// that is on the first Open (or Devices) call.
	Validation bool
	// WaitTimeout bounds every wait on the device's work, counted from the
	// work's submission: a Sequence.Run, the Reset or Close after a Run
	// that a context cancelled, a staged Buffer.Write or Read, and
	// Device.Close. Work that exceeds it makes the wait return an error
	// that names the work and wraps ErrWaitTimeout (see Sequence.Run for
	// what becomes of a sequence whose work did not finish). Zero means
	// the WaitTimeoutEnv environment variable (ISAB_WAIT_TIMEOUT, a Go
	// duration such as "90s"; a value that does not parse, or is not
	// positive, makes Open fail), and when that is unset too,
	// DefaultWaitTimeout (10 minutes). Negative is an error.
	WaitTimeout time.Duration
	// SpecMinimum makes the device report, in Info, no more than the
	// smallest limits the Vulkan specification allows (16 KiB of shared
	// memory, 128 invocations per workgroup, a 128 MiB storage-buffer
	// range, 65536 texel-buffer elements, offset alignments of 256 bytes,
	// ...; see the SpecMin constants), and refuse kernels whose workgroups
	// exceed them. The device itself is unchanged. Tests turn it on to show
	// that the kernels and their choice keep within what every conforming
	// device offers.
	SpecMinimum bool
}

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

// Info describes a physical device.
type Info struct {
	Index      int    // position in Devices()
	Name       string // e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"
	Vendor     string // "NVIDIA", "AMD", "Intel", "Apple", "Mesa", ...
	VendorID   uint32
	DeviceID   uint32
	Type       string // "discrete", "integrated", "virtual", "cpu", "other"
	APIVersion string // e.g. "1.3.230"
	Driver     string // driver name and info, or its version number
	// DriverName and DriverInfo are VK_KHR_driver_properties' driverName
	// (e.g. "llvmpipe", "NVIDIA") and driverInfo (its version as the
	// driver writes it, e.g. "Mesa 22.3.6 (LLVM 15.0.6)"); empty where
	// the device does not report them. DriverVersion is the raw
	// driverVersion of VkPhysicalDeviceProperties, whose encoding is
	// vendor-specific.
	DriverName, DriverInfo string
	DriverVersion          uint32
	SubgroupSize           uint32 // 0 when the device cannot report it (Vulkan 1.0)
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

// instance is the process-wide Vulkan instance, shared by every Device.
type instance struct {
	handle     vk.Instance
	version    uint32
	validation bool
	messenger  uint64
	phys       []vk.PhysicalDevice
	infos      []Info
	exts       [][]string
	refs       int
}

var (
	instMu sync.Mutex
	inst   *instance
)

func envValidation() bool {
	v := os.Getenv("ISAB_VALIDATION")
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

// acquireInstance returns the shared instance, creating it when needed.
func acquireInstance(validation bool) (*instance, error) {
	instMu.Lock()
	defer instMu.Unlock()
	validation = validation || envValidation()
	if inst != nil && validation && !inst.validation && inst.refs == 0 {
		inst.destroy()
		inst = nil
	}
	if inst == nil {
		in, err := newInstance(validation)
		if err != nil {
			return nil, err
		}
		inst = in
	}
	inst.refs++
	return inst, nil
}

func releaseInstance() {
	instMu.Lock()
	defer instMu.Unlock()
	if inst == nil {
		return
	}
	inst.refs--
	if inst.refs == 0 {
		inst.destroy()
		inst = nil
	}
}

func hasName(list []string, name string) bool {
	for _, s := range list {
		if s == name {
			return true
		}
	}
	return false
}

func instanceLayers() []string { return enumNames(nil, nil, 1) }

func instanceExtensions() []string { return enumNames(nil, nil, 0) }

func deviceExtensions(in vk.Instance, dev vk.PhysicalDevice) []string { return enumNames(in, dev, 2) }

const (
	validationLayer  = "VK_LAYER_KHRONOS_validation"
	debugUtilsExt    = "VK_EXT_debug_utils"
	portabilityEnum  = "VK_KHR_portability_enumeration"
	portabilitySub   = "VK_KHR_portability_subset"
	driverPropsExt   = "VK_KHR_driver_properties"
	float16Int8Ext   = "VK_KHR_shader_float16_int8"
	coopMatrixExt    = "VK_KHR_cooperative_matrix"
	memoryModelExt   = "VK_KHR_vulkan_memory_model"
	storage16BitExt  = "VK_KHR_16bit_storage"
	portabilityFlag  = 0x00000001 // VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR
	maxAPIVersion    = (1 << 22) | (3 << 12)
	minAPIForProps2  = (1 << 22) | (1 << 12)
	minAPIForDriver  = (1 << 22) | (2 << 12)
	nullTerminator   = "\x00"
	applicationName  = "isab-vk\x00"
	stagingChunkSize = 64 << 20
)

// newInstance creates an instance, with the validation layer when asked and
// with the instance extensions extra (a Presenter's surface extensions).
func newInstance(validation bool, extra ...string) (*instance, error) {
	if err := load(); err != nil {
		return nil, err
	}
	version := instanceVersion()
	if version > maxAPIVersion {
		version = maxAPIVersion
	}
	var layers, exts []string
	var flags vk.InstanceCreateFlags
	available := instanceExtensions()
	if validation {
		if !hasName(instanceLayers(), validationLayer) {
			return nil, fmt.Errorf("vk: validation requested but %s is not installed (Debian package vulkan-validationlayers)", validationLayer)
		}
		if !hasName(available, debugUtilsExt) {
			return nil, fmt.Errorf("vk: validation requested but the loader lacks %s", debugUtilsExt)
		}
		layers = append(layers, validationLayer+nullTerminator)
		exts = append(exts, debugUtilsExt+nullTerminator)
	}
	if hasName(available, portabilityEnum) {
		exts = append(exts, portabilityEnum+nullTerminator)
		flags |= portabilityFlag
	}
	for _, e := range extra {
		exts = append(exts, e+nullTerminator)
	}
	app := &vk.ApplicationInfo{
		SType:            vk.StructureTypeApplicationInfo,
		PApplicationName: applicationName,
		PEngineName:      applicationName,
		ApiVersion:       version,
	}
	ci := &vk.InstanceCreateInfo{
		SType:                   vk.StructureTypeInstanceCreateInfo,
		Flags:                   flags,
		PApplicationInfo:        app,
		EnabledLayerCount:       uint32(len(layers)),
		PpEnabledLayerNames:     layers,
		EnabledExtensionCount:   uint32(len(exts)),
		PpEnabledExtensionNames: exts,
	}
	var h vk.Instance
	r := vk.CreateInstance(ci, nil, &h)
	ci.Free()
	app.Free()
	if err := instanceError(r); err != nil {
		return nil, err
	}
	if err := vk.InitInstance(h); err != nil {
		vk.DestroyInstance(h, nil)
		return nil, fmt.Errorf("vk: loading instance functions: %w", err)
	}
	in := &instance{handle: h, version: version, validation: validation}
	if validation {
		m, err := createMessenger(h)
		if err != nil {
			vk.DestroyInstance(h, nil)
			return nil, err
		}
		in.messenger = m
	}
	if err := in.enumerate(); err != nil {
		in.destroy()
		return nil, err
	}
	return in, nil
}

func (in *instance) destroy() {
	if in.messenger != 0 {
		destroyMessenger(in.handle, in.messenger)
	}
	vk.DestroyInstance(in.handle, nil)
}

func (in *instance) enumerate() error {
	var n uint32
	if err := check("vkEnumeratePhysicalDevices", vk.EnumeratePhysicalDevices(in.handle, &n, nil)); err != nil {
		return err
	}
	if n == 0 {
		return noVulkan{errors.New("vk: no Vulkan device found (install a driver, e.g. mesa-vulkan-drivers for lavapipe)")}
	}
	in.phys = make([]vk.PhysicalDevice, n)
	if err := check("vkEnumeratePhysicalDevices", vk.EnumeratePhysicalDevices(in.handle, &n, in.phys)); err != nil {
		return err
	}
	in.phys = in.phys[:n]
	for i, p := range in.phys {
		exts := deviceExtensions(in.handle, p)
		in.exts = append(in.exts, exts)
		in.infos = append(in.infos, in.describe(i, p, exts))
	}
	return nil
}

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
	case 0x10005:
		return "Mesa"
	}
	return fmt.Sprintf("0x%04x", id)
}

func typeName(t vk.PhysicalDeviceType) string {
	switch t {
	case vk.PhysicalDeviceTypeDiscreteGpu:
		return "discrete"
	case vk.PhysicalDeviceTypeIntegratedGpu:
		return "integrated"
	case vk.PhysicalDeviceTypeVirtualGpu:
		return "virtual"
	case vk.PhysicalDeviceTypeCpu:
		return "cpu"
	}
	return "other"
}

func versionString(v uint32) string {
	return fmt.Sprintf("%d.%d.%d", v>>22, (v>>12)&0x3ff, v&0xfff)
}

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
		Type:                            typeName(props.DeviceType),
		APIVersion:                      versionString(props.ApiVersion),
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
	api := props.ApiVersion
	if in.version >= minAPIForProps2 && api >= minAPIForProps2 {
		haveDriver := api >= minAPIForDriver || hasName(exts, driverPropsExt)
		haveF16 := api >= minAPIForDriver || hasName(exts, float16Int8Ext)
		haveCoop := hasName(exts, coopMatrixExt)
		haveMM := api >= minAPIForDriver || hasName(exts, memoryModelExt)
		if e, ok := queryExt(in.handle, p, haveDriver, haveF16, haveCoop, haveMM); ok {
			info.SubgroupSize = e.subgroupSize
			info.SubgroupQuad = e.subgroupQuad
			info.Float16 = e.float16
			info.Storage16 = e.storage16
			if e.driverName != "" {
				info.Driver = strings.TrimSpace(e.driverName + " " + e.driverInfo)
				info.DriverName, info.DriverInfo = e.driverName, e.driverInfo
			}
			if haveCoop && e.coopMatrix && e.memoryModel && !lavapipeCoopCrash(info) {
				info.CoopMatrix = queryCoopMatrix(in.handle, p)
			}
		}
	}
	qprops := queueFamilies(in.handle, p)
	if fam, ok := computeFamily(qprops); ok {
		info.Timestamps = qprops[fam].TimestampValidBits > 0 && lim.TimestampPeriod > 0
	}
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
	return info
}

// lavapipeCoopCrash reports a device whose cooperative matrices must not
// be used: lavapipe with subgroups of other than 8 lanes. Mesa 26.1 and
// 26.2 (the first lavapipes with VK_KHR_cooperative_matrix) crash inside
// vkCreateComputePipelines on any cooperative-matrix shader with 16 lanes
// (LP_NATIVE_VECTOR_WIDTH=512, which vk picks on AVX-512 CPUs), and work
// with 8.
func lavapipeCoopCrash(info Info) bool {
	return info.Type == "cpu" && strings.HasPrefix(info.Name, "llvmpipe") && info.SubgroupSize != 8
}

// computeFamily returns the queue family used for compute: a compute-only
// family when there is one (it often runs beside graphics), else the first
// family with compute.
func computeFamily(props []vk.QueueFamilyProperties) (uint32, bool) {
	best, found := uint32(0), false
	for i := range props {
		props[i].Deref()
		f := vk.QueueFlagBits(props[i].QueueFlags)
		if f&vk.QueueComputeBit == 0 {
			continue
		}
		if f&vk.QueueGraphicsBit == 0 {
			return uint32(i), true
		}
		if !found {
			best, found = uint32(i), true
		}
	}
	return best, found
}

func memFlags(mem vk.PhysicalDeviceMemoryProperties, t uint32) vk.MemoryPropertyFlagBits {
	mt := mem.MemoryTypes[t]
	mt.Deref()
	return vk.MemoryPropertyFlagBits(mt.PropertyFlags)
}

// pickMemoryType chooses a memory type among allowed (a bit mask). With
// deviceLocal it prefers device-local types, and among those ones that are
// also host-visible and coherent (lavapipe, integrated GPUs, resizable BAR).
// Without it, it wants host-visible coherent memory for staging.
func pickMemoryType(mem vk.PhysicalDeviceMemoryProperties, allowed uint32, deviceLocal bool) (uint32, bool) {
	best, bestScore := uint32(0), -1
	for i := uint32(0); i < mem.MemoryTypeCount; i++ {
		if allowed&(1<<i) == 0 {
			continue
		}
		f := memFlags(mem, i)
		hostOK := f&vk.MemoryPropertyHostVisibleBit != 0 && f&vk.MemoryPropertyHostCoherentBit != 0
		score := 0
		if deviceLocal {
			if f&vk.MemoryPropertyDeviceLocalBit != 0 {
				score += 4
			}
			if hostOK {
				score++
			}
		} else {
			if !hostOK {
				continue
			}
			score = 2
			if f&vk.MemoryPropertyHostCachedBit != 0 {
				score++
			}
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	return best, bestScore >= 0
}

// Devices lists every Vulkan device that the loader reports.
func Devices() ([]Info, error) {
	in, err := acquireInstance(false)
	if err != nil {
		return nil, err
	}
	defer releaseInstance()
	return append([]Info(nil), in.infos...), nil
}

// selectDevice resolves a selector (index or name substring) to an index.
func selectDevice(infos []Info, sel string) (int, error) {
	sel = strings.TrimSpace(sel)
	if sel != "" {
		if i, err := strconv.Atoi(sel); err == nil {
			if i < 0 || i >= len(infos) {
				return 0, fmt.Errorf("vk: device index %d out of range: %d device(s) present", i, len(infos))
			}
			return i, nil
		}
		var names []string
		for _, in := range infos {
			if strings.Contains(strings.ToLower(in.Name), strings.ToLower(sel)) {
				return in.Index, nil
			}
			names = append(names, fmt.Sprintf("%d: %s", in.Index, in.Name))
		}
		return 0, fmt.Errorf("vk: no device matches %q; devices: %s", sel, strings.Join(names, "; "))
	}
	rank := map[string]int{"discrete": 0, "integrated": 1, "virtual": 2, "cpu": 3, "other": 4}
	order := make([]int, len(infos))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rank[infos[order[a]].Type] < rank[infos[order[b]].Type] })
	return order[0], nil
}

// Device is an open logical device with one compute queue. It is safe for
// concurrent use by several goroutines.
type Device struct {
	in       *instance
	phys     vk.PhysicalDevice
	handle   vk.Device
	fns      *deviceFns // entry points called without vulkan-go (calls.go)
	queue    vk.Queue
	family   uint32
	info     Info
	mem      vk.PhysicalDeviceMemoryProperties
	cache    vk.PipelineCache
	tsMask   uint64
	submitMu sync.Mutex // guards queue submission

	kernelMu sync.Mutex
	kernels  map[string]*Kernel

	xferMu   sync.Mutex // guards the transfer command pool
	xferPool vk.CommandPool

	live      atomic.Int64 // live Vulkan objects and allocations made through this device
	liveBytes atomic.Int64 // bytes of device memory held by buffers
	peakBytes atomic.Int64 // high-water mark of liveBytes since the last ResetPeakBytes

	waitLimit time.Duration // see Options.WaitTimeout
	lost      atomic.Bool   // a call returned VK_ERROR_DEVICE_LOST
	workMu    sync.Mutex    // guards works, orphans, stuck, deferred and work.release
	works     map[*work]struct{}
	orphans   int            // works with a release to run
	stuck     int            // works whose wait ran out of time, not yet seen finished
	deferred  []func()       // frees of buffers kept until no work is stuck
	probes    sync.WaitGroup // queryProbe calls in flight

	closeMu sync.Mutex
	closed  atomic.Bool
}

// Open opens a device chosen by opts (see Options.Device).
func Open(opts Options) (*Device, error) {
	limit, err := resolveWaitTimeout(opts.WaitTimeout)
	if err != nil {
		return nil, err
	}
	in, err := acquireInstance(opts.Validation)
	if err != nil {
		return nil, err
	}
	sel := opts.Device
	if sel == "" {
		sel = os.Getenv("ISAB_DEVICE")
	}
	idx, err := selectDevice(in.infos, sel)
	if err != nil {
		releaseInstance()
		return nil, err
	}
	d, err := newDevice(in, idx)
	if err != nil {
		releaseInstance()
		return nil, err
	}
	d.waitLimit = limit
	if opts.SpecMinimum {
		d.info.clampToSpecMinimum()
	}
	return d, nil
}

func newDevice(in *instance, idx int) (*Device, error) {
	p := in.phys[idx]
	info := in.infos[idx]
	qprops := queueFamilies(in.handle, p)
	fam, ok := computeFamily(qprops)
	if !ok {
		return nil, fmt.Errorf("vk: device %q has no compute queue", info.Name)
	}
	d := &Device{in: in, phys: p, family: fam, info: info, kernels: map[string]*Kernel{}, works: map[*work]struct{}{},
		waitLimit: DefaultWaitTimeout}
	if bits := qprops[fam].TimestampValidBits; bits >= 64 {
		d.tsMask = ^uint64(0)
	} else {
		d.tsMask = (uint64(1) << bits) - 1
	}
	vk.GetPhysicalDeviceMemoryProperties(p, &d.mem)
	d.mem.Deref()
	for i := uint32(0); i < d.mem.MemoryTypeCount; i++ {
		d.mem.MemoryTypes[i].Deref()
	}
	for i := uint32(0); i < d.mem.MemoryHeapCount; i++ {
		d.mem.MemoryHeaps[i].Deref()
	}

	exts := in.exts[idx]
	var enable []string
	if hasName(exts, portabilitySub) {
		enable = append(enable, portabilitySub+nullTerminator)
	}
	var chain func()
	qci := []vk.DeviceQueueCreateInfo{{
		SType:            vk.StructureTypeDeviceQueueCreateInfo,
		QueueFamilyIndex: fam,
		QueueCount:       1,
		PQueuePriorities: []float32{1},
	}}
	ci := &vk.DeviceCreateInfo{
		SType:                vk.StructureTypeDeviceCreateInfo,
		QueueCreateInfoCount: 1,
		PQueueCreateInfos:    qci,
	}
	if in.version >= minAPIForProps2 && apiOf(info) >= minAPIForProps2 {
		haveF16 := apiOf(info) >= minAPIForDriver
		if !haveF16 && info.Float16 && hasName(exts, float16Int8Ext) {
			enable = append(enable, float16Int8Ext+nullTerminator)
			haveF16 = true
		}
		coop := len(info.CoopMatrix) > 0
		if coop {
			enable = append(enable, coopMatrixExt+nullTerminator)
			if apiOf(info) < minAPIForDriver {
				enable = append(enable, memoryModelExt+nullTerminator)
			}
		}
		p, free := featureChain(info.Storage16, info.Float16 && haveF16, haveF16, info.Int64, info.Float64, info.WriteWithoutFormat, coop)
		if p != nil {
			ci.PNext = p
			chain = free
		}
	}
	if ci.PNext == nil && (info.Int64 || info.Float64 || info.WriteWithoutFormat) {
		// Without a Features2 chain the core features go here instead.
		var f vk.PhysicalDeviceFeatures
		if info.Int64 {
			f.ShaderInt64 = vk.True
		}
		if info.Float64 {
			f.ShaderFloat64 = vk.True
		}
		if info.WriteWithoutFormat {
			f.ShaderStorageImageWriteWithoutFormat = vk.True
		}
		ci.PEnabledFeatures = []vk.PhysicalDeviceFeatures{f}
	}
	ci.EnabledExtensionCount = uint32(len(enable))
	ci.PpEnabledExtensionNames = enable
	var h vk.Device
	r := vk.CreateDevice(p, ci, nil, &h)
	ci.Free()
	if chain != nil {
		chain()
	}
	if err := check("vkCreateDevice", r); err != nil {
		return nil, fmt.Errorf("opening %q: %w", info.Name, err)
	}
	d.handle = h
	fns, err := loadDeviceFns(in.handle, h)
	if err != nil {
		vk.DestroyDevice(h, nil)
		d.handle = nil
		return nil, fmt.Errorf("opening %q: %w", info.Name, err)
	}
	d.fns = fns
	var q vk.Queue
	vk.GetDeviceQueue(h, fam, 0, &q)
	d.queue = q

	pci := &vk.PipelineCacheCreateInfo{SType: vk.StructureTypePipelineCacheCreateInfo}
	var madeCache = d.cache
	r = vk.CreatePipelineCache(h, pci, nil, &madeCache)
	d.cache = madeCache
	pci.Free()
	if err := check("vkCreatePipelineCache", r); err != nil {
		vk.DestroyDevice(h, nil)
		return nil, err
	}
	pool, err := d.newCommandPool()
	if err != nil {
		vk.DestroyPipelineCache(h, d.cache, nil)
		vk.DestroyDevice(h, nil)
		return nil, err
	}
	d.xferPool = pool
	return d, nil
}

// apiOf parses Info.APIVersion back into Vulkan's packed form.
func apiOf(info Info) uint32 {
	var a, b, c uint32
	fmt.Sscanf(info.APIVersion, "%d.%d.%d", &a, &b, &c)
	return a<<22 | b<<12 | c
}

func (d *Device) newCommandPool() (vk.CommandPool, error) {
	ci := &vk.CommandPoolCreateInfo{
		SType:            vk.StructureTypeCommandPoolCreateInfo,
		Flags:            vk.CommandPoolCreateFlags(vk.CommandPoolCreateResetCommandBufferBit),
		QueueFamilyIndex: d.family,
	}
	var pool vk.CommandPool
	r := vk.CreateCommandPool(d.handle, ci, nil, &pool)
	ci.Free()
	if err := check("vkCreateCommandPool", r); err != nil {
		return nil, err
	}
	return pool, nil
}

// Info describes the device.
func (d *Device) Info() Info { return d.info }

// LiveObjects reports how many Vulkan objects (buffers, memory allocations,
// sequences) made through this device are still alive, and how many bytes of
// device memory buffers hold. Leak tests watch these.
func (d *Device) LiveObjects() (objects, bytes int64) { return d.live.Load(), d.liveBytes.Load() }

// PeakBytes is the most device memory that buffers made through this device
// have held at once since it was opened or since the last ResetPeakBytes.
// Staging buffers used inside uploads and downloads are not counted.
func (d *Device) PeakBytes() int64 { return d.peakBytes.Load() }

// ResetPeakBytes restarts the high-water mark of PeakBytes at the bytes that
// buffers hold now, so that a following PeakBytes covers what happens next.
func (d *Device) ResetPeakBytes() { d.peakBytes.Store(d.liveBytes.Load()) }

// addLiveBytes counts n bytes of buffers made (n > 0) or freed (n < 0) and
// raises the high-water mark.
func (d *Device) addLiveBytes(n int64) {
	now := d.liveBytes.Add(n)
	for {
		peak := d.peakBytes.Load()
		if now <= peak || d.peakBytes.CompareAndSwap(peak, now) {
			return
		}
	}
}

// MemoryBudget is the device memory that everything a caller keeps on the
// device at once may take, in bytes (0: unknown): Info.DeviceLocalBytes,
// except on CPU devices, whose heap is the host's memory whatever size
// they report (lavapipe on Mesa 22.3 reports 2 GiB and a pass at
// n = 1M holds more than that in several buffers), where it is the larger
// of that and the host's physical memory. One buffer is still limited to
// Info.DeviceLocalBytes.
func (d *Device) MemoryBudget() int64 {
	if d.info.Type == "cpu" {
		return max(d.info.DeviceLocalBytes, sysmem.Total())
	}
	return d.info.DeviceLocalBytes
}

// CheckFootprint returns an error wrapping ErrOutOfMemory, naming what (for
// example "a buffer" or "the activations of n=1000000"), the bytes it needs
// and the device-local heap, when bytes is negative or exceeds
// Info.DeviceLocalBytes. It allocates nothing and does not count memory already
// in use (LiveObjects), so passing it does not promise that the
// allocations will succeed; failing it promises that they cannot.
func (d *Device) CheckFootprint(what string, bytes int64) error {
	if bytes < 0 {
		return fmt.Errorf("vk: %s needs a negative number of bytes (%d): %w", what, bytes, ErrOutOfMemory)
	}
	heap := d.info.DeviceLocalBytes
	if heap > 0 && bytes > heap {
		return fmt.Errorf("vk: %s needs %s (%d bytes), more than the %s (%d bytes) device-local heap of %q: %w",
			what, checked.Bytes(bytes), bytes, checked.Bytes(heap), heap, d.info.Name, ErrOutOfMemory)
	}
	return nil
}

// Close waits for the device's work to finish and destroys the device.
// Buffers, kernels and sequences made from it must not be used afterwards.
// Each piece of work in flight is waited for until the wait limit from
// its submission at most (Options.WaitTimeout); objects that closed
// sequences and timed-out copies left behind are freed once their work
// has finished. When some work is stuck (still unfinished at its limit),
// destroying the device would be undefined behaviour: Close then destroys
// nothing, returns an error naming that work and wrapping ErrWaitTimeout,
// and may be called again later; a process that exits instead simply
// leaks the device.
func (d *Device) Close() error {
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if d.closed.Load() {
		return nil
	}
	if err := d.settleAll(); err != nil {
		return err
	}
	d.closed.Store(true)
	vk.DeviceWaitIdle(d.handle) // nothing tracked is in flight: bounded
	d.probes.Wait()             // they return once the device is idle
	d.kernelMu.Lock()
	for _, k := range d.kernels {
		k.destroy()
	}
	d.kernels = nil
	d.kernelMu.Unlock()
	vk.DestroyCommandPool(d.handle, d.xferPool, nil)
	vk.DestroyPipelineCache(d.handle, d.cache, nil)
	vk.DestroyDevice(d.handle, nil)
	releaseInstance()
	return nil
}
