package window

/*
#include <stdint.h>

// glfwCreateWindowSurface as GLFW declares it, its Vulkan types spelled as
// what they are on 64-bit platforms (VkResult an int32_t, the handles
// pointers), so that this package includes no Vulkan header. GLFW itself is
// compiled and linked by github.com/go-gl/glfw.
extern int32_t glfwCreateWindowSurface(void* instance, void* window, const void* allocator, void** surface);
*/
import "C"

import (
	"unsafe"

	"github.com/go-gl/glfw/v3.3/glfw"

	"github.com/isab-vk/isab-vk/vk"
)

// windowSurface makes win's Vulkan surface. It calls GLFW's C function
// rather than go-gl's CreateWindowSurface, which returns the handle's
// address in Go memory as a uintptr, hidden from the garbage collector.
func windowSurface(win *glfw.Window) vk.SurfaceFunc {
	return func(instance unsafe.Pointer) (unsafe.Pointer, int32) {
		var s unsafe.Pointer
		r := C.glfwCreateWindowSurface(instance, win.Handle(), nil, &s)
		return s, int32(r)
	}
}
