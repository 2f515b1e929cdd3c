#version 450
// add.comp: elementwise sum of two rows x cols matrices, the residual
// connections of the Set Transformer's MAB:
//
//	Y[r, c] = A[ar, c] + B[r, c]            (relu == 0)
//	Y[r, c] = A[ar, c] + max(B[r, c], 0)    (relu == 1)
//
// where ar = r, or (a_row0 + r) % a_rows when a_rows > 0 (A's rows repeat
// along Y, as a [m, d] parameter shared by every batch element of a
// [batch*m, d] result). Element (r, c) of a matrix M is M[m_off + r*ldm + c].
//
// One invocation per element, no loops: index = (id.y * num.x + id.x) * WG
// + local id; r = index / cols, c = index % cols; invocations past
// rows*cols do nothing.
//
// variants: f16 (built with -DF16: A, B and Y hold float16_t, needing
// storageBuffer16BitAccess; the sum is taken in fp32).

layout(constant_id = 0) const uint WG = 64;

layout(local_size_x = 64, local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

#ifdef F16
#extension GL_EXT_shader_16bit_storage : require
#define ELEM float16_t
#else
#define ELEM float
#endif

layout(std430, set = 0, binding = 0) readonly buffer ABuf { ELEM A[]; };
layout(std430, set = 0, binding = 1) readonly buffer BBuf { ELEM B[]; };
layout(std430, set = 0, binding = 2) writeonly buffer YBuf { ELEM Y[]; };

#include "push/add.glsl"

void main() {
	const uint group = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
	const uint idx = group * WG + gl_LocalInvocationID.x;
	if (idx >= pc.rows * pc.cols) {
		return;
	}
	const uint r = idx / pc.cols;
	const uint c = idx - r * pc.cols;
	uint ar = r;
	if (pc.a_rows > 0u) {
		ar = (pc.a_row0 + r) % pc.a_rows;
	}
	float b = float(B[pc.b_off + r * pc.ldb + c]);
	if (pc.relu != 0u) {
		b = max(b, 0.0);
	}
	Y[pc.y_off + r * pc.ldy + c] = ELEM(float(A[pc.a_off + ar * pc.lda + c]) + b);
}
