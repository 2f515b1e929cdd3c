package vk

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	vk "github.com/vulkan-go/vulkan"
)

// instance is the process-wide Vulkan instance, shared by every Device.
type instance struct {
	handle     vk.Instance
	version    Version // the API version the instance was created for
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
	subgroupSizeExt  = "VK_EXT_subgroup_size_control"
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
	// The newest version whose features vk uses: asking for more would
	// promise to follow rules vk does not know.
	version := min(instanceVersion(), Version13)
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
		ApiVersion:       uint32(version),
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

// Devices lists every Vulkan device that the loader reports.
func Devices() ([]Info, error) {
	in, err := acquireInstance(false)
	if err != nil {
		return nil, err
	}
	defer releaseInstance()
	return append([]Info(nil), in.infos...), nil
}
