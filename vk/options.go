package vk

import "time"

// Options chooses and configures a device.
type Options struct {
	// Device selects the physical device: its index in Devices(), or a
	// case-insensitive substring of its name. Empty means the ISAB_DEVICE
	// environment variable, and when that is empty too, the first discrete
	// GPU, else integrated, else virtual, else CPU (lavapipe before other
	// CPU devices such as SwiftShader).
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
