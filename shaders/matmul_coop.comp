#version 450
// matmul_coop.comp: PyTorch Linear in fp16 on cooperative matrices,
// Y[r, o] = sum_k X[r, k] * W[o, k] (+ B[o]), with X, W, B and Y holding
// float16_t and the products accumulated in float32 (the device's
// VK_KHR_cooperative_matrix shape LM x LN x LK with fp16 A and B and fp32
// C and result, subgroup scope).
//
// compiler: GL_KHR_cooperative_matrix (glslang 13 or later; Debian 12's
// glslc is older: build.sh uses Debian 13's, see scripts/trixie.sh)
//
// One workgroup computes a BM x BN block of Y, BM = SM*TM*LM and
// BN = SN*TN*LN: it has SM x SN subgroups, and each subgroup keeps
// TM x TN accumulator matrices of LM x LN. K is walked in steps of
// BK = KT*LK: the workgroup stages a BM x BK tile of X and a BN x BK tile
// of W in shared memory (zero outside the operands, so any M, N, K >= 1
// work), and each subgroup loads its A (rows of X) and B (W read column
// major, which is W^T) matrices from there. At the end each subgroup
// stores one accumulator at a time to its own LM x LN scratch in shared
// memory, and its invocations add the bias, round to half and write the
// elements inside Y.
//
// The workgroup is WG = SM*SN*(subgroup size) invocations. Should the
// device run other subgroup sizes, the kernel stays correct: with smaller
// subgroups the extra ones only help staging, with larger ones each
// subgroup takes several of the SM*SN subgroup tiles in turn.
//
// VEC 4 loads X and W four halves at a time; the host sets it only when
// x_off, ldx, w_off, ldw and K are multiples of 4.
//
// Shared memory: 2*(BM+BN)*(BK+8) + 4*LM*LN*SM*SN bytes.
// Dispatch grid: (ceil(N / BN), ceil(M / BM), 1).

#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require

layout(constant_id = 0) const uint LM = 16;
layout(constant_id = 1) const uint LN = 16;
layout(constant_id = 2) const uint LK = 16;
layout(constant_id = 3) const uint SM = 2;
layout(constant_id = 4) const uint SN = 2;
layout(constant_id = 5) const uint TM = 2;
layout(constant_id = 6) const uint TN = 2;
layout(constant_id = 7) const uint KT = 2;
layout(constant_id = 8) const uint WG = 128;
layout(constant_id = 9) const uint VEC = 1;

layout(local_size_x_id = 8) in;

layout(std430, set = 0, binding = 0) readonly buffer XBuf { float16_t X[]; };
layout(std430, set = 0, binding = 0) readonly buffer X4Buf { f16vec4 X4[]; };
layout(std430, set = 0, binding = 1) readonly buffer WBuf { float16_t W[]; };
layout(std430, set = 0, binding = 1) readonly buffer W4Buf { f16vec4 W4[]; };
layout(std430, set = 0, binding = 2) readonly buffer BBuf { float16_t B[]; };
layout(std430, set = 0, binding = 3) writeonly buffer YBuf { float16_t Y[]; };

#include "push/matmul.glsl"

const uint BM = SM * TM * LM;
const uint BN = SN * TN * LN;
const uint BK = KT * LK;
const uint TS = BK + 8;   // padded row length of the staged tiles, in halves
const uint NSG = SM * SN; // subgroup tiles per workgroup

shared float16_t xs[BM * TS];
shared float16_t ws[BN * TS];
shared float scratch[NSG * LM * LN];

// stage copies rows row0.. of a rows x K operand (src, row stride ld,
// element offset off) for k0..k0+BK-1 into dst (rows x TS), zero outside.
#define STAGE(SRC, SRC4, dst, rows, nrows, row0, ld, off, k0)                       \
	if (VEC == 4) {                                                                \
		for (uint i = gl_LocalInvocationIndex; i < rows * (BK / 4); i += WG) {     \
			const uint r = i / (BK / 4);                                           \
			const uint c = (i % (BK / 4)) * 4;                                     \
			f16vec4 v = f16vec4(0.0);                                              \
			if (row0 + r < nrows && k0 + c < pc.K) {                               \
				v = SRC4[(off + (row0 + r) * ld + k0 + c) / 4];                    \
			}                                                                      \
			dst[r * TS + c] = v.x;                                                 \
			dst[r * TS + c + 1] = v.y;                                             \
			dst[r * TS + c + 2] = v.z;                                             \
			dst[r * TS + c + 3] = v.w;                                             \
		}                                                                          \
	} else {                                                                       \
		for (uint i = gl_LocalInvocationIndex; i < rows * BK; i += WG) {           \
			const uint r = i / BK;                                                 \
			const uint c = i % BK;                                                 \
			float16_t v = float16_t(0.0);                                          \
			if (row0 + r < nrows && k0 + c < pc.K) {                               \
				v = SRC[off + (row0 + r) * ld + k0 + c];                           \
			}                                                                      \
			dst[r * TS + c] = v;                                                   \
		}                                                                          \
	}

void main() {
	const uint row0 = gl_WorkGroupID.y * BM;
	const uint col0 = gl_WorkGroupID.x * BN;
	// Every invocation runs the same number of passes, so the barriers
	// below stay in uniform control flow.
	const uint passes = (NSG + gl_NumSubgroups - 1) / gl_NumSubgroups;

	for (uint pass = 0; pass < passes; pass++) {
		const uint sg = pass * gl_NumSubgroups + gl_SubgroupID;
		const bool busy = sg < NSG;
		const uint sm = sg / SN;
		const uint sn = sg % SN;

		coopmat<float, gl_ScopeSubgroup, LM, LN, gl_MatrixUseAccumulator> acc[TM * TN];
		for (uint t = 0; t < TM * TN; t++) {
			acc[t] = coopmat<float, gl_ScopeSubgroup, LM, LN, gl_MatrixUseAccumulator>(0.0);
		}

		for (uint k0 = 0; k0 < pc.K; k0 += BK) {
			barrier();
			STAGE(X, X4, xs, BM, pc.M, row0, pc.ldx, pc.x_off, k0)
			STAGE(W, W4, ws, BN, pc.N, col0, pc.ldw, pc.w_off, k0)
			barrier();
			if (busy) {
				for (uint kt = 0; kt < KT; kt++) {
					coopmat<float16_t, gl_ScopeSubgroup, LK, LN, gl_MatrixUseB> b[TN];
					for (uint j = 0; j < TN; j++) {
						const uint n = (sn * TN + j) * LN;
						coopMatLoad(b[j], ws, n * TS + kt * LK, TS, gl_CooperativeMatrixLayoutColumnMajor);
					}
					for (uint i = 0; i < TM; i++) {
						const uint m = (sm * TM + i) * LM;
						coopmat<float16_t, gl_ScopeSubgroup, LM, LK, gl_MatrixUseA> a;
						coopMatLoad(a, xs, m * TS + kt * LK, TS, gl_CooperativeMatrixLayoutRowMajor);
						for (uint j = 0; j < TN; j++) {
							acc[i * TN + j] = coopMatMulAdd(a, b[j], acc[i * TN + j]);
						}
					}
				}
			}
		}

		if (busy) {
			const uint base = gl_SubgroupID * LM * LN;
			for (uint i = 0; i < TM; i++) {
				for (uint j = 0; j < TN; j++) {
					coopMatStore(acc[i * TN + j], scratch, base, LN, gl_CooperativeMatrixLayoutRowMajor);
					subgroupBarrier();
					const uint r0 = row0 + (sm * TM + i) * LM;
					const uint c0 = col0 + (sn * TN + j) * LN;
					for (uint e = gl_SubgroupInvocationID; e < LM * LN; e += gl_SubgroupSize) {
						const uint row = r0 + e / LN;
						const uint col = c0 + e % LN;
						if (row < pc.M && col < pc.N) {
							float v = scratch[base + e];
							if (pc.has_bias != 0) {
								v += float(B[pc.b_off + col]);
							}
							Y[pc.y_off + row * pc.ldy + col] = float16_t(v);
						}
					}
					subgroupBarrier();
				}
			}
		}
	}
}
