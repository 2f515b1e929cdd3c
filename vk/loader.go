package vk

/*
#cgo linux LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// The few Vulkan 1.1+ entry points and structures that the vulkan-go bindings
// (a Vulkan 1.0 wrapper) lack are declared here by hand. Only the leading
// fields that isab-vk reads are spelled out; each structure is followed by
// enough padding for the driver to write the rest.

typedef void* (*isabGIPA)(void* instance, const char* name);

static void* isabLib;
static isabGIPA isabGetInstanceProcAddr;

static int isabOpenVulkan(const char* name) {
	if (isabGetInstanceProcAddr != NULL) return 0;
	void* lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) return -1;
	isabGIPA gipa = (isabGIPA)dlsym(lib, "vkGetInstanceProcAddr");
	if (gipa == NULL) { dlclose(lib); return -2; }
	isabLib = lib;
	isabGetInstanceProcAddr = gipa;
	return 0;
}

static const char* isabDlError(void) {
	const char* e = dlerror();
	return e ? e : "";
}

static void* isabGIPAPointer(void) { return (void*)isabGetInstanceProcAddr; }

static uint32_t isabInstanceVersion(void) {
	typedef int32_t (*fn)(uint32_t*);
	fn f = (fn)isabGetInstanceProcAddr(NULL, "vkEnumerateInstanceVersion");
	uint32_t v = (1u << 22); // 1.0
	if (f != NULL) f(&v);
	return v;
}

typedef struct { int32_t sType; void* pNext; } isabHeader;

typedef struct {
	int32_t sType; void* pNext;
	uint32_t subgroupSize, supportedStages, supportedOperations, quadOperationsInAllStages;
} isabSubgroupProps;

typedef struct {
	int32_t sType; void* pNext;
	uint32_t driverID; char driverName[256]; char driverInfo[256]; uint8_t conformance[4];
} isabDriverProps;

typedef struct {
	int32_t sType; void* pNext;
	uint8_t properties[2048];
} isabProps2;

typedef struct {
	int32_t sType; void* pNext;
	uint32_t storageBuffer16BitAccess, uniformAndStorageBuffer16BitAccess, storagePushConstant16, storageInputOutput16;
} isab16BitStorage;

typedef struct {
	int32_t sType; void* pNext;
	uint32_t shaderFloat16, shaderInt8;
} isabFloat16Int8;

typedef struct {
	int32_t sType; void* pNext;
	uint32_t features[64];
} isabFeatures2;

typedef struct {
	int32_t sType; void* pNext;
	uint32_t M, N, K, A, B, C, Result, saturating, scope;
} isabCoopMatProps;

typedef struct {
	int32_t sType; void* pNext;
	uint32_t cooperativeMatrix, cooperativeMatrixRobustBufferAccess;
} isabCoopMatFeatures;

typedef struct {
	int32_t sType; void* pNext;
	uint32_t vulkanMemoryModel, vulkanMemoryModelDeviceScope, vulkanMemoryModelAvailabilityVisibilityChains;
} isabMemoryModelFeatures;

// VkPhysicalDeviceSubgroupSizeControlProperties and Features (Vulkan 1.3,
// VK_EXT_subgroup_size_control).
typedef struct {
	int32_t sType; void* pNext;
	uint32_t minSubgroupSize, maxSubgroupSize, maxComputeWorkgroupSubgroups, requiredSubgroupSizeStages;
} isabSizeControlProps;

typedef struct {
	int32_t sType; void* pNext;
	uint32_t subgroupSizeControl, computeFullSubgroups;
} isabSizeControlFeatures;

#define ISAB_STYPE_PROPS2 1000059001
#define ISAB_STYPE_FEATURES2 1000059000
#define ISAB_STYPE_SUBGROUP 1000094000
#define ISAB_STYPE_DRIVER 1000196000
#define ISAB_STYPE_16BIT 1000083000
#define ISAB_STYPE_F16I8 1000082000
#define ISAB_STYPE_COOPMAT 1000506001
#define ISAB_STYPE_COOPMAT_FEATURES 1000506000
#define ISAB_STYPE_MEMORY_MODEL 1000211000
#define ISAB_STYPE_SIZE_CONTROL_PROPS 1000225000
#define ISAB_STYPE_SIZE_CONTROL_FEATURES 1000225002

typedef struct {
	uint32_t subgroupSize, subgroupStages, subgroupOps;
	uint32_t driverID;
	char driverName[256];
	char driverInfo[256];
	uint32_t storage16, float16, coopMatrix, memoryModel;
	uint32_t minSubgroupSize, maxSubgroupSize, maxWorkgroupSubgroups, requiredSizeStages;
	uint32_t sizeControl, fullSubgroups;
} isabExtInfo;

// isabExtQuery says which structures may be chained to the queries: the
// driver properties, the float16/int8 features, the cooperative-matrix
// and memory-model features, the subgroup size control properties and
// features.
typedef struct { int driver, float16, coop, memoryModel, sizeControl; } isabExtQuery;

// isabQueryExt fills info from vkGetPhysicalDeviceProperties2/Features2
// with the structures q allows chained.
static int isabQueryExt(void* instance, void* phys, const isabExtQuery* q, isabExtInfo* info) {
	int haveDriver = q->driver, haveF16 = q->float16, haveCoop = q->coop, haveMM = q->memoryModel;
	typedef void (*propsFn)(void*, void*);
	propsFn props = (propsFn)isabGetInstanceProcAddr(instance, "vkGetPhysicalDeviceProperties2");
	propsFn feats = (propsFn)isabGetInstanceProcAddr(instance, "vkGetPhysicalDeviceFeatures2");
	if (props == NULL || feats == NULL) return -1;
	isabSubgroupProps sg; memset(&sg, 0, sizeof sg); sg.sType = ISAB_STYPE_SUBGROUP;
	isabDriverProps dr; memset(&dr, 0, sizeof dr); dr.sType = ISAB_STYPE_DRIVER;
	isabSizeControlProps sc; memset(&sc, 0, sizeof sc); sc.sType = ISAB_STYPE_SIZE_CONTROL_PROPS;
	isabProps2 p2; memset(&p2, 0, sizeof p2); p2.sType = ISAB_STYPE_PROPS2; p2.pNext = &sg;
	isabHeader* ptail = (isabHeader*)&sg;
	if (haveDriver) { ptail->pNext = &dr; ptail = (isabHeader*)&dr; }
	if (q->sizeControl) { ptail->pNext = &sc; ptail = (isabHeader*)&sc; }
	props(phys, &p2);
	info->minSubgroupSize = sc.minSubgroupSize;
	info->maxSubgroupSize = sc.maxSubgroupSize;
	info->maxWorkgroupSubgroups = sc.maxComputeWorkgroupSubgroups;
	info->requiredSizeStages = sc.requiredSubgroupSizeStages;
	info->subgroupSize = sg.subgroupSize;
	info->subgroupStages = sg.supportedStages;
	info->subgroupOps = sg.supportedOperations;
	if (haveDriver) {
		info->driverID = dr.driverID;
		memcpy(info->driverName, dr.driverName, 256); info->driverName[255] = 0;
		memcpy(info->driverInfo, dr.driverInfo, 256); info->driverInfo[255] = 0;
	}
	isab16BitStorage s16; memset(&s16, 0, sizeof s16); s16.sType = ISAB_STYPE_16BIT;
	isabFloat16Int8 f16; memset(&f16, 0, sizeof f16); f16.sType = ISAB_STYPE_F16I8;
	isabCoopMatFeatures cm; memset(&cm, 0, sizeof cm); cm.sType = ISAB_STYPE_COOPMAT_FEATURES;
	isabMemoryModelFeatures mm; memset(&mm, 0, sizeof mm); mm.sType = ISAB_STYPE_MEMORY_MODEL;
	isabSizeControlFeatures scf; memset(&scf, 0, sizeof scf); scf.sType = ISAB_STYPE_SIZE_CONTROL_FEATURES;
	isabFeatures2 f2; memset(&f2, 0, sizeof f2); f2.sType = ISAB_STYPE_FEATURES2; f2.pNext = &s16;
	isabHeader* tail = (isabHeader*)&s16;
	if (haveF16) { tail->pNext = &f16; tail = (isabHeader*)&f16; }
	if (haveCoop) { tail->pNext = &cm; tail = (isabHeader*)&cm; }
	if (haveMM) { tail->pNext = &mm; tail = (isabHeader*)&mm; }
	if (q->sizeControl) { tail->pNext = &scf; tail = (isabHeader*)&scf; }
	feats(phys, &f2);
	info->sizeControl = scf.subgroupSizeControl;
	info->fullSubgroups = scf.computeFullSubgroups;
	info->storage16 = s16.storageBuffer16BitAccess;
	info->float16 = f16.shaderFloat16;
	info->coopMatrix = cm.cooperativeMatrix;
	info->memoryModel = mm.vulkanMemoryModel;
	return 0;
}

// isabCoopMatrix lists up to max cooperative-matrix shapes into out (9 words
// each: M N K A B C Result saturating scope). It returns the count, or -1.
static int isabCoopMatrix(void* instance, void* phys, uint32_t* out, int max) {
	typedef int32_t (*fn)(void*, uint32_t*, isabCoopMatProps*);
	fn f = (fn)isabGetInstanceProcAddr(instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
	if (f == NULL) return -1;
	uint32_t n = 0;
	if (f(phys, &n, NULL) != 0) return -1;
	if (n > (uint32_t)max) n = (uint32_t)max;
	isabCoopMatProps* p = (isabCoopMatProps*)calloc(n ? n : 1, sizeof *p);
	if (p == NULL) return -1;
	for (uint32_t i = 0; i < n; i++) p[i].sType = ISAB_STYPE_COOPMAT;
	int32_t r = f(phys, &n, p);
	if (r < 0) { free(p); return -1; }
	for (uint32_t i = 0; i < n; i++) {
		uint32_t* o = out + 9 * i;
		o[0] = p[i].M; o[1] = p[i].N; o[2] = p[i].K; o[3] = p[i].A; o[4] = p[i].B;
		o[5] = p[i].C; o[6] = p[i].Result; o[7] = p[i].saturating; o[8] = p[i].scope;
	}
	free(p);
	return (int)n;
}

// Indices of shaderFloat64, shaderInt64 and shaderStorageImageWriteWithoutFormat
// in VkPhysicalDeviceFeatures.
#define ISAB_FEATURE_FLOAT64 39
#define ISAB_FEATURE_INT64 40
#define ISAB_FEATURE_WRITE_NO_FORMAT 32

// isabFeatureRequest lists the optional features to enable at device
// creation (see deviceFeatures in Go). float16Chain says whether the
// float16/int8 features structure may be chained at all.
typedef struct {
	int storage16, float16, float16Chain, int64, float64, writeNoFormat, coop;
	int sizeControl, fullSubgroups;
} isabFeatureRequest;

// isabFeatureChain builds, in C memory, the pNext chain that enables what
// r asks at device creation. Free it with isabFreeChain. It returns NULL
// when out of memory.
static void* isabFeatureChain(const isabFeatureRequest* r) {
	isabFeatures2* f2 = (isabFeatures2*)calloc(1, sizeof *f2);
	isab16BitStorage* s16 = (isab16BitStorage*)calloc(1, sizeof *s16);
	isabFloat16Int8* f16 = (isabFloat16Int8*)calloc(1, sizeof *f16);
	isabCoopMatFeatures* cm = (isabCoopMatFeatures*)calloc(1, sizeof *cm);
	isabMemoryModelFeatures* mm = (isabMemoryModelFeatures*)calloc(1, sizeof *mm);
	isabSizeControlFeatures* sc = (isabSizeControlFeatures*)calloc(1, sizeof *sc);
	if (!f2 || !s16 || !f16 || !cm || !mm || !sc) { free(f2); free(s16); free(f16); free(cm); free(mm); free(sc); return NULL; }
	f2->sType = ISAB_STYPE_FEATURES2; f2->pNext = s16;
	f2->features[ISAB_FEATURE_FLOAT64] = r->float64 ? 1 : 0;
	f2->features[ISAB_FEATURE_INT64] = r->int64 ? 1 : 0;
	f2->features[ISAB_FEATURE_WRITE_NO_FORMAT] = r->writeNoFormat ? 1 : 0;
	s16->sType = ISAB_STYPE_16BIT; s16->storageBuffer16BitAccess = r->storage16 ? 1 : 0;
	f16->sType = ISAB_STYPE_F16I8; f16->shaderFloat16 = r->float16 ? 1 : 0;
	cm->sType = ISAB_STYPE_COOPMAT_FEATURES; cm->cooperativeMatrix = 1;
	mm->sType = ISAB_STYPE_MEMORY_MODEL; mm->vulkanMemoryModel = 1;
	sc->sType = ISAB_STYPE_SIZE_CONTROL_FEATURES;
	sc->subgroupSizeControl = r->sizeControl ? 1 : 0;
	sc->computeFullSubgroups = r->fullSubgroups ? 1 : 0;
	isabHeader* tail = (isabHeader*)s16;
	if (r->float16Chain) { tail->pNext = f16; tail = (isabHeader*)f16; } else free(f16);
	if (r->coop) { tail->pNext = cm; cm->pNext = mm; tail = (isabHeader*)mm; } else { free(cm); free(mm); }
	if (r->sizeControl || r->fullSubgroups) { tail->pNext = sc; tail = (isabHeader*)sc; } else free(sc);
	return f2;
}

static void isabFreeChain(void* p) {
	isabHeader* h = (isabHeader*)p;
	while (h != NULL) { isabHeader* next = (isabHeader*)h->pNext; free(h); h = next; }
}

// Debug messenger (VK_EXT_debug_utils), used with the validation layer.

typedef struct {
	int32_t sType; const void* pNext; uint32_t flags;
	const char* pMessageIdName; int32_t messageIdNumber; const char* pMessage;
} isabDebugData;

extern void isabGoDebugMessage(uint32_t severity, char* id, char* msg);

static uint32_t isabDebugCallback(uint32_t severity, uint32_t types, const isabDebugData* data, void* user) {
	isabGoDebugMessage(severity, (char*)(data->pMessageIdName ? data->pMessageIdName : ""),
		(char*)(data->pMessage ? data->pMessage : ""));
	return 0;
}

typedef struct {
	int32_t sType; const void* pNext; uint32_t flags;
	uint32_t messageSeverity, messageType;
	void* pfnUserCallback; void* pUserData;
} isabMessengerInfo;

static int32_t isabCreateMessenger(void* instance, uint64_t* out) {
	typedef int32_t (*fn)(void*, const isabMessengerInfo*, const void*, uint64_t*);
	fn f = (fn)isabGetInstanceProcAddr(instance, "vkCreateDebugUtilsMessengerEXT");
	if (f == NULL) return -7; // VK_ERROR_EXTENSION_NOT_PRESENT
	isabMessengerInfo ci; memset(&ci, 0, sizeof ci);
	ci.sType = 1000128004;
	ci.messageSeverity = 0x100 | 0x1000; // warning | error
	ci.messageType = 0x1 | 0x2 | 0x4;    // general | validation | performance
	ci.pfnUserCallback = (void*)isabDebugCallback;
	return f(instance, &ci, NULL, out);
}

static void isabDestroyMessenger(void* instance, uint64_t m) {
	typedef void (*fn)(void*, uint64_t, const void*);
	fn f = (fn)isabGetInstanceProcAddr(instance, "vkDestroyDebugUtilsMessengerEXT");
	if (f != NULL) f(instance, m, NULL);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// libraryNames lists the Vulkan loader's file name per operating system.
func libraryNames() []string {
	switch runtime.GOOS {
	case "darwin":
		return []string{"libvulkan.1.dylib", "libMoltenVK.dylib"}
	case "windows":
		return []string{"vulkan-1.dll"}
	default:
		return []string{"libvulkan.so.1", "libvulkan.so"}
	}
}

var (
	loadOnce sync.Once
	loadErr  error
)

// load opens the Vulkan loader library and hands its vkGetInstanceProcAddr
// to the bindings. The bindings' own default loader opens libvulkan.so, which
// only the -dev package installs, so isab-vk does this itself.
func load() error {
	loadOnce.Do(func() {
		markLoaderStarted()
		var errs []string
		for _, name := range libraryNames() {
			cname := C.CString(name)
			r := C.isabOpenVulkan(cname)
			C.free(unsafe.Pointer(cname))
			if r == 0 {
				vk.SetGetInstanceProcAddr(C.isabGIPAPointer())
				if err := vk.Init(); err != nil {
					loadErr = fmt.Errorf("vk: initialising the Vulkan loader %s: %w", name, err)
				}
				return
			}
			errs = append(errs, fmt.Sprintf("%s: %s", name, C.GoString(C.isabDlError())))
		}
		loadErr = noVulkan{fmt.Errorf("vk: cannot load the Vulkan loader (install libvulkan1 and a driver such as mesa-vulkan-drivers): %v", errs)}
	})
	return loadErr
}

// driverFileVars are the loader's variables that name the driver manifests
// (ICD JSON files) to load instead of the installed ones.
var driverFileVars = []string{"VK_DRIVER_FILES", "VK_ICD_FILENAMES"}

// instanceError is vkCreateInstance's error for r, or nil on success. When
// the loader found no driver it could load (VK_ERROR_INCOMPATIBLE_DRIVER) it
// says what to check, on the same line.
func instanceError(r vk.Result) error {
	err := check("vkCreateInstance", r)
	if r != vk.ErrorIncompatibleDriver {
		return err
	}
	var set []string
	for _, name := range driverFileVars {
		if v, ok := os.LookupEnv(name); ok {
			set = append(set, fmt.Sprintf("%s=%q", name, v))
		}
	}
	if len(set) > 0 {
		return noVulkan{fmt.Errorf("%w: no Vulkan driver (ICD) could be loaded; check %s (the driver manifests to load)", err, strings.Join(set, " and "))}
	}
	return noVulkan{fmt.Errorf("%w: no Vulkan driver (ICD) could be loaded; install mesa-vulkan-drivers (lavapipe, on the CPU) or a GPU's Vulkan driver", err)}
}

// ErrNoVulkan is matched (errors.Is) by Open's error when this machine has
// no usable Vulkan: the loader cannot be loaded, it finds no driver, or the
// drivers list no device. Tests skip on it; programs can suggest a fix.
var ErrNoVulkan = errors.New("vk: no usable Vulkan")

// noVulkan marks an error as ErrNoVulkan without changing its message.
type noVulkan struct{ error }

func (e noVulkan) Is(target error) bool { return target == ErrNoVulkan }
func (e noVulkan) Unwrap() error        { return e.error }

// VkShaderStageFlagBits' compute bit and VkSubgroupFeatureFlagBits' quad bit.
const (
	computeStageBit = 0x20
	subgroupQuadBit = 0x80
)

// extInfo is what the Vulkan 1.1+ queries report about a physical device.
type extInfo struct {
	subgroupSize uint32
	subgroupQuad bool // quad operations in compute shaders
	driverID     uint32
	driverName   string
	driverInfo   string
	storage16    bool
	float16      bool
	coopMatrix   bool // the cooperativeMatrix feature
	memoryModel  bool // vulkanMemoryModel
	// From the subgroup size control properties and features (only when
	// asked for with extQuery.sizeControl).
	sizeControl                      bool // the structures were queried
	minSubgroupSize, maxSubgroupSize uint32
	maxWorkgroupSubgroups            uint32
	requiredSizeCompute              bool // subgroupSizeControl, for the compute stage
	fullSubgroups                    bool // computeFullSubgroups
}

// extQuery says which structures queryExt may chain: those of the Vulkan
// version or extensions that the device has.
type extQuery struct {
	driver      bool // VkPhysicalDeviceDriverProperties
	float16     bool // VkPhysicalDeviceShaderFloat16Int8Features
	coop        bool // VkPhysicalDeviceCooperativeMatrixFeaturesKHR
	memoryModel bool // VkPhysicalDeviceVulkanMemoryModelFeatures
	sizeControl bool // VkPhysicalDeviceSubgroupSizeControlProperties and Features
}

func queryExt(inst vk.Instance, phys vk.PhysicalDevice, q extQuery) (extInfo, bool) {
	var ci C.isabExtInfo
	cq := C.isabExtQuery{driver: cbool(q.driver), float16: cbool(q.float16), coop: cbool(q.coop),
		memoryModel: cbool(q.memoryModel), sizeControl: cbool(q.sizeControl)}
	if C.isabQueryExt(unsafe.Pointer(inst), unsafe.Pointer(phys), &cq, &ci) != 0 {
		return extInfo{}, false
	}
	e := extInfo{
		subgroupSize: uint32(ci.subgroupSize),
		subgroupQuad: ci.subgroupStages&computeStageBit != 0 && ci.subgroupOps&subgroupQuadBit != 0,
		driverID:     uint32(ci.driverID),
		driverName:   C.GoString(&ci.driverName[0]),
		driverInfo:   C.GoString(&ci.driverInfo[0]),
		storage16:    ci.storage16 != 0,
		float16:      ci.float16 != 0,
		coopMatrix:   ci.coopMatrix != 0,
		memoryModel:  ci.memoryModel != 0,
	}
	if q.sizeControl && ci.minSubgroupSize > 0 && ci.minSubgroupSize <= ci.maxSubgroupSize {
		e.sizeControl = true
		e.minSubgroupSize, e.maxSubgroupSize = uint32(ci.minSubgroupSize), uint32(ci.maxSubgroupSize)
		e.maxWorkgroupSubgroups = uint32(ci.maxWorkgroupSubgroups)
		e.requiredSizeCompute = ci.sizeControl != 0 && ci.requiredSizeStages&computeStageBit != 0
		e.fullSubgroups = ci.fullSubgroups != 0
	}
	return e, true
}

func queryCoopMatrix(inst vk.Instance, phys vk.PhysicalDevice) []CoopMatrixShape {
	const max = 64
	buf := (*[max * 9]C.uint32_t)(C.calloc(max*9, 4))
	defer C.free(unsafe.Pointer(buf))
	n := int(C.isabCoopMatrix(unsafe.Pointer(inst), unsafe.Pointer(phys), &buf[0], max))
	var shapes []CoopMatrixShape
	for i := 0; i < n; i++ {
		o := buf[9*i : 9*i+9]
		shapes = append(shapes, CoopMatrixShape{
			M: uint32(o[0]), N: uint32(o[1]), K: uint32(o[2]),
			A: componentName(uint32(o[3])), B: componentName(uint32(o[4])),
			C: componentName(uint32(o[5])), Result: componentName(uint32(o[6])),
			Subgroup: uint32(o[8]) == 3,
		})
	}
	return shapes
}

func componentName(t uint32) string {
	names := []string{"f16", "f32", "f64", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64"}
	if int(t) < len(names) {
		return names[t]
	}
	if t == 1000141000 {
		return "bf16"
	}
	return fmt.Sprintf("type%d", t)
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func instanceVersion() Version { return Version(C.isabInstanceVersion()) }

// gipaPointer is the loader's vkGetInstanceProcAddr.
func gipaPointer() unsafe.Pointer { return C.isabGIPAPointer() }

// deviceFeatures are the optional features that device creation enables
// (Vulkan 1.1+, through a Features2 chain; without one only Int64,
// Float64 and WriteWithoutFormat, in the core features).
type deviceFeatures struct {
	Storage16          bool // storageBuffer16BitAccess
	Float16            bool // shaderFloat16
	Float16Chain       bool // the float16/int8 structure may be chained (Vulkan 1.2 or VK_KHR_shader_float16_int8)
	Int64              bool // shaderInt64
	Float64            bool // shaderFloat64
	WriteWithoutFormat bool // shaderStorageImageWriteWithoutFormat
	CoopMatrix         bool // cooperativeMatrix and vulkanMemoryModel
	// SubgroupSizeControl and FullSubgroups are subgroupSizeControl and
	// computeFullSubgroups (Vulkan 1.3 or VK_EXT_subgroup_size_control).
	SubgroupSizeControl bool
	FullSubgroups       bool
}

// featureChain returns a C-allocated pNext chain enabling f at device
// creation, and the function that frees it.
func featureChain(f deviceFeatures) (unsafe.Pointer, func(), error) {
	r := C.isabFeatureRequest{
		storage16: cbool(f.Storage16), float16: cbool(f.Float16), float16Chain: cbool(f.Float16Chain),
		int64: cbool(f.Int64), float64: cbool(f.Float64), writeNoFormat: cbool(f.WriteWithoutFormat),
		coop: cbool(f.CoopMatrix), sizeControl: cbool(f.SubgroupSizeControl), fullSubgroups: cbool(f.FullSubgroups),
	}
	p := C.isabFeatureChain(&r)
	if p == nil {
		return nil, nil, errors.New("vk: out of host memory building the device's feature chain")
	}
	return p, func() { C.isabFreeChain(p) }, nil
}

// The validation messages seen by the debug messenger, process-wide.
var (
	debugMu   sync.Mutex
	debugMsgs []string
)

// ValidationMessages returns and clears the warnings and errors that the
// Khronos validation layer reported since the last call. It is empty unless
// validation is on (Options.Validation or ISAB_VALIDATION=1).
func ValidationMessages() []string {
	debugMu.Lock()
	defer debugMu.Unlock()
	m := debugMsgs
	debugMsgs = nil
	return m
}

func createMessenger(inst vk.Instance) (uint64, error) {
	var m C.uint64_t
	if r := C.isabCreateMessenger(unsafe.Pointer(inst), &m); r != 0 {
		return 0, check("vkCreateDebugUtilsMessengerEXT", vk.Result(r))
	}
	return uint64(m), nil
}

func destroyMessenger(inst vk.Instance, m uint64) {
	C.isabDestroyMessenger(unsafe.Pointer(inst), C.uint64_t(m))
}
