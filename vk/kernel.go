package vk

import (
	"encoding/binary"
	"fmt"
	"strings"

	vk "github.com/vulkan-go/vulkan"
)

// KernelSpec describes a compute pipeline.
type KernelSpec struct {
	Name     string   // shader name, used in errors and as part of the cache key
	Code     []byte   // SPIR-V, entry point "main"
	Buffers  int      // buffers at bindings 0..Buffers-1 of set 0
	PushSize int      // bytes of push constants (a multiple of 4, may be 0)
	Spec     []uint32 // specialization constants: constant_id i takes Spec[i]
	// Texel marks the bindings that are uniform texel buffers of
	// four-float texels (R32G32B32A32_SFLOAT; GLSL textureBuffer read with
	// texelFetch, GL_EXT_samplerless_texture_functions: a samplerBuffer
	// declares a sampled image of Dim Buffer, which SPIR-V 1.6 forbids and
	// Mesa 25 warns about). Their ranges must be whole texels, start at a multiple
	// of Info.MinTexelBufferOffsetAlignment and hold at most
	// Info.MaxTexelBufferElements texels. On CPU rasterisers such as
	// lavapipe a texel fetch is a vectorised gather, several times cheaper
	// than a storage-buffer load, which is a loop over the SIMD lanes.
	Texel uint32
	// StorageTexel marks the bindings that are storage texel buffers of
	// four-float texels (R32G32B32A32_SFLOAT; GLSL imageBuffer with the
	// rgba32f format, read with imageLoad, written with imageStore), with
	// the range rules of Texel. On lavapipe an imageStore of a texel costs
	// about what a storage-buffer store of one float does (a loop over the
	// SIMD lanes), four times less per float. A binding may not be in both
	// masks.
	StorageTexel uint32
	// HalfTexel marks the texel bindings (of Texel or StorageTexel) whose
	// texels are four IEEE halves (R16G16B16A16_SFLOAT, 8 bytes; GLSL
	// rgba16f for images) instead of four floats; reads still return vec4.
	HalfTexel uint32
	// SubgroupSize, when not 0, is the subgroup size the kernel needs (a
	// power of two): its shader depends on gl_SubgroupSize being exactly
	// that, or on whole subgroups of it. Where the device can require a
	// size (Info.RequiredSubgroupSize), the pipeline requires it, and also
	// full subgroups where the device offers that (Info.FullSubgroups) and
	// the workgroup's x size is a multiple of it. Where it cannot, the
	// device must run no other size (Info.MinSubgroupSize ==
	// Info.MaxSubgroupSize == SubgroupSize), else Kernel fails: see
	// Info.SupportsSubgroupSize, which callers ask first to choose another
	// kernel.
	SubgroupSize uint32
}

// texelSize is the size in bytes of one texel of texel binding i.
func (s KernelSpec) texelSize(i int) int64 {
	if i < 32 && s.HalfTexel&(1<<i) != 0 {
		return 8
	}
	return 16
}

// texelFormat is the view format of texel binding i.
func (s KernelSpec) texelFormat(i int) vk.Format {
	if i < 32 && s.HalfTexel&(1<<i) != 0 {
		return vk.FormatR16g16b16a16Sfloat
	}
	return vk.FormatR32g32b32a32Sfloat
}

// descriptorType is the descriptor type of binding i.
func (s KernelSpec) descriptorType(i int) vk.DescriptorType {
	switch {
	case i < 32 && s.Texel&(1<<i) != 0:
		return vk.DescriptorTypeUniformTexelBuffer
	case i < 32 && s.StorageTexel&(1<<i) != 0:
		return vk.DescriptorTypeStorageTexelBuffer
	}
	return vk.DescriptorTypeStorageBuffer
}

// isTexel reports whether t is one of the texel-buffer descriptor types.
func isTexel(t vk.DescriptorType) bool {
	return t == vk.DescriptorTypeUniformTexelBuffer || t == vk.DescriptorTypeStorageTexelBuffer
}

func (s KernelSpec) key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%d/%d/%d/%x/%x/%x/%d", s.Name, len(s.Code), s.Buffers, s.PushSize, s.Texel, s.StorageTexel, s.HalfTexel, s.SubgroupSize)
	for _, v := range s.Spec {
		fmt.Fprintf(&b, ",%d", v)
	}
	return b.String()
}

// Kernel is one compute pipeline with its layouts. Kernels are cached per
// device by (name, constants) and live until the device is closed.
type Kernel struct {
	d         *Device
	spec      KernelSpec
	subgroup  subgroupRequest
	module    vk.ShaderModule
	setLayout vk.DescriptorSetLayout
	layout    vk.PipelineLayout
	pipeline  vk.Pipeline
}

// Name is the kernel's shader name.
func (k *Kernel) Name() string { return k.spec.Name }

// Kernel returns the pipeline for spec, creating it on first use.
func (d *Device) Kernel(spec KernelSpec) (*Kernel, error) {
	if len(spec.Code) == 0 || len(spec.Code)%4 != 0 {
		return nil, fmt.Errorf("vk: kernel %s: SPIR-V of %d bytes is not a whole number of words", spec.Name, len(spec.Code))
	}
	if spec.Buffers < 0 || spec.PushSize < 0 || spec.PushSize%4 != 0 {
		return nil, fmt.Errorf("vk: kernel %s: bad layout (%d buffers, %d push bytes)", spec.Name, spec.Buffers, spec.PushSize)
	}
	if spec.Buffers < 32 && (spec.Texel|spec.StorageTexel)>>uint(spec.Buffers) != 0 {
		return nil, fmt.Errorf("vk: kernel %s: texel masks %#x, %#x name bindings past its %d buffers", spec.Name, spec.Texel, spec.StorageTexel, spec.Buffers)
	}
	if spec.HalfTexel&^(spec.Texel|spec.StorageTexel) != 0 {
		return nil, fmt.Errorf("vk: kernel %s: half-texel mask %#x names bindings that are not texel buffers", spec.Name, spec.HalfTexel)
	}
	if spec.Texel&spec.StorageTexel != 0 {
		return nil, fmt.Errorf("vk: kernel %s: bindings %#x are in both texel masks", spec.Name, spec.Texel&spec.StorageTexel)
	}
	if uint32(spec.PushSize) > d.info.MaxPushConstants {
		return nil, fmt.Errorf("vk: kernel %s: %d bytes of push constants exceed the device's %d", spec.Name, spec.PushSize, d.info.MaxPushConstants)
	}
	key := spec.key()
	d.kernelMu.Lock()
	defer d.kernelMu.Unlock()
	if d.kernels == nil {
		return nil, fmt.Errorf("vk: kernel %s: device is closed", spec.Name)
	}
	if k, ok := d.kernels[key]; ok {
		return k, nil // checked when it was built: ops ask for their kernels at every recording
	}
	wg, err := d.checkWorkgroup(spec.Name, spec.Code, spec.Spec)
	if err != nil {
		return nil, err
	}
	sub, err := d.info.subgroupRequestFor(spec.SubgroupSize, wg)
	if err != nil {
		return nil, fmt.Errorf("vk: kernel %s: %w", spec.Name, err)
	}
	k := &Kernel{d: d, spec: spec, subgroup: sub}
	if err := k.build(); err != nil {
		k.destroy()
		return nil, fmt.Errorf("vk: kernel %s: %w", spec.Name, err)
	}
	d.kernels[key] = k
	return k, nil
}

func (k *Kernel) build() error {
	d := k.d
	words := make([]uint32, len(k.spec.Code)/4)
	for i := range words {
		words[i] = binary.LittleEndian.Uint32(k.spec.Code[4*i:])
	}
	mci := &vk.ShaderModuleCreateInfo{
		SType:    vk.StructureTypeShaderModuleCreateInfo,
		CodeSize: uint(len(k.spec.Code)),
		PCode:    words,
	}
	var madeModule = k.module
	r := vk.CreateShaderModule(d.handle, mci, nil, &madeModule)
	k.module = madeModule
	mci.Free()
	if err := check("vkCreateShaderModule", r); err != nil {
		return err
	}
	bindings := make([]vk.DescriptorSetLayoutBinding, k.spec.Buffers)
	for i := range bindings {
		bindings[i] = vk.DescriptorSetLayoutBinding{
			Binding:         uint32(i),
			DescriptorType:  k.spec.descriptorType(i),
			DescriptorCount: 1,
			StageFlags:      vk.ShaderStageFlags(vk.ShaderStageComputeBit),
		}
	}
	lci := &vk.DescriptorSetLayoutCreateInfo{
		SType:        vk.StructureTypeDescriptorSetLayoutCreateInfo,
		BindingCount: uint32(len(bindings)),
		PBindings:    bindings,
	}
	var madeSetLayout = k.setLayout
	r = vk.CreateDescriptorSetLayout(d.handle, lci, nil, &madeSetLayout)
	k.setLayout = madeSetLayout
	lci.Free()
	if err := check("vkCreateDescriptorSetLayout", r); err != nil {
		return err
	}
	pci := &vk.PipelineLayoutCreateInfo{
		SType:          vk.StructureTypePipelineLayoutCreateInfo,
		SetLayoutCount: 1,
		PSetLayouts:    []vk.DescriptorSetLayout{k.setLayout},
	}
	if k.spec.PushSize > 0 {
		pci.PushConstantRangeCount = 1
		pci.PPushConstantRanges = []vk.PushConstantRange{{
			StageFlags: vk.ShaderStageFlags(vk.ShaderStageComputeBit),
			Size:       uint32(k.spec.PushSize),
		}}
	}
	var madeLayout = k.layout
	r = vk.CreatePipelineLayout(d.handle, pci, nil, &madeLayout)
	k.layout = madeLayout
	pci.Free()
	if err := check("vkCreatePipelineLayout", r); err != nil {
		return err
	}

	pipe, err := d.createComputePipeline(k.module, k.layout, k.spec.Spec, k.subgroup)
	if err != nil {
		return err
	}
	k.pipeline = pipe
	return nil
}

// Pipeline shader stage flags (VkPipelineShaderStageCreateFlagBits).
const stageRequireFullSubgroups = 0x2 // VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT

// subgroupRequest is how a compute pipeline asks for its subgroups: the
// subgroup size it requires (0: none) and its shader stage flags.
type subgroupRequest struct {
	required uint32
	flags    uint32
}

// subgroupRequestFor returns the request that makes a kernel with a
// workgroup of wg run with subgroups of size invocations (KernelSpec.
// SubgroupSize; 0 asks for nothing), or an error saying why the device
// cannot promise that size.
func (in Info) subgroupRequestFor(size uint32, wg [3]uint32) (subgroupRequest, error) {
	if size == 0 {
		return subgroupRequest{}, nil
	}
	if size&(size-1) != 0 {
		return subgroupRequest{}, fmt.Errorf("subgroup size %d is not a power of two", size)
	}
	if !in.SupportsSubgroupSize(size) {
		switch {
		case in.MinSubgroupSize == 0:
			return subgroupRequest{}, fmt.Errorf("needs subgroups of %d invocations, and the device reports neither the sizes it may run (it reports %d) nor a way to require one (Vulkan 1.3 or VK_EXT_subgroup_size_control)",
				size, in.SubgroupSize)
		case in.MinSubgroupSize != in.MaxSubgroupSize:
			return subgroupRequest{}, fmt.Errorf("needs subgroups of %d invocations, and the device may run compute subgroups of %d to %d invocations (it reports %d) and cannot require %d",
				size, in.MinSubgroupSize, in.MaxSubgroupSize, in.SubgroupSize, size)
		default:
			return subgroupRequest{}, fmt.Errorf("needs subgroups of %d invocations, and the device runs subgroups of %d", size, in.MinSubgroupSize)
		}
	}
	var r subgroupRequest
	if in.RequiredSubgroupSize && size >= in.MinSubgroupSize && size <= in.MaxSubgroupSize {
		r.required = size
		total := uint64(wg[0]) * uint64(wg[1]) * uint64(wg[2])
		if lim := uint64(in.MaxComputeWorkgroupSubgroups); lim > 0 && total > lim*uint64(size) {
			return subgroupRequest{}, fmt.Errorf("a workgroup of %d invocations is more than the device's %d subgroups of %d", total, lim, size)
		}
	}
	// Without a required size, full subgroups need a workgroup x size that
	// is a multiple of MaxSubgroupSize, which here equals size.
	if in.FullSubgroups && wg[0]%size == 0 {
		r.flags |= stageRequireFullSubgroups
	}
	return r, nil
}

func (k *Kernel) destroy() {
	h := k.d.handle
	if k.pipeline != vk.NullPipeline {
		vk.DestroyPipeline(h, k.pipeline, nil)
	}
	if k.layout != vk.NullPipelineLayout {
		vk.DestroyPipelineLayout(h, k.layout, nil)
	}
	if k.setLayout != vk.NullDescriptorSetLayout {
		vk.DestroyDescriptorSetLayout(h, k.setLayout, nil)
	}
	if k.module != vk.NullShaderModule {
		vk.DestroyShaderModule(h, k.module, nil)
	}
}
