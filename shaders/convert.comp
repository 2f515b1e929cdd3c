#version 450
// convert.comp: converts n consecutive elements between float32 and IEEE
// half (float16_t), in either direction.
//
// to_half == 1: Dst16[dst_off + i] = float16_t(Src32[src_off + i]) (rounded
//               as the device converts: to nearest on lavapipe and common
//               GPUs; values beyond the half range become +-inf);
// to_half == 0: Dst32[dst_off + i] = float(Src16[src_off + i]) (exact),
// for i < n. Each binding is declared as a float32 and a float16_t view; the
// kernel uses one view per binding, chosen by to_half. Needs
// storageBuffer16BitAccess.
//
// One invocation per element, WG per workgroup; the element index is
// flattened from a 2-D grid, id.x + id.y * WG * num.x, so the host may
// spread more than 65535 workgroups over y.

#extension GL_EXT_shader_16bit_storage : require

layout(constant_id = 0) const uint WG = 64;

layout(local_size_x = 64, local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

layout(std430, set = 0, binding = 0) readonly buffer Src32Buf { float Src32[]; };
layout(std430, set = 0, binding = 0) readonly buffer Src16Buf { float16_t Src16[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Dst32Buf { float Dst32[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Dst16Buf { float16_t Dst16[]; };

#include "push/convert.glsl"

void main() {
	const uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * WG) + gl_GlobalInvocationID.x;
	if (i >= pc.n) {
		return;
	}
	if (pc.to_half != 0) {
		Dst16[pc.dst_off + i] = float16_t(Src32[pc.src_off + i]);
	} else {
		Dst32[pc.dst_off + i] = float(Src16[pc.src_off + i]);
	}
}
