package vk

import (
	"fmt"

	vk "github.com/vulkan-go/vulkan"

	"github.com/isab-vk/isab-vk/internal/checked"
	"github.com/isab-vk/isab-vk/internal/sysmem"
)

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
	if d.info.Type == DeviceCPU {
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
