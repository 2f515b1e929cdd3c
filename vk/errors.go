package vk

import (
	"errors"
	"fmt"

	vk "github.com/vulkan-go/vulkan"
)

// ErrOutOfMemory is wrapped by the errors of calls that ran out of device or
// host memory, so callers can tell "too large for this device" apart.
var ErrOutOfMemory = errors.New("out of memory")

// ErrDeviceLost is wrapped by the errors of calls that found the device
// lost (VK_ERROR_DEVICE_LOST: a driver reset, a hung or faulting kernel, a
// removed GPU), and by every later submission to that device, which fails
// at once instead of hanging. The device cannot run more work: close it
// and open it again.
var ErrDeviceLost = errors.New("the device was lost")

// ErrWaitTimeout is wrapped by the errors of waits that exceeded the
// device's wait limit (Options.WaitTimeout, WaitTimeoutEnv): the work named
// in the error did not finish in time and may still be running.
var ErrWaitTimeout = errors.New("wait limit exceeded")

// ResultError is a Vulkan call that did not return VK_SUCCESS.
type ResultError struct {
	Call   string    // the Vulkan function, e.g. "vkCreateBuffer"
	Result vk.Result // what it returned
}

// Error names the call and the result.
func (e *ResultError) Error() string {
	return fmt.Sprintf("vk: %s failed: %s (%d)", e.Call, resultName(e.Result), int32(e.Result))
}

// Unwrap lets errors.Is(err, ErrOutOfMemory) match memory exhaustion and
// errors.Is(err, ErrDeviceLost) a lost device.
func (e *ResultError) Unwrap() error {
	switch e.Result {
	case vk.ErrorOutOfDeviceMemory, vk.ErrorOutOfHostMemory:
		return ErrOutOfMemory
	case vk.ErrorDeviceLost:
		return ErrDeviceLost
	}
	return nil
}

// check turns a vk.Result into an error naming the call, or nil on success.
func check(call string, r vk.Result) error {
	if r == vk.Success {
		return nil
	}
	return &ResultError{Call: call, Result: r}
}

func resultName(r vk.Result) string {
	switch r {
	case vk.Success:
		return "VK_SUCCESS"
	case vk.NotReady:
		return "VK_NOT_READY"
	case vk.Timeout:
		return "VK_TIMEOUT"
	case vk.Incomplete:
		return "VK_INCOMPLETE"
	case vk.ErrorOutOfHostMemory:
		return "VK_ERROR_OUT_OF_HOST_MEMORY"
	case vk.ErrorOutOfDeviceMemory:
		return "VK_ERROR_OUT_OF_DEVICE_MEMORY"
	case vk.ErrorInitializationFailed:
		return "VK_ERROR_INITIALIZATION_FAILED"
	case vk.ErrorDeviceLost:
		return "VK_ERROR_DEVICE_LOST"
	case vk.ErrorMemoryMapFailed:
		return "VK_ERROR_MEMORY_MAP_FAILED"
	case vk.ErrorLayerNotPresent:
		return "VK_ERROR_LAYER_NOT_PRESENT"
	case vk.ErrorExtensionNotPresent:
		return "VK_ERROR_EXTENSION_NOT_PRESENT"
	case vk.ErrorFeatureNotPresent:
		return "VK_ERROR_FEATURE_NOT_PRESENT"
	case vk.ErrorIncompatibleDriver:
		return "VK_ERROR_INCOMPATIBLE_DRIVER"
	case vk.ErrorTooManyObjects:
		return "VK_ERROR_TOO_MANY_OBJECTS"
	case vk.ErrorFormatNotSupported:
		return "VK_ERROR_FORMAT_NOT_SUPPORTED"
	case vk.ErrorFragmentedPool:
		return "VK_ERROR_FRAGMENTED_POOL"
	case vk.Result(-1000069000):
		return "VK_ERROR_OUT_OF_POOL_MEMORY"
	case vk.Result(-13):
		return "VK_ERROR_UNKNOWN"
	case vk.Suboptimal:
		return "VK_SUBOPTIMAL_KHR"
	case vk.ErrorOutOfDate:
		return "VK_ERROR_OUT_OF_DATE_KHR"
	case vk.ErrorSurfaceLost:
		return "VK_ERROR_SURFACE_LOST_KHR"
	case vk.ErrorNativeWindowInUse:
		return "VK_ERROR_NATIVE_WINDOW_IN_USE_KHR"
	}
	return "unknown VkResult"
}
