#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
// matmul_cpu.comp: PyTorch Linear, Y[r, o] = sum_k X[r, k] * W[o, k] (+ B[o]),
// for CPU rasterisers (lavapipe). Same bindings and push constants as
// matmul.comp; no shared memory and no barriers.
//
// lavapipe runs 8 invocations as one SIMD vector, and (Mesa 22.3) turns
// every buffer load into a loop over the 8 lanes, one iteration per lane and
// component, so the cost is in the number of loaded components, not in their
// addresses or their width: a 64-bit component costs what a 32-bit one
// does. Thread t of a workgroup of WG threads computes rows
// row0 .. row0+TM-1 (shared by the workgroup) and columns col0 + t + j*WG,
// j < TN, walking K with loads of X and W, and multiplying each loaded value
// TN or TM times. VEC picks the loads: 2, u64vec4 loads of 8 floats
// (unpackUint2x32 and uintBitsToFloat, bit-exact; the host checks that
// x_off, ldx, w_off and ldw are multiples of 8); 1, vec4 loads (multiples
// of 4); 0, scalar loads. The module declares the Int64 capability whatever
// VEC is, so the device needs shaderInt64. Out-of-range rows and columns are
// clamped for loading, so the control flow stays uniform, and skipped when
// storing. No shared memory, no barriers.
//
// The main K loop steps by S*KU (S = 8 with VEC = 2, else 4; its body
// unrolled) and a scalar loop takes the remaining K % (S*KU), so one
// invocation runs at most ceil(K / (S*KU)) + S*KU loop iterations
// (lavapipe's loop cap, see README.md). Dispatch grid:
// (ceil(N / (WG*TN)), ceil(M / TM), 1).

layout(constant_id = 0) const uint WG = 8;  // threads, along N
layout(constant_id = 1) const uint TM = 8;  // rows per workgroup
layout(constant_id = 2) const uint TN = 2;  // columns per thread
layout(constant_id = 3) const uint KU = 8;  // K unroll
layout(constant_id = 4) const uint VEC = 0; // 2: u64vec4 loads (x_off, ldx, w_off, ldw multiples of 8), 1: vec4 (multiples of 4), 0: scalar

layout(local_size_x = 8, local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

layout(std430, set = 0, binding = 0) readonly buffer XBuf { float X[]; };
layout(std430, set = 0, binding = 1) readonly buffer WBuf { float W[]; };
layout(std430, set = 0, binding = 0) readonly buffer XBuf4 { vec4 X4[]; };
layout(std430, set = 0, binding = 1) readonly buffer WBuf4 { vec4 W4[]; };
layout(std430, set = 0, binding = 0) readonly buffer XBuf8 { u64vec4 X8[]; };
layout(std430, set = 0, binding = 1) readonly buffer WBuf8 { u64vec4 W8[]; };
layout(std430, set = 0, binding = 2) readonly buffer BBuf { float B[]; };
layout(std430, set = 0, binding = 3) writeonly buffer YBuf { float Y[]; };

#include "push/matmul.glsl"

// lo and hi return floats 0..3 and 4..7 of 8 loaded as a u64vec4 (little
// endian: the low half of each 64-bit component comes first).
vec4 lo(u64vec4 v) {
	return uintBitsToFloat(uvec4(unpackUint2x32(v.x), unpackUint2x32(v.y)));
}

vec4 hi(u64vec4 v) {
	return uintBitsToFloat(uvec4(unpackUint2x32(v.z), unpackUint2x32(v.w)));
}

void main() {
	const uint lx = gl_LocalInvocationID.x;
	const uint row0 = gl_WorkGroupID.y * TM;
	const uint col0 = gl_WorkGroupID.x * (WG * TN);

	float acc[TM * TN];
	[[unroll]] for (uint i = 0; i < TM * TN; i++) {
		acc[i] = 0.0;
	}
	uint wb[TN];
	[[unroll]] for (uint j = 0; j < TN; j++) {
		wb[j] = pc.w_off + min(col0 + lx + j * WG, pc.N - 1) * pc.ldw;
	}
	uint xb[TM];
	[[unroll]] for (uint i = 0; i < TM; i++) {
		xb[i] = pc.x_off + min(row0 + i, pc.M - 1) * pc.ldx;
	}

	uint kmain = 0;
	if (VEC == 2) {
		kmain = pc.K - pc.K % (8 * KU);
		for (uint k = 0; k < kmain; k += 8 * KU) {
			[[unroll]] for (uint u = 0; u < KU; u++) {
				vec4 b0[TN];
				vec4 b1[TN];
				[[unroll]] for (uint j = 0; j < TN; j++) {
					const u64vec4 v = W8[(wb[j] + k) / 8 + u];
					b0[j] = lo(v);
					b1[j] = hi(v);
				}
				[[unroll]] for (uint i = 0; i < TM; i++) {
					const u64vec4 v = X8[(xb[i] + k) / 8 + u];
					const vec4 a0 = lo(v);
					const vec4 a1 = hi(v);
					[[unroll]] for (uint j = 0; j < TN; j++) {
						acc[i * TN + j] += dot(a0, b0[j]) + dot(a1, b1[j]);
					}
				}
			}
		}
	} else if (VEC == 1) {
		kmain = pc.K - pc.K % (4 * KU);
		for (uint k = 0; k < kmain; k += 4 * KU) {
			[[unroll]] for (uint u = 0; u < KU; u++) {
				vec4 b[TN];
				[[unroll]] for (uint j = 0; j < TN; j++) {
					b[j] = W4[(wb[j] + k) / 4 + u];
				}
				[[unroll]] for (uint i = 0; i < TM; i++) {
					const vec4 a = X4[(xb[i] + k) / 4 + u];
					[[unroll]] for (uint j = 0; j < TN; j++) {
						acc[i * TN + j] += dot(a, b[j]);
					}
				}
			}
		}
	} else {
		kmain = pc.K - pc.K % (4 * KU);
	}
	for (uint k = 0; VEC == 0 && k < kmain; k += 4 * KU) {
		[[unroll]] for (uint u = 0; u < 4 * KU; u++) {
			float b[TN];
			[[unroll]] for (uint j = 0; j < TN; j++) {
				b[j] = W[wb[j] + k + u];
			}
			[[unroll]] for (uint i = 0; i < TM; i++) {
				const float a = X[xb[i] + k + u];
				[[unroll]] for (uint j = 0; j < TN; j++) {
					acc[i * TN + j] += a * b[j];
				}
			}
		}
	}
	for (uint k = kmain; k < pc.K; k++) {
		float b[TN];
		[[unroll]] for (uint j = 0; j < TN; j++) {
			b[j] = W[wb[j] + k];
		}
		[[unroll]] for (uint i = 0; i < TM; i++) {
			const float a = X[xb[i] + k];
			[[unroll]] for (uint j = 0; j < TN; j++) {
				acc[i * TN + j] += a * b[j];
			}
		}
	}

	[[unroll]] for (uint j = 0; j < TN; j++) {
		const uint col = col0 + lx + j * WG;
		if (col < pc.N) {
			float bias = 0.0;
			if (pc.has_bias != 0) {
				bias = B[pc.b_off + col];
			}
			[[unroll]] for (uint i = 0; i < TM; i++) {
				if (row0 + i < pc.M) {
					Y[pc.y_off + (row0 + i) * pc.ldy + col] = acc[i * TN + j] + bias;
				}
			}
		}
	}
}
