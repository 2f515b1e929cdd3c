#version 450
// softmax.comp: masked, scaled softmax over the rows of X, written to Y.
//
// v = x * scale; where the mask is zero, v = -FLT_MAX (the float32 maximum
// negated, as PyTorch's masked_fill(-finfo.max) does, so a fully masked row
// becomes a uniform 1/cols); y = exp(v - max(v)) / sum(exp(v - max(v))).
//
// NaN and infinities as in PyTorch, on every implementation: a row whose
// logits hold a NaN or +inf (exp(inf - inf) is NaN), or are all -inf, is
// NaN throughout. GLSL's max and exp are undefined for a NaN operand, and
// Vulkan lets a driver assume no NaN or infinity reaches them (SwiftShader
// returns 0 for such a row), so the kernel tests the bits of each logit
// and writes the NaN itself.
//
// One workgroup per row, WG threads striding over the columns, with
// shared-memory tree reductions for the maximum and the sum (no reliance on
// the subgroup size; WG need not be a power of two). The row index is
// flattened from a 2-D grid, row = id.y * num.x + id.x, so more than 65535
// rows fit in one dispatch; workgroups past the last row do nothing.
//
// Shared memory: 8 * WG bytes.
//
// variants: f16 (built with -DF16: X and Y hold float16_t, needing
// storageBuffer16BitAccess; the logits, maximum and sum are fp32).

layout(constant_id = 0) const uint WG = 128;

layout(local_size_x = 128, local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

#ifdef F16
#extension GL_EXT_shader_16bit_storage : require
#define ELEM float16_t
#else
#define ELEM float
#endif

layout(std430, set = 0, binding = 0) readonly buffer XBuf { ELEM X[]; };
layout(std430, set = 0, binding = 1) readonly buffer MaskBuf { uint Mask[]; };
layout(std430, set = 0, binding = 2) writeonly buffer YBuf { ELEM Y[]; };

#include "push/softmax.glsl"

shared float red[WG];
shared uint special[WG]; // nonzero: a logit of the row is NaN or +inf

// nan_or_inf reports, from its bits, whether v is a NaN or +inf.
bool nan_or_inf(float v) {
	const uint b = floatBitsToUint(v);
	return b == 0x7f800000u || (b & 0x7fffffffu) > 0x7f800000u;
}

float neg_max() {
	return uintBitsToFloat(0xff7fffffu);
}

// value returns the scaled, masked logit of column c of the row.
float value(uint xbase, uint mbase, uint c) {
	float v = float(X[xbase + c]) * pc.scale;
	if (pc.has_mask != 0 && Mask[mbase + c] == 0u) {
		v = neg_max();
	}
	return v;
}

// reduce combines red[0..WG) into red[0] with max (op 0) or + (op 1); with
// max it also ORs special[0..WG) into special[0] (a plain reduction, not an
// atomic: atomics on shared memory use the Device scope in glslang's
// SPIR-V, which a device with the Vulkan memory model but not its device
// scope refuses). Callers write red[t] (and special[t]) first; reduce
// begins with a barrier.
void reduce(uint t, uint op) {
	uint s = 1;
	while (s < WG) {
		s <<= 1;
	}
	for (s >>= 1; s > 0; s >>= 1) {
		barrier();
		if (t < s && t + s < WG) {
			if (op == 0u) {
				red[t] = max(red[t], red[t + s]);
				special[t] |= special[t + s];
			} else {
				red[t] = red[t] + red[t + s];
			}
		}
	}
	barrier();
}

void main() {
	const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
	if (row >= pc.rows) {
		return; // uniform across the workgroup
	}
	const uint t = gl_LocalInvocationID.x;
	const uint xbase = pc.x_off + row * pc.ldx;
	const uint ybase = pc.y_off + row * pc.ldy;
	uint mbase = 0;
	if (pc.has_mask != 0) {
		mbase = pc.mask_off + (row / max(pc.rows_per_mask, 1u)) * pc.ld_mask;
	}

	float mx = uintBitsToFloat(0xff800000u); // -inf
	uint bad = 0u;
	for (uint c = t; c < pc.cols; c += WG) {
		const float v = value(xbase, mbase, c);
		if (nan_or_inf(v)) {
			bad = 1u;
		} else {
			mx = max(mx, v);
		}
	}
	red[t] = mx;
	special[t] = bad;
	reduce(t, 0u);
	mx = red[0];
	if (special[0] != 0u || floatBitsToUint(mx) == 0xff800000u) {
		// uniform: every invocation read the same special[0] and red[0]
		for (uint c = t; c < pc.cols; c += WG) {
			Y[ybase + c] = ELEM(uintBitsToFloat(0x7fc00000u));
		}
		return;
	}
	barrier(); // everyone has read red[0] before it is overwritten

	float sum = 0.0;
	for (uint c = t; c < pc.cols; c += WG) {
		sum += exp(value(xbase, mbase, c) - mx);
	}
	red[t] = sum;
	reduce(t, 1u);
	sum = red[0];

	for (uint c = t; c < pc.cols; c += WG) {
		Y[ybase + c] = ELEM(exp(value(xbase, mbase, c) - mx) / sum);
	}
}
