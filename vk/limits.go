package vk

import (
	"encoding/binary"
	"fmt"
)

// The smallest limits that the Vulkan specification lets a device report
// (its "Required Limits" table), for the limits the kernels depend on.
const (
	SpecMinSharedMemory      = 16384   // maxComputeSharedMemorySize
	SpecMinWorkgroup         = 128     // maxComputeWorkGroupInvocations
	SpecMinWorkgroupSizeX    = 128     // maxComputeWorkGroupSize[0] (and [1])
	SpecMinWorkgroupSizeZ    = 64      // maxComputeWorkGroupSize[2]
	SpecMinGroupCount        = 65535   // maxComputeWorkGroupCount[i]
	SpecMinStorageRange      = 1 << 27 // maxStorageBufferRange: 128 MiB
	SpecMinTexelElements     = 65536   // maxTexelBufferElements
	SpecMaxOffsetAlignment   = 256     // min{Storage,Texel}BufferOffsetAlignment, at most
	SpecMinPushConstantBytes = 128     // maxPushConstantsSize
)

// clampToSpecMinimum lowers the limits in info to the specification's
// minimums (and raises the offset alignments to their largest allowed
// value), so that everything built on the device keeps within what every
// conforming device offers (Options.SpecMinimum). The device itself is
// unchanged: work within the lowered limits is valid on it.
func (info *Info) clampToSpecMinimum() {
	info.SharedMemory = min(info.SharedMemory, SpecMinSharedMemory)
	info.MaxWorkgroup = min(info.MaxWorkgroup, SpecMinWorkgroup)
	info.MaxWorkgroupSize = [3]uint32{
		min(info.MaxWorkgroupSize[0], SpecMinWorkgroupSizeX),
		min(info.MaxWorkgroupSize[1], SpecMinWorkgroupSizeX),
		min(info.MaxWorkgroupSize[2], SpecMinWorkgroupSizeZ),
	}
	for i := range info.MaxGroupCount {
		info.MaxGroupCount[i] = min(info.MaxGroupCount[i], SpecMinGroupCount)
	}
	info.MaxStorageBufferRange = min(info.MaxStorageBufferRange, SpecMinStorageRange)
	info.MaxTexelBufferElements = min(info.MaxTexelBufferElements, SpecMinTexelElements)
	info.MinStorageBufferOffsetAlignment = max(info.MinStorageBufferOffsetAlignment, SpecMaxOffsetAlignment)
	info.MinTexelBufferOffsetAlignment = max(info.MinTexelBufferOffsetAlignment, SpecMaxOffsetAlignment)
	info.MaxPushConstants = min(info.MaxPushConstants, SpecMinPushConstantBytes)
}

// checkWorkgroup returns the workgroup size that code declares, with the
// specialization constants spec, and fails when it exceeds the device's
// limits (Info's, so the spec minimums under Options.SpecMinimum): the
// validation layer would report it, and a driver may do anything with it.
func (d *Device) checkWorkgroup(name string, code []byte, spec []uint32) ([3]uint32, error) {
	size, err := workgroupSize(code, spec)
	if err != nil {
		return size, fmt.Errorf("vk: kernel %s: %w", name, err)
	}
	total := uint64(size[0]) * uint64(size[1]) * uint64(size[2])
	if total > uint64(d.info.MaxWorkgroup) {
		return size, fmt.Errorf("vk: kernel %s: a workgroup of %dx%dx%d invocations exceeds the device's %d", name, size[0], size[1], size[2], d.info.MaxWorkgroup)
	}
	for i, n := range size {
		if lim := d.info.MaxWorkgroupSize[i]; lim > 0 && n > lim {
			return size, fmt.Errorf("vk: kernel %s: a workgroup of %dx%dx%d exceeds the device's size limit %v", name, size[0], size[1], size[2], d.info.MaxWorkgroupSize)
		}
	}
	return size, nil
}

// SPIR-V opcodes, decorations and enumerants that workgroupSize reads.
const (
	spvMagic               = 0x07230203
	spvOpExecutionMode     = 16
	spvOpConstant          = 43
	spvOpSpecConstant      = 50
	spvOpSpecComposite     = 51
	spvOpConstantComposite = 44
	spvOpDecorate          = 71
	spvOpExecutionModeID   = 331
	spvModeLocalSize       = 17
	spvModeLocalSizeID     = 38
	spvDecoSpecID          = 1
	spvDecoBuiltIn         = 11
	spvBuiltInWGSize       = 25
)

// workgroupSize reads the workgroup size of a compute shader's SPIR-V:
// the WorkgroupSize built-in when one is declared, else the LocalSizeId or
// LocalSize execution mode, with specialization constant i taking spec[i]
// (constant_id i) where given and its default otherwise. It reads only the
// instructions it needs; the driver validates the rest.
func workgroupSize(code []byte, spec []uint32) ([3]uint32, error) {
	var size [3]uint32
	if len(code) < 20 || len(code)%4 != 0 || binary.LittleEndian.Uint32(code) != spvMagic {
		return size, fmt.Errorf("not little-endian SPIR-V")
	}
	words := make([]uint32, len(code)/4)
	for i := range words {
		words[i] = binary.LittleEndian.Uint32(code[4*i:])
	}
	specID := map[uint32]uint32{}  // result id -> SpecId
	value := map[uint32]uint32{}   // result id -> scalar value (default)
	parts := map[uint32][]uint32{} // composite id -> constituents
	var builtin uint32             // id decorated WorkgroupSize
	var literal, ids []uint32
	for i := 5; i < len(words); {
		n := int(words[i] >> 16)
		if n == 0 || i+n > len(words) {
			return size, fmt.Errorf("malformed SPIR-V at word %d", i)
		}
		op, args := words[i]&0xffff, words[i+1:i+n]
		switch {
		case op == spvOpDecorate && len(args) >= 3 && args[1] == spvDecoSpecID:
			specID[args[0]] = args[2]
		case op == spvOpDecorate && len(args) >= 3 && args[1] == spvDecoBuiltIn && args[2] == spvBuiltInWGSize:
			builtin = args[0]
		case (op == spvOpConstant || op == spvOpSpecConstant) && len(args) >= 3:
			value[args[1]] = args[2]
		case (op == spvOpSpecComposite || op == spvOpConstantComposite) && len(args) >= 2:
			parts[args[1]] = args[2:]
		case op == spvOpExecutionMode && len(args) >= 5 && args[1] == spvModeLocalSize:
			literal = args[2:5]
		case op == spvOpExecutionModeID && len(args) >= 5 && args[1] == spvModeLocalSizeID:
			ids = args[2:5]
		}
		i += n
	}
	resolve := func(id uint32) (uint32, error) {
		if s, ok := specID[id]; ok && int(s) < len(spec) {
			return spec[s], nil
		}
		v, ok := value[id]
		if !ok {
			return 0, fmt.Errorf("workgroup size refers to id %d, which is not a 32-bit constant", id)
		}
		return v, nil
	}
	if builtin != 0 {
		ids = parts[builtin]
		if len(ids) != 3 {
			return size, fmt.Errorf("the WorkgroupSize built-in %d is not a constant of three parts", builtin)
		}
	}
	switch {
	case ids != nil:
		for i, id := range ids {
			v, err := resolve(id)
			if err != nil {
				return size, err
			}
			size[i] = v
		}
	case literal != nil:
		copy(size[:], literal)
	default:
		return size, fmt.Errorf("no workgroup size declared")
	}
	if size[0] == 0 || size[1] == 0 || size[2] == 0 {
		return size, fmt.Errorf("workgroup size %v has a zero dimension", size)
	}
	return size, nil
}
