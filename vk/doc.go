// Package vk is isab-vk's Vulkan host layer: the only package in the module
// that calls Vulkan (through github.com/vulkan-go/vulkan and a little C of
// its own). It knows no kernel and no model; ops records kernels with it,
// and the models chain ops.
//
// It has a few nouns, each owning its Vulkan objects and freed by its
// Close or Free method:
//
//   - Device: a physical device opened for compute (Open, Options), with
//     one compute queue, its pools and pipeline cache. Info describes it:
//     name, vendor, driver, type, API version, subgroup size, limits, fp16
//     and 16-bit storage, cooperative-matrix shapes. Devices lists every
//     device without opening one.
//   - Buffer: device memory that shaders read and write, with typed
//     Upload, Download and BufferFrom helpers that stage through host
//     memory where the device memory is not host-visible.
//   - Kernel: one compute pipeline from SPIR-V, with its specialization
//     constants, bindings and push-constant size (KernelSpec), cached per
//     device. Its workgroup size, read from the SPIR-V, is checked against
//     the device's limits.
//   - Sequence: a command buffer of dispatches. Each dispatch names the
//     buffers it reads and writes (Binding), and the sequence inserts a
//     barrier only where a dispatch depends on an earlier one. Run submits
//     and waits, bounded by Options.WaitTimeout; a recorded sequence can be
//     run again for the next call of the same shapes.
//   - Presenter: a swapchain on a window surface that the caller creates,
//     for the viewer; vk links no window system.
//
// # Rules the package keeps
//
// The Vulkan library is loaded with dlopen (libvulkan.so.1), so programs
// need only the loader, not its -dev package; a machine without it gets
// ErrNoVulkan. The instance is process-wide and reference-counted across
// Devices. Every VkResult becomes a Go error that names the call and the
// result (ErrOutOfMemory, ErrDeviceLost and ErrWaitTimeout can be matched
// with errors.Is). Sizes are multiplied and added with overflow checks.
//
// cgo forbids Go pointers inside memory passed to C, and vulkan-go copies
// slices of structures into C memory that the garbage collector may free
// during the call: so structure arrays and pNext chains are built in C
// memory (see calls.go), and a test fails when another package imports
// vulkan-go or when the module passes a structure array to it directly.
//
// Process-wide policy is the program's to choose: UseLavapipeDefaults
// (called by the isab command and the tests before the first device is
// opened) gives lavapipe 512-bit vectors on CPUs with AVX-512 and a shader
// cache per vector width; importing vk changes nothing.
//
// With Options.Validation (or ISAB_VALIDATION=1) the Khronos validation
// layer runs and its messages are collected (ValidationMessages); the
// project's tests fail on any message. Options.SpecMinimum makes Info
// report the smallest limits the Vulkan specification allows, so that the
// tests show the kernels' choices fit every conforming device.
package vk
