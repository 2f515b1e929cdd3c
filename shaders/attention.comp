#version 450
// attention.comp: fused multi-head attention with key splits (flash-decoding
// style). The [nq, nk] score matrix is never written.
//
// Workgroup (x, y, z) handles queries [x*BQ, x*BQ + BQ) of head h = y % heads
// and batch element b = y / heads, over the keys
// [z*keys_per_split, min((z+1)*keys_per_split, nk)). Dispatch grid:
// (ceil(nq / BQ), heads * batch, splits).
//
// Layout: query q of batch b, head h, dim d is
//   Q[q_off + b*q_bstride + q*ldq + h*dh + d];
// key and value j are
//   KV[kv_off + b*kv_bstride + j*ldkv + koff + h*dh + d] and the same with voff;
// the key mask is Mask[mask_off + b*mask_bstride + j] (nonzero = keep).
// A batch stride of 0 shares that operand across the batch.
//
// logit = (q . k) * scale, or -FLT_MAX where the key is masked (so a fully
// masked key range becomes a uniform average). Online softmax in fp32: a
// running max m (starting at -inf), a running sum l and an accumulator per
// query; m == -inf is never subtracted from itself, and a split with no keys
// leaves m = -inf, l = 0, acc = 0.
//
// Threads: TPQ = WG / BQ threads per query (the host keeps WG a multiple of
// BQ). Thread t works on query t % BQ and owns dims p + j*TPQ, p = t / BQ,
// j < NJ = MAX_DH / TPQ: those components of q and of the accumulator live
// in registers. Neighbouring threads take neighbouring queries with the same
// p, so their shared-memory reads of a key or value hit one address. Per
// block of BK keys the workgroup
//   1. stages the BK key rows and value rows in shared memory, and their
//      keep flags,
//   2. each thread forms partial dot products over its own dims,
//   3. each thread sums the TPQ partials of its query's logits, updates m and
//      l, and accumulates p * v over its own dims.
// (On lavapipe, keep NJ <= 32 and BQ >= 2: its compiler mishandled wider
// register arrays and one-query workgroups across the barriers; see
// ops.attnConfigFor.)
//
// Output: direct == 1 (one split in all) writes acc / l to
//   O[o_off + (b*nq + q)*ldo + h*dh + d];
// otherwise slot s = slot_base + z writes the unnormalized partial
//   O[o_off + (((s*batch + b)*heads + h)*nq + q)*dh + d] = acc and
//   ML[(((s*batch + b)*heads + h)*nq + q)*2 + {0, 1}] = (m, l),
// which attn_combine.comp merges.
//
// Shared memory: 4 * (2*BK*(MAX_DH + 1) + BK*WG + BK) bytes
// (10.3 KiB with the defaults BK = 8, MAX_DH = 128, WG = 64).
// dh must not exceed MAX_DH.
//
// variants: f16 (built with -DF16: Q, KV and the direct output O hold
// float16_t, needing storageBuffer16BitAccess; the partials O and ML stay
// float32, written through a float32 view of binding 3, and all arithmetic
// is fp32).

layout(constant_id = 0) const uint BQ = 16;     // queries per workgroup
layout(constant_id = 1) const uint MAX_DH = 128; // largest head width supported
layout(constant_id = 2) const uint WG = 64;     // threads per workgroup
layout(constant_id = 3) const uint BK = 8;      // keys staged per block

layout(local_size_x = 64, local_size_x_id = 2, local_size_y = 1, local_size_z = 1) in;

#ifdef F16
#extension GL_EXT_shader_16bit_storage : require
#define ELEM float16_t
#else
#define ELEM float
#endif

layout(std430, set = 0, binding = 0) readonly buffer QBuf { ELEM Q[]; };
layout(std430, set = 0, binding = 1) readonly buffer KVBuf { ELEM KV[]; };
layout(std430, set = 0, binding = 2) readonly buffer MaskBuf { uint Mask[]; };
layout(std430, set = 0, binding = 3) writeonly buffer OBuf { ELEM O[]; };
#ifdef F16
// The partials are float32 in either variant: a second view of binding 3.
layout(std430, set = 0, binding = 3) writeonly buffer PBuf { float P[]; };
#else
#define P O
#endif
layout(std430, set = 0, binding = 4) writeonly buffer MLBuf { float ML[]; };

#include "push/attention.glsl"

const uint TPQ = WG / BQ;                  // threads per query
const uint NJ = (MAX_DH + TPQ - 1) / TPQ;  // dims owned per thread
const uint KS = MAX_DH + 1;                // padded shared row length
const uint SL = (BK * MAX_DH + WG - 1) / WG; // staging loads per thread
const uint FL = (BK + WG - 1) / WG;         // keep flags per thread

shared float ks[BK * KS];
shared float vs[BK * KS];
shared float sp[BK * WG]; // partial dot products, [key][thread]
shared uint km[BK];       // keep flags of the staged keys

void main() {
	const float NEG_INF = uintBitsToFloat(0xff800000u);
	const float NEG_MAX = uintBitsToFloat(0xff7fffffu);

	const uint t = gl_LocalInvocationID.x;
	// Consecutive threads take consecutive queries and share p, so their
	// shared-memory reads of keys and values hit one address (a broadcast).
	const uint qi = t % BQ;
	const uint p = t / BQ;
	const bool live = p < TPQ;
	const uint h = gl_WorkGroupID.y % pc.heads;
	const uint b = gl_WorkGroupID.y / pc.heads;
	const uint q = gl_WorkGroupID.x * BQ + qi;
	const bool qvalid = live && q < pc.nq && b < pc.batch;
	const uint z = gl_WorkGroupID.z;
	const uint dh = pc.dh;

	uint k0 = z * pc.keys_per_split;
	uint k1 = k0;
	if (k0 < pc.nk) {
		k1 = min(pc.nk - k0, pc.keys_per_split) + k0;
	}

	float qr[NJ];
	float acc[NJ];
	const uint qbase = pc.q_off + b * pc.q_bstride + q * pc.ldq + h * dh;
	for (uint j = 0; j < NJ; j++) {
		const uint d = p + j * TPQ;
		qr[j] = 0.0;
		if (qvalid && d < dh) {
			qr[j] = float(Q[qbase + d]);
		}
		acc[j] = 0.0;
	}

	const uint kvbase = pc.kv_off + b * pc.kv_bstride + h * dh;
	const uint mbase = pc.mask_off + b * pc.mask_bstride;

	float m = NEG_INF;
	float l = 0.0;
	float sc[BK];

	for (uint kb = k0; kb < k1; kb += BK) {
		const uint nv = min(BK, k1 - kb);

		// 1. Stage keys and values (zeros past the range) and keep flags.
		// Element e of the block is key e / MAX_DH, dim e % MAX_DH, so
		// consecutive threads read consecutive dims; the loops have
		// constant trip counts, which compilers unroll (lavapipe also caps
		// the loop iterations of an invocation, see README.md).
		for (uint i = 0; i < SL; i++) {
			const uint e = t + i * WG;
			const uint kk = e / MAX_DH;
			const uint d = e % MAX_DH;
			if (kk < BK && d < dh) {
				float kv = 0.0;
				float vv = 0.0;
				if (kk < nv && b < pc.batch) {
					const uint rb = kvbase + (kb + kk) * pc.ldkv;
					kv = float(KV[rb + pc.koff + d]);
					vv = float(KV[rb + pc.voff + d]);
				}
				ks[kk * KS + d] = kv;
				vs[kk * KS + d] = vv;
			}
		}
		for (uint i = 0; i < FL; i++) {
			const uint kk = t + i * WG;
			if (kk < BK) {
				uint keep = 1u;
				if (pc.has_mask != 0 && kk < nv && b < pc.batch) {
					keep = Mask[mbase + kb + kk];
				}
				km[kk] = keep;
			}
		}
		barrier();

		// 2. Partial dot products over this thread's dims.
		if (live) {
			for (uint kk = 0; kk < BK; kk++) {
				float s = 0.0;
				for (uint j = 0; j < NJ; j++) {
					const uint d = p + j * TPQ;
					if (d < dh) {
						s += qr[j] * ks[kk * KS + d];
					}
				}
				sp[kk * WG + t] = s;
			}
		}
		barrier();

		// 3. Online softmax update and P.V over this thread's dims.
		if (live) {
			float bm = NEG_INF;
			for (uint kk = 0; kk < BK; kk++) {
				if (kk < nv) {
					float s = 0.0;
					for (uint pp = 0; pp < TPQ; pp++) {
						s += sp[kk * WG + pp * BQ + qi];
					}
					s *= pc.scale;
					if (km[kk] == 0u) {
						s = NEG_MAX;
					}
					sc[kk] = s;
					bm = max(bm, s);
				}
			}
			const float mn = max(m, bm);
			const float corr = (m == mn) ? 1.0 : exp(m - mn);
			l *= corr;
			for (uint j = 0; j < NJ; j++) {
				acc[j] *= corr;
			}
			for (uint kk = 0; kk < BK; kk++) {
				if (kk < nv) {
					const float e = exp(sc[kk] - mn);
					l += e;
					for (uint j = 0; j < NJ; j++) {
						const uint d = p + j * TPQ;
						if (d < dh) {
							acc[j] += e * vs[kk * KS + d];
						}
					}
				}
			}
			m = mn;
		}
		barrier();
	}

	if (!qvalid) {
		return;
	}
	if (pc.direct != 0) {
		const uint obase = pc.o_off + (b * pc.nq + q) * pc.ldo + h * dh;
		for (uint j = 0; j < NJ; j++) {
			const uint d = p + j * TPQ;
			if (d < dh) {
				O[obase + d] = ELEM(acc[j] / l);
			}
		}
	} else {
		const uint s = pc.slot_base + z;
		if (s >= pc.nslots_total) {
			return;
		}
		const uint idx = ((s * pc.batch + b) * pc.heads + h) * pc.nq + q;
		for (uint j = 0; j < NJ; j++) {
			const uint d = p + j * TPQ;
			if (d < dh) {
				P[pc.o_off + idx * dh + d] = acc[j];
			}
		}
		if (p == 0) {
			ML[idx * 2] = m;
			ML[idx * 2 + 1] = l;
		}
	}
}
