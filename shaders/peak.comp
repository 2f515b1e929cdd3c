#version 450
#extension GL_EXT_control_flow_attributes : require
// peak.comp: the device's arithmetic peak, for "% peak" in isab bench. Every
// invocation runs iters rounds of CHAIN dependent multiply-adds on each of
// ACC independent vec4 accumulators (x = x * a + b, with a = pc.a and b =
// pc.b), then writes the sum of its accumulators to O[global index], so
// that nothing can be optimised away. One invocation does
// iters * CHAIN * ACC * 4 multiply-adds, each counted as two operations.
// The inner loops are unrolled; only the loop over iters runs (lavapipe
// ends an invocation's loops after 65535 iterations in all: the host keeps
// iters far below that). With a = 1 - 2^-10 and b = 2^-10 the values stay
// near 1 in any precision.
//
// variants: f16 (built with -DF16: the accumulators and the arithmetic are
// f16vec4, needing shaderFloat16; the output stays float32).

layout(constant_id = 0) const uint WG = 64;

layout(local_size_x = 64, local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

#ifdef F16
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define VEC f16vec4
#else
#define VEC vec4
#endif

const uint ACC = 8;    // independent accumulators per invocation
const uint CHAIN = 32; // multiply-adds per accumulator per round

layout(std430, set = 0, binding = 0) writeonly buffer OBuf { float O[]; };

layout(push_constant) uniform Push {
	uint iters;
	float a;
	float b;
} pc;

void main() {
	uint gid = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * WG + gl_LocalInvocationIndex;
	VEC a = VEC(pc.a);
	VEC b = VEC(pc.b);
	VEC x[ACC];
	[[unroll]] for (uint k = 0; k < ACC; k++) {
		x[k] = VEC(float(k + (gid & 7u)) * 0.125);
	}
	for (uint i = 0; i < pc.iters; i++) {
		[[unroll]] for (uint c = 0; c < CHAIN; c++) {
			[[unroll]] for (uint k = 0; k < ACC; k++) {
				x[k] = fma(x[k], a, b);
			}
		}
	}
	vec4 s = vec4(0);
	[[unroll]] for (uint k = 0; k < ACC; k++) {
		s += vec4(x[k]);
	}
	O[gid] = s.x + s.y + s.z + s.w;
}
