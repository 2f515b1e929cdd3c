#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
// attention_cpu.comp: attention.comp for CPU rasterisers (lavapipe). Same
// bindings, push constants and output contract as attention.comp; workgroup
// (x, y, z) covers queries [x*WG*QT, (x+1)*WG*QT) of head h = y % heads and
// batch element b = y / heads over the keys [z*keys_per_split,
// min((z+1)*keys_per_split, nk)); grid (ceil(nq / (WG*QT)), heads*batch,
// splits). No shared memory, no barriers.
//
// Layout as attention.comp: query q of batch b, head h, dim d is
//   Q[q_off + b*q_bstride + q*ldq + h*dh + d];
// key and value j are
//   KV[kv_off + b*kv_bstride + j*ldkv + koff + h*dh + d] and the same with voff;
// the key mask is Mask[mask_off + b*mask_bstride + j] (nonzero = keep).
//
// lavapipe runs a workgroup of 8 invocations as one 8-lane SIMD program and
// turns every buffer load into a loop over the lanes, so what counts is
// loads per multiply-add. Invocation t owns queries x*WG*QT + t + i*WG,
// i < QT, with their q and accumulators in registers (DH4 = ceil(DH/4)
// vec4s each); queries past nq are clamped for loading and not stored, so
// control flow stays uniform. Every invocation needs every key and value row
// of the split:
//   SHARE = 1: the subgroup loads each row once, invocation s taking vec4s
//     s, s + 8, ..., and hands the pieces round with subgroupBroadcast (on
//     lavapipe a short loop over the lanes, about half the cost of the
//     load it saves). Needs WG == gl_SubgroupSize == 8; the host checks.
//   SHARE = 0: each invocation loads the rows itself (any subgroup size).
// DH must equal dh. VEC = 1: vec4 loads; the host checks that dh, q_off,
// ldq, q_bstride, kv_off, ldkv, kv_bstride, koff and voff are multiples of
// 4. VEC = 2: u64vec4 loads of 8 floats each (lavapipe's load loop runs
// once per lane per component, whatever its width, so that halves the cost
// of a vec4 load per float; unpacked with unpackUint2x32, bit-exact); the
// host checks that those are multiples of 8 and that the device has
// shaderInt64 (the module declares Int64 whatever VEC is). VEC = 0: vec4s
// composed of scalar loads (any layout; dims past dh read as 0).
//
// PF > 0: at each block the invocations touch the key and value rows PF
// blocks ahead (one scalar load each, invocation s at dim min(16s, DH-1):
// a 64-byte line apiece), so that their cache misses overlap the work on
// the current block instead of stalling the row loads one after another.
// The touched values feed a store that never runs (nq is never 0), which
// keeps the loads alive.
//
// Per block of BK keys: logits s = (q . k) * scale (-FLT_MAX where masked),
// the block max, the online-softmax rescale, then acc += exp(s - m) * v as
// in attention.comp (m == -inf is never subtracted from itself; a split
// with no keys leaves m = -inf, l = 0, acc = 0). The key loop is the only
// loop that is not unrolled: ceil(keys / BK) iterations per invocation
// (lavapipe's loop cap, see ops.lavapipeLoopBudget).
//
// Output as attention.comp: direct == 1 writes acc / l to
//   O[o_off + (b*nq + q)*ldo + h*dh + d];
// otherwise slot s = slot_base + z writes the partial acc to
//   O[o_off + (((s*batch + b)*heads + h)*nq + q)*dh + d] and
//   ML[(((s*batch + b)*heads + h)*nq + q)*2 + {0, 1}] = (m, l).

layout(constant_id = 0) const uint WG = 8;    // invocations per workgroup
layout(constant_id = 1) const uint QT = 4;    // queries per invocation
layout(constant_id = 2) const uint DH = 64;   // head width (== pc.dh)
layout(constant_id = 3) const uint BK = 1;    // keys per block
layout(constant_id = 4) const uint VEC = 0;   // 1: vec4 loads (see above)
layout(constant_id = 5) const uint SHARE = 0; // 1: subgroup-shared row loads
layout(constant_id = 6) const uint PF = 0;    // touch rows PF blocks ahead (0: off)

const uint DH4 = (DH + 3) / 4;
const uint NP = (DH4 + 7) / 8; // vec4s per invocation of a shared row
const uint DH8 = (DH + 7) / 8;
const uint NP8 = (DH8 + 7) / 8; // u64vec4s per invocation of a shared row (VEC = 2)

layout(local_size_x = 8, local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

layout(std430, set = 0, binding = 0) readonly buffer QBuf { float Q[]; };
layout(std430, set = 0, binding = 1) readonly buffer KVBuf { float KV[]; };
layout(std430, set = 0, binding = 0) readonly buffer QBuf4 { vec4 Q4[]; };
layout(std430, set = 0, binding = 1) readonly buffer KVBuf4 { vec4 KV4[]; };
layout(std430, set = 0, binding = 0) readonly buffer QBuf8 { u64vec4 Q8[]; };
layout(std430, set = 0, binding = 1) readonly buffer KVBuf8 { u64vec4 KV8[]; };
layout(std430, set = 0, binding = 2) readonly buffer MaskBuf { uint Mask[]; };
layout(std430, set = 0, binding = 3) writeonly buffer OBuf { float O[]; };
layout(std430, set = 0, binding = 4) writeonly buffer MLBuf { float ML[]; };

#include "push/attention.glsl"

// The 4 floats packed in two 64-bit components.
vec4 unpack4(uint64_t a, uint64_t b) {
	return uintBitsToFloat(uvec4(unpackUint2x32(a), unpackUint2x32(b)));
}

// Dims 4j .. 4j+3 of the row at element e: half a u64vec4 load (VEC = 2, e
// a multiple of 8), one vec4 load (VEC = 1, e a multiple of 4) or up to four
// scalar ones, zeros past DH.
vec4 loadQ(uint e, uint j) {
	if (VEC == 2) {
		const u64vec4 w = Q8[e / 8 + j / 2];
		return j % 2 == 0 ? unpack4(w.x, w.y) : unpack4(w.z, w.w);
	}
	if (VEC != 0) {
		return Q4[e / 4 + j];
	}
	vec4 r = vec4(0.0);
	[[unroll]] for (uint c = 0; c < 4; c++) {
		if (4 * j + c < DH) {
			r[c] = Q[e + 4 * j + c];
		}
	}
	return r;
}

vec4 loadKV(uint e, uint j) {
	if (VEC == 2) {
		const u64vec4 w = KV8[e / 8 + j / 2];
		return j % 2 == 0 ? unpack4(w.x, w.y) : unpack4(w.z, w.w);
	}
	if (VEC != 0) {
		return KV4[e / 4 + j];
	}
	vec4 r = vec4(0.0);
	[[unroll]] for (uint c = 0; c < 4; c++) {
		if (4 * j + c < DH) {
			r[c] = KV[e + 4 * j + c];
		}
	}
	return r;
}

void store4(uint e, uint j, vec4 r) {
	[[unroll]] for (uint c = 0; c < 4; c++) {
		if (4 * j + c < DH) {
			O[e + 4 * j + c] = r[c];
		}
	}
}

// v of invocation s < 8 of the subgroup. The switch keeps the id a
// constant, as subgroupBroadcast needs before SPIR-V 1.5; callers pass
// constants (unrolled loops), so it folds away.
vec4 bcast(vec4 v, uint s) {
	switch (s) {
	case 0: return subgroupBroadcast(v, 0);
	case 1: return subgroupBroadcast(v, 1);
	case 2: return subgroupBroadcast(v, 2);
	case 3: return subgroupBroadcast(v, 3);
	case 4: return subgroupBroadcast(v, 4);
	case 5: return subgroupBroadcast(v, 5);
	case 6: return subgroupBroadcast(v, 6);
	default: return subgroupBroadcast(v, 7);
	}
}

uint bcastu(uint v, uint s) {
	switch (s) {
	case 0: return subgroupBroadcast(v, 0);
	case 1: return subgroupBroadcast(v, 1);
	case 2: return subgroupBroadcast(v, 2);
	case 3: return subgroupBroadcast(v, 3);
	case 4: return subgroupBroadcast(v, 4);
	case 5: return subgroupBroadcast(v, 5);
	case 6: return subgroupBroadcast(v, 6);
	default: return subgroupBroadcast(v, 7);
	}
}

// This invocation's piece p of the key or value row at element e when
// sharing: vec4 lane + 8p (VEC < 2), or 8 floats lane + 8p (VEC = 2, in
// part8).
void loadPart(uint e, uint p, out vec4 part, out u64vec4 part8) {
	part = vec4(0.0);
	part8 = u64vec4(0);
	if (SHARE != 0) {
		if (VEC == 2) {
			part8 = KV8[e / 8 + min(gl_SubgroupInvocationID + p * 8, DH8 - 1)];
		} else {
			part = loadKV(e, min(gl_SubgroupInvocationID + p * 8, DH4 - 1));
		}
	}
}

// Row vec4 j of the key or value row at element e, for every invocation;
// part and part8 hold this invocation's pieces of that row when sharing
// (loadPart).
vec4 rowVec(uint e, uint j, vec4 part[NP], u64vec4 part8[NP8]) {
	if (SHARE != 0) {
		if (VEC == 2) {
			const u64vec4 u = part8[j / 16];
			return bcast(j % 2 == 0 ? unpack4(u.x, u.y) : unpack4(u.z, u.w), (j / 2) % 8);
		}
		return bcast(part[j / 8], j % 8);
	}
	return loadKV(e, j);
}

void main() {
	const float NEG_INF = uintBitsToFloat(0xff800000u);
	const float NEG_MAX = uintBitsToFloat(0xff7fffffu);

	const uint lx = gl_LocalInvocationID.x;
	const uint lane = gl_SubgroupInvocationID;
	const uint h = gl_WorkGroupID.y % pc.heads;
	const uint b = gl_WorkGroupID.y / pc.heads;
	const uint qfirst = gl_WorkGroupID.x * (WG * QT) + lx;
	const uint z = gl_WorkGroupID.z;
	const uint dh = pc.dh;

	uint k0 = z * pc.keys_per_split;
	uint k1 = k0;
	if (k0 < pc.nk) {
		k1 = min(pc.nk - k0, pc.keys_per_split) + k0;
	}

	vec4 qr[QT * DH4];
	vec4 acc[QT * DH4];
	float m[QT];
	float l[QT];
	[[unroll]] for (uint i = 0; i < QT; i++) {
		const uint q = min(qfirst + i * WG, pc.nq - 1);
		const uint qb = pc.q_off + b * pc.q_bstride + q * pc.ldq + h * dh;
		[[unroll]] for (uint j = 0; j < DH4; j++) {
			qr[i * DH4 + j] = loadQ(qb, j);
			acc[i * DH4 + j] = vec4(0.0);
		}
		m[i] = NEG_INF;
		l[i] = 0.0;
	}

	const uint kvbase = pc.kv_off + b * pc.kv_bstride + h * dh;
	const uint mbase = pc.mask_off + b * pc.mask_bstride;

	uint touch = 0u;
	for (uint kb = k0; kb < k1; kb += BK) {
		const uint nv = min(BK, k1 - kb);

		if (PF != 0) {
			const uint nr = kvbase + min(kb + PF * BK, k1 - 1) * pc.ldkv + min(lane * 16, DH - 1);
			touch ^= floatBitsToUint(KV[nr + pc.koff]) ^ floatBitsToUint(KV[nr + pc.voff]);
		}

		// Keep flags: invocation s loads key kb + s's when sharing.
		uint mk = 1u;
		if (SHARE != 0 && pc.has_mask != 0) {
			mk = Mask[mbase + min(kb + min(lane, BK - 1), k1 - 1)];
		}

		float s[QT * BK];
		[[unroll]] for (uint kk = 0; kk < BK; kk++) {
			// Keys past the range repeat the last one (in bounds) and get
			// weight 0 below.
			const uint key = min(kb + kk, k1 - 1);
			const uint kr = kvbase + key * pc.ldkv + pc.koff;
			vec4 part[NP];
			u64vec4 part8[NP8];
			[[unroll]] for (uint p = 0; p < max(NP, NP8); p++) {
				vec4 a;
				u64vec4 w;
				loadPart(kr, p, a, w);
				if (p < NP) {
					part[p] = a;
				}
				if (p < NP8) {
					part8[p] = w;
				}
			}
			vec4 dot4[QT];
			[[unroll]] for (uint i = 0; i < QT; i++) {
				dot4[i] = vec4(0.0);
			}
			[[unroll]] for (uint j = 0; j < DH4; j++) {
				const vec4 kv = rowVec(kr, j, part, part8);
				[[unroll]] for (uint i = 0; i < QT; i++) {
					dot4[i] += qr[i * DH4 + j] * kv;
				}
			}
			bool keep = true;
			if (pc.has_mask != 0) {
				if (SHARE != 0) {
					keep = bcastu(mk, kk) != 0u;
				} else {
					keep = Mask[mbase + key] != 0u;
				}
			}
			[[unroll]] for (uint i = 0; i < QT; i++) {
				const float sv = ((dot4[i].x + dot4[i].y) + (dot4[i].z + dot4[i].w)) * pc.scale;
				s[i * BK + kk] = keep ? sv : NEG_MAX;
			}
		}

		float mn[QT];
		[[unroll]] for (uint i = 0; i < QT; i++) {
			float bm = s[i * BK];
			[[unroll]] for (uint kk = 1; kk < BK; kk++) {
				if (kk < nv) {
					bm = max(bm, s[i * BK + kk]);
				}
			}
			mn[i] = max(m[i], bm);
			const float corr = (m[i] == mn[i]) ? 1.0 : exp(m[i] - mn[i]);
			l[i] *= corr;
			[[unroll]] for (uint j = 0; j < DH4; j++) {
				acc[i * DH4 + j] *= corr;
			}
			m[i] = mn[i];
		}

		[[unroll]] for (uint kk = 0; kk < BK; kk++) {
			const uint vr = kvbase + min(kb + kk, k1 - 1) * pc.ldkv + pc.voff;
			float e[QT];
			[[unroll]] for (uint i = 0; i < QT; i++) {
				e[i] = kk < nv ? exp(s[i * BK + kk] - mn[i]) : 0.0;
				l[i] += e[i];
			}
			vec4 part[NP];
			u64vec4 part8[NP8];
			[[unroll]] for (uint p = 0; p < max(NP, NP8); p++) {
				vec4 a;
				u64vec4 w;
				loadPart(vr, p, a, w);
				if (p < NP) {
					part[p] = a;
				}
				if (p < NP8) {
					part8[p] = w;
				}
			}
			[[unroll]] for (uint j = 0; j < DH4; j++) {
				const vec4 vv = rowVec(vr, j, part, part8);
				[[unroll]] for (uint i = 0; i < QT; i++) {
					acc[i * DH4 + j] += e[i] * vv;
				}
			}
		}
	}

	[[unroll]] for (uint i = 0; i < QT; i++) {
		const uint q = qfirst + i * WG;
		if (q < pc.nq) {
			if (pc.direct != 0) {
				const uint ob = pc.o_off + (b * pc.nq + q) * pc.ldo + h * dh;
				[[unroll]] for (uint j = 0; j < DH4; j++) {
					store4(ob, j, acc[i * DH4 + j] / l[i]);
				}
			} else {
				const uint sl = pc.slot_base + z;
				if (sl < pc.nslots_total) {
					const uint idx = ((sl * pc.batch + b) * pc.heads + h) * pc.nq + q;
					const uint ob = pc.o_off + idx * dh;
					[[unroll]] for (uint j = 0; j < DH4; j++) {
						store4(ob, j, acc[i * DH4 + j]);
					}
					ML[idx * 2] = m[i];
					ML[idx * 2 + 1] = l[i];
				}
			}
		}
	}
	if (PF != 0 && pc.nq == 0u) {
		O[0] = uintBitsToFloat(touch);
	}
}
