#version 450
// attn_combine.comp: merges the partial results of attention.comp's key
// splits into the final output.
//
// For each batch b, query q, head h and dim d:
//   Out[out_off + (b*nq + q)*ldo + h*dh + d] =
//     sum_s exp(m_s - M) acc_s[d] / sum_s exp(m_s - M) l_s
// over the slots s whose l_s is nonzero (a slot with no keys has l = 0 and
// m = -inf), M = max of their m_s. A NaN l_s counts as nonzero, so NaN
// inputs propagate as they do in PyTorch. Partials are read as
//   acc_s[d] = O[(((s*batch + b)*heads + h)*nq + q)*dh + d],
//   (m_s, l_s) = ML[(((s*batch + b)*heads + h)*nq + q)*2 + {0, 1}],
// from the start of the bound ranges.
//
// One thread per output element, 64 threads per workgroup; the element index
// is flattened from a 2-D grid, id.x + id.y * 64 * num.x, so the host may use
// (min(groups, 65535), ceil(groups / 65535)) when groups exceed 65535.
//
// variants: f16 (built with -DF16: Out holds float16_t, needing
// storageBuffer16BitAccess; the partials stay float32).

layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;

layout(std430, set = 0, binding = 0) readonly buffer PartBuf { float Part[]; };
layout(std430, set = 0, binding = 1) readonly buffer MLBuf { float ML[]; };
#ifdef F16
#extension GL_EXT_shader_16bit_storage : require
#define ELEM float16_t
#else
#define ELEM float
#endif

layout(std430, set = 0, binding = 2) writeonly buffer OutBuf { ELEM Out[]; };

#include "push/attn_combine.glsl"

void main() {
	const uint gid = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
	const uint total = pc.batch * pc.nq * pc.heads * pc.dh;
	if (gid >= total) {
		return;
	}
	const uint d = gid % pc.dh;
	uint r = gid / pc.dh;
	const uint h = r % pc.heads;
	r /= pc.heads;
	const uint q = r % pc.nq;
	const uint b = r / pc.nq;

	// Stride between consecutive slots of the same (b, h, q).
	const uint sstride = pc.batch * pc.heads * pc.nq;
	const uint base = (b * pc.heads + h) * pc.nq + q;

	float mx = uintBitsToFloat(0xff800000u); // -inf
	for (uint s = 0; s < pc.nslots; s++) {
		const uint idx = s * sstride + base;
		if (ML[idx * 2 + 1] != 0.0) {
			mx = max(mx, ML[idx * 2]);
		}
	}
	float num = 0.0;
	float den = 0.0;
	for (uint s = 0; s < pc.nslots; s++) {
		const uint idx = s * sstride + base;
		const float l = ML[idx * 2 + 1];
		if (l != 0.0) {
			const float w = exp(ML[idx * 2] - mx);
			num += w * Part[idx * pc.dh + d];
			den += w * l;
		}
	}
	Out[pc.out_off + (b * pc.nq + q) * pc.ldo + h * pc.dh + d] = ELEM(num / den);
}
