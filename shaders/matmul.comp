#version 450
// matmul.comp: PyTorch Linear, Y[r, o] = sum_k X[r, k] * W[o, k] (+ B[o]).
//
// One workgroup computes a BM x BN tile of Y. It walks K in steps of BK,
// staging a BM x BK tile of X and a BN x BK tile of W in shared memory
// (transposed, k-major, each row padded by one float against bank
// conflicts); every thread keeps TM x TN outputs in registers and
// accumulates in fp32. Thread (tx, ty) owns rows ty + i*WG_Y and columns
// tx + j*WG_X of the tile, so stores of neighbouring threads are adjacent.
//
// The host keeps WG_X = BN / TN and WG_Y = BM / TM. Dispatch grid:
// (ceil(N / BN), ceil(M / BM), 1). Every load and store is bounds-checked,
// so any M, N, K >= 1 work.
//
// Shared memory: 4 * BK * (BM + 1 + BN + 1) bytes (8320 with the defaults).
//
// variants: f16 (built with -DF16: X, W, B and Y hold float16_t, needing
// storageBuffer16BitAccess; the tiles and the accumulation stay fp32).

layout(constant_id = 0) const uint BM = 64;
layout(constant_id = 1) const uint BN = 64;
layout(constant_id = 2) const uint BK = 16;
layout(constant_id = 3) const uint TM = 4;
layout(constant_id = 4) const uint TN = 4;
layout(constant_id = 5) const uint WG_X = 16;
layout(constant_id = 6) const uint WG_Y = 16;

layout(local_size_x = 16, local_size_y = 16, local_size_x_id = 5, local_size_y_id = 6, local_size_z = 1) in;

#ifdef F16
#extension GL_EXT_shader_16bit_storage : require
#define ELEM float16_t
#else
#define ELEM float
#endif

layout(std430, set = 0, binding = 0) readonly buffer XBuf { ELEM X[]; };
layout(std430, set = 0, binding = 1) readonly buffer WBuf { ELEM W[]; };
layout(std430, set = 0, binding = 2) readonly buffer BBuf { ELEM B[]; };
layout(std430, set = 0, binding = 3) writeonly buffer YBuf { ELEM Y[]; };

#include "push/matmul.glsl"

const uint XS = BM + 1; // padded row length of the k-major X tile
const uint WS = BN + 1; // padded row length of the k-major W tile

shared float xs[BK * XS];
shared float ws[BK * WS];

const uint NT = WG_X * WG_Y;              // threads
const uint XL = (BM * BK + NT - 1) / NT;  // X tile loads per thread
const uint WL = (BN * BK + NT - 1) / NT;  // W tile loads per thread

void main() {
	const uint tx = gl_LocalInvocationID.x;
	const uint ty = gl_LocalInvocationID.y;
	const uint tid = ty * WG_X + tx;
	const uint row0 = gl_WorkGroupID.y * BM;
	const uint col0 = gl_WorkGroupID.x * BN;

	// Loops over TM and TN (not TM * TN) so that compilers that unroll
	// only short loops still keep acc in registers.
	float acc[TM * TN];
	for (uint i = 0; i < TM; i++) {
		for (uint j = 0; j < TN; j++) {
			acc[i * TN + j] = 0.0;
		}
	}
	float a[TM];
	float b[TN];

	for (uint k0 = 0; k0 < pc.K; k0 += BK) {
		// Stage the X tile: consecutive threads read consecutive k. The
		// loops have constant trip counts, which compilers unroll (lavapipe
		// also caps the loop iterations of an invocation, see README.md).
		for (uint i = 0; i < XL; i++) {
			const uint idx = tid + i * NT;
			if (idx >= BM * BK) {
				break;
			}
			const uint r = idx / BK;
			const uint c = idx % BK;
			const uint gr = row0 + r;
			const uint gk = k0 + c;
			float v = 0.0;
			if (gr < pc.M && gk < pc.K) {
				v = float(X[pc.x_off + gr * pc.ldx + gk]);
			}
			xs[c * XS + r] = v;
		}
		// Stage the W tile the same way.
		for (uint i = 0; i < WL; i++) {
			const uint idx = tid + i * NT;
			if (idx >= BN * BK) {
				break;
			}
			const uint r = idx / BK;
			const uint c = idx % BK;
			const uint gr = col0 + r;
			const uint gk = k0 + c;
			float v = 0.0;
			if (gr < pc.N && gk < pc.K) {
				v = float(W[pc.w_off + gr * pc.ldw + gk]);
			}
			ws[c * WS + r] = v;
		}
		barrier();

		for (uint kk = 0; kk < BK; kk++) {
			for (uint i = 0; i < TM; i++) {
				a[i] = xs[kk * XS + ty + i * WG_Y];
			}
			for (uint j = 0; j < TN; j++) {
				b[j] = ws[kk * WS + tx + j * WG_X];
			}
			for (uint i = 0; i < TM; i++) {
				for (uint j = 0; j < TN; j++) {
					acc[i * TN + j] += a[i] * b[j];
				}
			}
		}
		barrier();
	}

	for (uint j = 0; j < TN; j++) {
		const uint col = col0 + tx + j * WG_X;
		if (col >= pc.N) {
			continue;
		}
		float bias = 0.0;
		if (pc.has_bias != 0) {
			bias = float(B[pc.b_off + col]);
		}
		for (uint i = 0; i < TM; i++) {
			const uint row = row0 + ty + i * WG_Y;
			if (row < pc.M) {
				Y[pc.y_off + row * pc.ldy + col] = ELEM(acc[i * TN + j] + bias);
			}
		}
	}
}
