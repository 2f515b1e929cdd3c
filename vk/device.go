package vk

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vk "github.com/vulkan-go/vulkan"
)

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
	best := 0
	for i, in := range infos {
		if in.Type > infos[best].Type || in.Type == infos[best].Type && preferCPU(in) > preferCPU(infos[best]) {
			best = i
		}
	}
	return best, nil
}

// preferCPU ranks CPU devices of the same type: lavapipe (llvmpipe) first,
// as it runs the kernels tens of times faster than SwiftShader (about 110
// against 0.2 GFLOP/s on the project's machine), which a machine may have
// beside it; otherwise the loader's order stands.
func preferCPU(in Info) int {
	if in.Type == DeviceCPU && (in.DriverName == "llvmpipe" || strings.HasPrefix(in.Name, "llvmpipe")) {
		return 1
	}
	return 0
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

// newDevice opens physical device idx of in with one compute queue, the
// optional features its Info reports enabled, a pipeline cache and a
// command pool for transfers.
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
	h, err := createDevice(in, p, idx, fam)
	if err != nil {
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
	r := vk.CreatePipelineCache(h, pci, nil, &madeCache)
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

// deviceSetup is what createDevice enables on a device: its extensions
// (NUL-terminated names) and optional features.
type deviceSetup struct {
	extensions []string
	features   deviceFeatures
	chain      bool // features go in a Features2 chain (Vulkan 1.1+)
}

// setupFor chooses the extensions and features to enable on device idx of
// in: every optional feature that its Info reports.
func setupFor(in *instance, idx int) deviceSetup {
	info, exts := in.infos[idx], in.exts[idx]
	var s deviceSetup
	if hasName(exts, portabilitySub) {
		s.extensions = append(s.extensions, portabilitySub+nullTerminator)
	}
	s.features = deviceFeatures{Int64: info.Int64, Float64: info.Float64, WriteWithoutFormat: info.WriteWithoutFormat}
	if in.version < Version11 || info.APIVersion < Version11 {
		return s
	}
	s.chain = true
	s.features.Storage16 = info.Storage16
	haveF16 := info.APIVersion >= Version12
	if !haveF16 && info.Float16 && hasName(exts, float16Int8Ext) {
		s.extensions = append(s.extensions, float16Int8Ext+nullTerminator)
		haveF16 = true
	}
	s.features.Float16Chain = haveF16
	s.features.Float16 = info.Float16 && haveF16
	if len(info.CoopMatrix) > 0 {
		s.features.CoopMatrix = true
		s.extensions = append(s.extensions, coopMatrixExt+nullTerminator)
		if info.APIVersion < Version12 {
			s.extensions = append(s.extensions, memoryModelExt+nullTerminator)
		}
	}
	if info.RequiredSubgroupSize || info.FullSubgroups {
		s.features.SubgroupSizeControl = info.RequiredSubgroupSize
		s.features.FullSubgroups = info.FullSubgroups
		if min(in.version, info.APIVersion) < Version13 {
			s.extensions = append(s.extensions, subgroupSizeExt+nullTerminator)
		}
	}
	return s
}

// createDevice creates the logical device of physical device p (index idx
// of in) with one queue of family fam.
func createDevice(in *instance, p vk.PhysicalDevice, idx int, fam uint32) (vk.Device, error) {
	s := setupFor(in, idx)
	qci := []vk.DeviceQueueCreateInfo{{
		SType:            vk.StructureTypeDeviceQueueCreateInfo,
		QueueFamilyIndex: fam,
		QueueCount:       1,
		PQueuePriorities: []float32{1},
	}}
	ci := &vk.DeviceCreateInfo{
		SType:                   vk.StructureTypeDeviceCreateInfo,
		QueueCreateInfoCount:    1,
		PQueueCreateInfos:       qci,
		EnabledExtensionCount:   uint32(len(s.extensions)),
		PpEnabledExtensionNames: s.extensions,
	}
	var free func()
	if s.chain {
		chain, f, err := featureChain(s.features)
		if err != nil {
			return nil, err
		}
		ci.PNext, free = chain, f
	} else if f := s.features; f.Int64 || f.Float64 || f.WriteWithoutFormat {
		// Without a Features2 chain the core features go here instead.
		var core vk.PhysicalDeviceFeatures
		if f.Int64 {
			core.ShaderInt64 = vk.True
		}
		if f.Float64 {
			core.ShaderFloat64 = vk.True
		}
		if f.WriteWithoutFormat {
			core.ShaderStorageImageWriteWithoutFormat = vk.True
		}
		ci.PEnabledFeatures = []vk.PhysicalDeviceFeatures{core}
	}
	var h vk.Device
	r := vk.CreateDevice(p, ci, nil, &h)
	ci.Free()
	if free != nil {
		free()
	}
	if err := check("vkCreateDevice", r); err != nil {
		return nil, err
	}
	return h, nil
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

// Close waits for the device's work to finish and destroys the device.
// Buffers, kernels and sequences made from it must not be used afterwards.
// Each piece of work in flight is waited for until the wait limit from
// its submission at most (Options.WaitTimeout); objects that closed
// sequences and timed-out copies left behind are freed once their work
// has finished. When some work is stuck (still unfinished at its limit),
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
