#version 450
// layernorm.comp: PyTorch's LayerNorm over the last axis (the cols of
// each row of X), with an affine weight and bias, written to Y:
//
//	mean = sum_c x[c] / cols
//	var  = sum_c (x[c] - mean)^2 / cols            (biased, as PyTorch)
//	y[c] = (x[c] - mean) / sqrt(var + eps) * W[c] + Bias[c]
//
// The variance is taken in a second pass over the row, around the mean,
// so it does not lose precision to cancellation. One workgroup per row, WG
// threads striding over the columns, with shared-memory tree reductions
// (WG need not be a power of two). The row index is flattened from a 2-D
// grid, row = id.y * num.x + id.x; workgroups past the last row do nothing.
//
// Shared memory: 4 * WG bytes.
//
// variants: f16 (built with -DF16: X, W, Bias and Y hold float16_t, needing
// storageBuffer16BitAccess; the statistics are fp32).

layout(constant_id = 0) const uint WG = 64;

layout(local_size_x = 64, local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

#ifdef F16
#extension GL_EXT_shader_16bit_storage : require
#define ELEM float16_t
#else
#define ELEM float
#endif

layout(std430, set = 0, binding = 0) readonly buffer XBuf { ELEM X[]; };
layout(std430, set = 0, binding = 1) readonly buffer WBuf { ELEM W[]; };
layout(std430, set = 0, binding = 2) readonly buffer BiasBuf { ELEM Bias[]; };
layout(std430, set = 0, binding = 3) writeonly buffer YBuf { ELEM Y[]; };

#include "push/layernorm.glsl"

shared float red[WG];

// sum adds red[0..WG) into red[0] and returns it to every thread. Callers
// write red[t] first; sum begins with a barrier and ends with one after
// everyone has read the total.
float sum(uint t) {
	uint s = 1;
	while (s < WG) {
		s <<= 1;
	}
	for (s >>= 1; s > 0; s >>= 1) {
		barrier();
		if (t < s && t + s < WG) {
			red[t] = red[t] + red[t + s];
		}
	}
	barrier();
	float total = red[0];
	barrier();
	return total;
}

void main() {
	const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
	if (row >= pc.rows) {
		return; // uniform across the workgroup
	}
	const uint t = gl_LocalInvocationID.x;
	const uint xbase = pc.x_off + row * pc.ldx;
	const uint ybase = pc.y_off + row * pc.ldy;
	const float n = float(pc.cols);

	float acc = 0.0;
	for (uint c = t; c < pc.cols; c += WG) {
		acc += float(X[xbase + c]);
	}
	red[t] = acc;
	const float mean = sum(t) / n;

	acc = 0.0;
	for (uint c = t; c < pc.cols; c += WG) {
		float d = float(X[xbase + c]) - mean;
		acc += d * d;
	}
	red[t] = acc;
	const float rstd = 1.0 / sqrt(sum(t) / n + pc.eps);

	for (uint c = t; c < pc.cols; c += WG) {
		Y[ybase + c] = ELEM((float(X[xbase + c]) - mean) * rstd * float(W[pc.w_off + c]) + float(Bias[pc.b_off + c]));
	}
}
