#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_quad : require
#extension GL_EXT_samplerless_texture_functions : require
// attention_tex.comp: attention.comp for CPU rasterisers (lavapipe), reading
// Q and KV through uniform texel buffers. Same bindings, push constants and
// output contract as attention.comp, except that bindings 0 (Q) and 1 (KV)
// are uniform texel buffers of four-float texels (R32G32B32A32_SFLOAT) and
// binding 3 (O) is a storage texel buffer of them (rgba32f imageBuffer):
// texel t holds elements 4t .. 4t+3 of the bound range. On lavapipe a
// texel store costs about what a storage-buffer store of one float does. Workgroup (x, y, z)
// covers queries [x*WG*QT, (x+1)*WG*QT) of head h = y % heads and batch
// element b = y / heads over the keys [z*keys_per_split,
// min((z+1)*keys_per_split, nk)); grid (ceil(nq / (WG*QT)), heads*batch,
// splits). No shared memory, no barriers.
//
// Layout as attention.comp: query q of batch b, head h, dim d is
//   Q[q_off + b*q_bstride + q*ldq + h*dh + d];
// key and value j are
//   KV[kv_off + b*kv_bstride + j*ldkv + koff + h*dh + d] and the same with voff;
// the key mask is Mask[mask_off + b*mask_bstride + j] (nonzero = keep).
// The host keeps dh (== DH), q_off, ldq, q_bstride, kv_off, ldkv,
// kv_bstride, koff, voff, o_off and ldo multiples of 4, so every row starts
// on a texel.
//
// On lavapipe a storage-buffer load is a loop over the SIMD lanes with a
// branch per lane, and a texelFetch is a call that loads one texel per lane,
// while a subgroupQuadBroadcast with a constant lane is a cheap shuffle.
// Invocation t (numbered in subgroup order) owns queries
// x*WG*QT + t + i*WG, i < QT, keeps their q and accumulators in registers
// (DH/4 vec4s each), and every thread reads the same key and value rows:
// lane li of a quad fetches texels li, li + 4, ... of a row and four quad
// broadcasts per fetch give each lane of the quad the whole row (fetchRow).
// Queries past nq are clamped for loading and not stored, so control flow
// stays uniform. The device needs subgroup quad operations in compute
// shaders, and WG must be whole subgroups and a multiple of 4.
//
// Keys go in blocks of BK: the logits s = (q . k) * scale of the block's
// keys (-FLT_MAX where masked, -inf for keys past the split's end, whose
// rows are clamped to its last key), one online-softmax step for the block
// (m' = max(m, max s), acc and l scaled by exp(m - m')), then
// acc += exp(s - m') * v for its keys in one update per accumulator, as in
// attention.comp (m == -inf is never subtracted from itself: a block's
// first key is always in range, so m' is finite; a split with no keys
// leaves m = -inf, l = 0, acc = 0). The key loop is the only loop that is
// not unrolled: one iteration per block (lavapipe's loop cap, see
// ops.lavapipeLoopBudget). On lavapipe the exec mask makes every update of
// a loop-carried value a load, blend and store, so fewer, larger updates
// pay: 8 queries per invocation in blocks of 4 keys ran the ISAB shapes
// about 1.2-1.4x faster than 4 queries one key at a time.
//
// Output as attention.comp: direct == 1 writes acc / l to
//   O[o_off + (b*nq + q)*ldo + h*dh + d];
// otherwise slot s = slot_base + z writes the partial acc to
//   O[o_off + (((s*batch + b)*heads + h)*nq + q)*dh + d] and
//   ML[(((s*batch + b)*heads + h)*nq + q)*2 + {0, 1}] = (m, l).
//
// Spec constants 0-3 have the ids and meanings of attention_cpu.comp's
// (ops configures both through one type), and the host may pass
// attention_cpu's ids 4 to 6, which this shader ignores.
//
// variants: f16 (built with -DF16: Q and KV are texel buffers of four
// halves, R16G16B16A16_SFLOAT views; O is declared without a format, so the
// view decides: halves for the direct output, four floats for the partial
// results, which stay float32 as in attention_f16; the device needs
// shaderStorageImageWriteWithoutFormat. ML stays float32, the arithmetic
// fp32. Offsets and strides of Q, KV and the direct O count halves.)

layout(constant_id = 0) const uint WG = 8;  // invocations per workgroup
layout(constant_id = 1) const uint QT = 4;  // queries per invocation
layout(constant_id = 2) const uint DH = 64; // head width (== pc.dh, a multiple of 4)
layout(constant_id = 3) const uint BK = 1;  // keys per block

const uint DH4 = (DH + 3) / 4;

layout(local_size_x = 8, local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

layout(set = 0, binding = 0) uniform textureBuffer Qt;
layout(set = 0, binding = 1) uniform textureBuffer KVt;
layout(std430, set = 0, binding = 2) readonly buffer MaskBuf { uint Mask[]; };
#ifdef F16
layout(set = 0, binding = 3) uniform writeonly imageBuffer O;
#else
layout(set = 0, binding = 3, rgba32f) uniform writeonly imageBuffer O;
#endif
layout(std430, set = 0, binding = 4) writeonly buffer MLBuf { float ML[]; };

#include "push/attention.glsl"

// store4 writes r to elements e + 4j .. e + 4j + 3 of O, one texel (e is a
// multiple of 4). In the fp16 variant the direct output is rounded to the
// nearest half first: lavapipe converts to a half image by truncation, and
// then stores the rounded value exactly (the partials stay float32).
void store4(uint e, uint j, vec4 r) {
#ifdef F16
	if (pc.direct != 0) {
		r = vec4(unpackHalf2x16(packHalf2x16(r.xy)), unpackHalf2x16(packHalf2x16(r.zw)));
	}
#endif
	imageStore(O, int(e / 4 + j), r);
}

// fetchRow reads the DH4 texels of the row at texel t0, which every thread
// of the quad reads: lane li fetches texels 4c + li and four quad broadcasts
// hand each lane all four, so a row takes ceil(DH4/4) fetches per thread.
void fetchRow(int t0, uint li, out vec4 row[DH4]) {
	[[unroll]] for (uint c = 0; c < (DH4 + 3) / 4; c++) {
		const vec4 v = texelFetch(KVt, t0 + int(min(4 * c + li, DH4 - 1)));
		vec4 r4[4];
		r4[0] = subgroupQuadBroadcast(v, 0u);
		r4[1] = subgroupQuadBroadcast(v, 1u);
		r4[2] = subgroupQuadBroadcast(v, 2u);
		r4[3] = subgroupQuadBroadcast(v, 3u);
		[[unroll]] for (uint r = 0; r < 4; r++) {
			if (4 * c + r < DH4) {
				row[4 * c + r] = r4[r];
			}
		}
	}
}

void main() {
	const float NEG_INF = uintBitsToFloat(0xff800000u);
	const float NEG_MAX = uintBitsToFloat(0xff7fffffu);

	// Thread index in the workgroup, in subgroup order, so that quads are
	// four consecutive subgroup invocations.
	const uint lx = gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID;
	const uint li = lx & 3u;
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
		const int qt = int((pc.q_off + b * pc.q_bstride + q * pc.ldq + h * dh) / 4);
		[[unroll]] for (uint j = 0; j < DH4; j++) {
			qr[i * DH4 + j] = texelFetch(Qt, qt + int(j));
			acc[i * DH4 + j] = vec4(0.0);
		}
		m[i] = NEG_INF;
		l[i] = 0.0;
	}

	// Texel of key k0's key row and value row, and the texels between rows.
	const uint kvbase = pc.kv_off + b * pc.kv_bstride + h * dh;
	int kt = int((kvbase + k0 * pc.ldkv + pc.koff) / 4);
	int vt = int((kvbase + k0 * pc.ldkv + pc.voff) / 4);
	const int ld4 = int(pc.ldkv / 4);
	const uint mbase = pc.mask_off + b * pc.mask_bstride;

	// Keys in blocks of BK: the scores of a block first (keys past k1,
	// whose rows are clamped to the last key, score -inf and weigh 0), then
	// one online-softmax rescale for the block, then its values. The first
	// key of a block is always in range, so the block maximum mn is finite
	// and exp(s - mn) never sees -inf - -inf.
	for (uint key = k0; key < k1; key += BK) {
		float s[QT * BK];
		[[unroll]] for (uint kb = 0; kb < BK; kb++) {
			const uint kk = min(key + kb, k1 - 1);
			const int off = int(kk - key) * ld4;
			// The whole row first: on lavapipe (Mesa 22.3) that ran about
			// 1.3x faster than fetching each texel next to its arithmetic.
			vec4 krow[DH4];
			fetchRow(kt + off, li, krow);
			vec4 dot4[QT];
			[[unroll]] for (uint i = 0; i < QT; i++) {
				dot4[i] = vec4(0.0);
			}
			[[unroll]] for (uint j = 0; j < DH4; j++) {
				[[unroll]] for (uint i = 0; i < QT; i++) {
					dot4[i] += qr[i * DH4 + j] * krow[j];
				}
			}
			bool keep = true;
			if (pc.has_mask != 0) {
				keep = Mask[mbase + kk] != 0u;
			}
			[[unroll]] for (uint i = 0; i < QT; i++) {
				const float sv = ((dot4[i].x + dot4[i].y) + (dot4[i].z + dot4[i].w)) * pc.scale;
				s[i * BK + kb] = key + kb >= k1 ? NEG_INF : (keep ? sv : NEG_MAX);
			}
		}
		float corr[QT];
		[[unroll]] for (uint i = 0; i < QT; i++) {
			float mn = m[i];
			[[unroll]] for (uint kb = 0; kb < BK; kb++) {
				mn = max(mn, s[i * BK + kb]);
			}
			corr[i] = (m[i] == mn) ? 1.0 : exp(m[i] - mn);
			float sum = 0.0;
			[[unroll]] for (uint kb = 0; kb < BK; kb++) {
				s[i * BK + kb] = exp(s[i * BK + kb] - mn);
				sum += s[i * BK + kb];
			}
			l[i] = l[i] * corr[i] + sum;
			m[i] = mn;
		}
		// All value rows of the block, then each accumulator once: the
		// rescale and the block's BK terms in one update.
		vec4 vrow[BK * DH4];
		[[unroll]] for (uint kb = 0; kb < BK; kb++) {
			const int off = int(min(key + kb, k1 - 1) - key) * ld4;
			vec4 row[DH4];
			fetchRow(vt + off, li, row);
			[[unroll]] for (uint j = 0; j < DH4; j++) {
				vrow[kb * DH4 + j] = row[j];
			}
		}
		[[unroll]] for (uint j = 0; j < DH4; j++) {
			[[unroll]] for (uint i = 0; i < QT; i++) {
				vec4 a = acc[i * DH4 + j] * corr[i];
				[[unroll]] for (uint kb = 0; kb < BK; kb++) {
					a += s[i * BK + kb] * vrow[kb * DH4 + j];
				}
				acc[i * DH4 + j] = a;
			}
		}
		kt += int(BK) * ld4;
		vt += int(BK) * ld4;
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
}
