#version 450
// peak_coop.comp: the device's cooperative-matrix peak, for "% peak" in
// isab bench on fp16 passes that run on cooperative matrices: fp16 A and B
// with float32 accumulation (the device's VK_KHR_cooperative_matrix shape
// LM x LN x LK, subgroup scope), as matmul_coop.comp uses it.
//
// compiler: GL_KHR_cooperative_matrix (glslang 13 or later; Debian 12's
// glslc is older: build.sh uses Debian 13's, see scripts/trixie.sh)
//
// Each workgroup has NSG subgroup slots. The workgroup stages AB (binding 0,
// float32: a 2LM x LK matrix A, row major, then an LK x 2LN matrix B, row
// major) as halves in shared memory; each slot loads the two LM x LK halves
// A0, A1 of A and the two LK x LN halves B0, B1 of B once into cooperative
// matrices, keeps the four LM x LN float32 accumulators C[i][j] (all
// elements start at (slot + 2i + j) & 7, slot being the workgroup's index
// times NSG plus the slot's) and runs iters rounds of CHAIN dependent
// C[i][j] = Ai * Bj + C[i][j] on each. One slot does
// 4 * CHAIN * iters multiply-adds of LM x LN x LK (each counted as two
// operations per element product).
//
// So that nothing can be optimised away and the host can check the work
// done, each slot then stores C00 + C01 + C10 + C11 to its LM x LN scratch
// in shared memory, and its first invocation writes the sum of those
// elements, each converted to int, as a uint (sums wrap modulo 2^32) to
// O[slot] (binding 1). With A and B of small integers the elements are
// exact integers, so the value is known exactly on the host (see
// internal/benchkit's coop peak).
//
// Slots are walked like matmul_coop.comp's subgroup tiles: should the
// device run subgroups of another size than the host's WG assumed, each
// subgroup takes several slots in turn (or some stay idle), and the work
// and the result are the same.
//
// The inner loops are unrolled; only the loop over iters runs (lavapipe
// ends an invocation's loops after 65535 iterations in all: the host keeps
// iters far below that).
//
// Shared memory: 2*(2*LM*LK + 2*LK*LN) + 4*NSG*LM*LN bytes.
// Dispatch grid: any; slot = (id.y * num.x + id.x) * NSG + local slot.

#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : require

layout(constant_id = 0) const uint LM = 16;
layout(constant_id = 1) const uint LN = 16;
layout(constant_id = 2) const uint LK = 16;
layout(constant_id = 3) const uint NSG = 4; // subgroup slots per workgroup
layout(constant_id = 4) const uint WG = 128; // = NSG * subgroup size

layout(local_size_x_id = 4) in;

const uint CHAIN = 4; // dependent multiply-adds per accumulator per round

layout(std430, set = 0, binding = 0) readonly buffer ABuf { float AB[]; };
layout(std430, set = 0, binding = 1) writeonly buffer OBuf { uint O[]; };

layout(push_constant) uniform Push {
	uint iters;
} pc;

shared float16_t as[2 * LM * LK];
shared float16_t bs[LK * 2 * LN];
shared float scratch[NSG * LM * LN];

void main() {
	for (uint i = gl_LocalInvocationIndex; i < 2 * LM * LK; i += WG) {
		as[i] = float16_t(AB[i]);
	}
	for (uint i = gl_LocalInvocationIndex; i < LK * 2 * LN; i += WG) {
		bs[i] = float16_t(AB[2 * LM * LK + i]);
	}
	barrier();

	const uint group = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
	const uint passes = (NSG + gl_NumSubgroups - 1) / gl_NumSubgroups;
	for (uint pass = 0; pass < passes; pass++) {
		const uint sg = pass * gl_NumSubgroups + gl_SubgroupID;
		if (sg >= NSG) {
			break;
		}
		const uint slot = group * NSG + sg;
		coopmat<float16_t, gl_ScopeSubgroup, LM, LK, gl_MatrixUseA> a[2];
		coopmat<float16_t, gl_ScopeSubgroup, LK, LN, gl_MatrixUseB> b[2];
		coopmat<float, gl_ScopeSubgroup, LM, LN, gl_MatrixUseAccumulator> c[4];
		[[unroll]] for (uint i = 0; i < 2; i++) {
			coopMatLoad(a[i], as, i * LM * LK, LK, gl_CooperativeMatrixLayoutRowMajor);
			coopMatLoad(b[i], bs, i * LN, 2 * LN, gl_CooperativeMatrixLayoutRowMajor);
		}
		[[unroll]] for (uint t = 0; t < 4; t++) {
			c[t] = coopmat<float, gl_ScopeSubgroup, LM, LN, gl_MatrixUseAccumulator>(float((slot + t) & 7u));
		}
		for (uint it = 0; it < pc.iters; it++) {
			[[unroll]] for (uint r = 0; r < CHAIN; r++) {
				[[unroll]] for (uint t = 0; t < 4; t++) {
					c[t] = coopMatMulAdd(a[t / 2], b[t % 2], c[t]);
				}
			}
		}
		coopmat<float, gl_ScopeSubgroup, LM, LN, gl_MatrixUseAccumulator> s = c[0] + c[1] + c[2] + c[3];
		const uint base = sg * LM * LN;
		coopMatStore(s, scratch, base, LN, gl_CooperativeMatrixLayoutRowMajor);
		subgroupMemoryBarrierShared();
		subgroupBarrier();
		if (subgroupElect()) {
			uint sum = 0;
			for (uint e = 0; e < LM * LN; e++) {
				sum += uint(int(scratch[base + e]));
			}
			O[slot] = sum;
		}
	}
}
