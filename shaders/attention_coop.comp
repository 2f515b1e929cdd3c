#version 450
// attention_coop.comp: fused multi-head attention in fp16 on cooperative
// matrices: the bindings, push constants, key splits, output layout and
// semantics of attention.comp's fp16 variant (see there: Q, KV and the
// direct output O hold float16_t; the partials O and ML are float32), with
// Q K^T and P V computed by the device's VK_KHR_cooperative_matrix shape
// LM x LN x LK (fp16 A and B, fp32 accumulator, subgroup scope).
//
// compiler: GL_KHR_cooperative_matrix (glslang 13 or later; Debian 12's
// glslc is older: build.sh uses Debian 13's, see scripts/trixie.sh)
//
// Workgroup (x, y, z) takes queries [x*BQ, x*BQ + BQ) of head
// h = y % heads, batch element b = y / heads, and the keys
// [z*keys_per_split, min((z+1)*keys_per_split, nk)). Dispatch grid:
// (ceil(nq / BQ), heads * batch, splits). It stages its BQ query rows
// once, then per block of BK keys:
//   1. stages the key and value rows and the keys' flags (0: past the
//      split, 1: masked, 2: kept),
//   2. S = Q K^T, BQ x BK, in LM x LN tiles shared out over the subgroups
//      (K read column major from the staged rows is K^T),
//   3. one invocation per query scales its logits (-FLT_MAX where masked),
//      updates the running max m and sum l, writes P = exp(s - m) as half
//      (0 past the split) and the factor that rescales the accumulator,
//   4. O = O * factor + P V, O being a BQ x DH fp32 accumulator in shared
//      memory that the subgroups load, multiply-add into and store back.
// Rows past nq and columns past dh are staged as zeros; DH is dh rounded up
// to a multiple of LK and LN. Every value of P is rounded to half before it
// enters both P V and l, so the normalisation matches what was summed.
//
// Shared memory: 2*(BQ + 2*BK)*(DH + 8) + 2*BQ*(BK + 8)
// + 4*(BQ*(BK + 4) + BQ*(DH + 4) + 3*BQ + BK) bytes.
// The workgroup is WG invocations, whole subgroups; any subgroup count works.

#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require

layout(constant_id = 0) const uint LM = 16;
layout(constant_id = 1) const uint LN = 16;
layout(constant_id = 2) const uint LK = 16;
layout(constant_id = 3) const uint BQ = 32; // queries per workgroup, a multiple of LM
layout(constant_id = 4) const uint BK = 32; // keys per block, a multiple of LN and LK
layout(constant_id = 5) const uint DH = 64; // dh rounded up to a multiple of LK and LN
layout(constant_id = 6) const uint WG = 128;

layout(local_size_x_id = 6) in;

layout(std430, set = 0, binding = 0) readonly buffer QBuf { float16_t Q[]; };
layout(std430, set = 0, binding = 1) readonly buffer KVBuf { float16_t KV[]; };
layout(std430, set = 0, binding = 2) readonly buffer MaskBuf { uint Mask[]; };
layout(std430, set = 0, binding = 3) writeonly buffer OBuf { float16_t O[]; };
layout(std430, set = 0, binding = 3) writeonly buffer PBuf { float P[]; };
layout(std430, set = 0, binding = 4) writeonly buffer MLBuf { float ML[]; };

#include "push/attention.glsl"

const uint RS = DH + 8; // padded row length of the staged Q, K and V rows (halves)
const uint SS = BK + 4; // of S (floats)
const uint PS = BK + 8; // of P (halves)
const uint OS = DH + 4; // of the accumulator (floats)

shared float16_t qs[BQ * RS];
shared float16_t ks[BK * RS];
shared float16_t vs[BK * RS];
shared float ss[BQ * SS];
shared float16_t ps[BQ * PS];
shared float acc[BQ * OS];
shared float mrow[BQ];
shared float lrow[BQ];
shared float frow[BQ]; // the factor that rescales the accumulator's row
shared uint flag[BK];

void main() {
	const float NEG_INF = uintBitsToFloat(0xff800000u);
	const float NEG_MAX = uintBitsToFloat(0xff7fffffu);

	const uint tid = gl_LocalInvocationIndex;
	const uint h = gl_WorkGroupID.y % pc.heads;
	const uint b = gl_WorkGroupID.y / pc.heads;
	const uint q0 = gl_WorkGroupID.x * BQ;
	const uint z = gl_WorkGroupID.z;
	const uint dh = pc.dh;
	const bool bvalid = b < pc.batch;

	uint k0 = z * pc.keys_per_split;
	uint k1 = k0;
	if (k0 < pc.nk) {
		k1 = min(pc.nk - k0, pc.keys_per_split) + k0;
	}

	const uint qbase = pc.q_off + b * pc.q_bstride + h * dh;
	for (uint i = tid; i < BQ * DH; i += WG) {
		const uint r = i / DH;
		const uint d = i % DH;
		float16_t v = float16_t(0.0);
		if (bvalid && q0 + r < pc.nq && d < dh) {
			v = Q[qbase + (q0 + r) * pc.ldq + d];
		}
		qs[r * RS + d] = v;
		acc[r * OS + d] = 0.0;
	}
	for (uint r = tid; r < BQ; r += WG) {
		mrow[r] = NEG_INF;
		lrow[r] = 0.0;
	}

	const uint kvbase = pc.kv_off + b * pc.kv_bstride + h * dh;
	const uint mbase = pc.mask_off + b * pc.mask_bstride;
	for (uint key = k0; key < k1; key += BK) {
		barrier(); // the previous block's readers are done
		for (uint i = tid; i < BK * DH; i += WG) {
			const uint j = i / DH;
			const uint d = i % DH;
			float16_t kv = float16_t(0.0);
			float16_t vv = float16_t(0.0);
			if (bvalid && key + j < k1 && d < dh) {
				const uint e = kvbase + (key + j) * pc.ldkv + d;
				kv = KV[e + pc.koff];
				vv = KV[e + pc.voff];
			}
			ks[j * RS + d] = kv;
			vs[j * RS + d] = vv;
		}
		for (uint j = tid; j < BK; j += WG) {
			uint f = 0;
			if (key + j < k1) {
				f = 2;
				if (pc.has_mask != 0 && bvalid && Mask[mbase + key + j] == 0) {
					f = 1;
				}
			}
			flag[j] = f;
		}
		barrier();

		// 2. S = Q K^T.
		for (uint t = gl_SubgroupID; t < (BQ / LM) * (BK / LN); t += gl_NumSubgroups) {
			const uint tm = t / (BK / LN);
			const uint tn = t % (BK / LN);
			coopmat<float, gl_ScopeSubgroup, LM, LN, gl_MatrixUseAccumulator> s =
				coopmat<float, gl_ScopeSubgroup, LM, LN, gl_MatrixUseAccumulator>(0.0);
			for (uint kk = 0; kk < DH; kk += LK) {
				coopmat<float16_t, gl_ScopeSubgroup, LM, LK, gl_MatrixUseA> qa;
				coopmat<float16_t, gl_ScopeSubgroup, LK, LN, gl_MatrixUseB> kb;
				coopMatLoad(qa, qs, tm * LM * RS + kk, RS, gl_CooperativeMatrixLayoutRowMajor);
				coopMatLoad(kb, ks, tn * LN * RS + kk, RS, gl_CooperativeMatrixLayoutColumnMajor);
				s = coopMatMulAdd(qa, kb, s);
			}
			coopMatStore(s, ss, tm * LM * SS + tn * LN, SS, gl_CooperativeMatrixLayoutRowMajor);
		}
		barrier();

		// 3. Online softmax, one invocation per query. The block's first
		// key is inside the split, so the new maximum is finite and
		// exp(m - mn) never sees -inf - -inf.
		for (uint r = tid; r < BQ; r += WG) {
			const float mold = mrow[r];
			float mn = mold;
			for (uint j = 0; j < BK; j++) {
				const uint f = flag[j];
				if (f != 0) {
					const float s = f == 2 ? ss[r * SS + j] * pc.scale : NEG_MAX;
					ss[r * SS + j] = s;
					mn = max(mn, s);
				}
			}
			float sum = 0.0;
			for (uint j = 0; j < BK; j++) {
				float16_t p = float16_t(0.0);
				if (flag[j] != 0) {
					p = float16_t(exp(ss[r * SS + j] - mn));
				}
				ps[r * PS + j] = p;
				sum += float(p);
			}
			const float f = exp(mold - mn);
			frow[r] = f;
			lrow[r] = lrow[r] * f + sum;
			mrow[r] = mn;
		}
		barrier();
		for (uint i = tid; i < BQ * DH; i += WG) {
			const uint r = i / DH;
			acc[r * OS + i % DH] *= frow[r];
		}
		barrier();

		// 4. O += P V.
		for (uint t = gl_SubgroupID; t < (BQ / LM) * (DH / LN); t += gl_NumSubgroups) {
			const uint tm = t / (DH / LN);
			const uint tn = t % (DH / LN);
			coopmat<float, gl_ScopeSubgroup, LM, LN, gl_MatrixUseAccumulator> o;
			coopMatLoad(o, acc, tm * LM * OS + tn * LN, OS, gl_CooperativeMatrixLayoutRowMajor);
			for (uint kk = 0; kk < BK; kk += LK) {
				coopmat<float16_t, gl_ScopeSubgroup, LM, LK, gl_MatrixUseA> pa;
				coopmat<float16_t, gl_ScopeSubgroup, LK, LN, gl_MatrixUseB> vb;
				coopMatLoad(pa, ps, tm * LM * PS + kk, PS, gl_CooperativeMatrixLayoutRowMajor);
				coopMatLoad(vb, vs, kk * RS + tn * LN, RS, gl_CooperativeMatrixLayoutRowMajor);
				o = coopMatMulAdd(pa, vb, o);
			}
			coopMatStore(o, acc, tm * LM * OS + tn * LN, OS, gl_CooperativeMatrixLayoutRowMajor);
		}
	}
	barrier();

	if (!bvalid) {
		return;
	}
	if (pc.direct != 0) {
		for (uint i = tid; i < BQ * DH; i += WG) {
			const uint r = i / DH;
			const uint d = i % DH;
			if (q0 + r < pc.nq && d < dh) {
				O[pc.o_off + (b * pc.nq + q0 + r) * pc.ldo + h * dh + d] = float16_t(acc[r * OS + d] / lrow[r]);
			}
		}
	} else {
		const uint s = pc.slot_base + z;
		if (s >= pc.nslots_total) {
			return;
		}
		const uint idx0 = ((s * pc.batch + b) * pc.heads + h) * pc.nq + q0;
		for (uint i = tid; i < BQ * DH; i += WG) {
			const uint r = i / DH;
			const uint d = i % DH;
			if (q0 + r < pc.nq && d < dh) {
				P[pc.o_off + (idx0 + r) * dh + d] = acc[r * OS + d];
			}
		}
		for (uint r = tid; r < BQ; r += WG) {
			if (q0 + r < pc.nq) {
				ML[(idx0 + r) * 2] = mrow[r];
				ML[(idx0 + r) * 2 + 1] = lrow[r];
			}
		}
	}
}
