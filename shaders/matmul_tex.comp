#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_quad : require
#extension GL_EXT_samplerless_texture_functions : require
// matmul_tex.comp: PyTorch Linear, Y[r, o] = sum_k X[r, k] * W[o, k] (+ B[o]),
// for CPU rasterisers (lavapipe), reading X and W through uniform texel
// buffers of four-float texels (R32G32B32A32_SFLOAT). Bindings and push
// constants as matmul_cpu.comp, but X (binding 0) and W (binding 1) are
// textureBuffers and Y (binding 3) is an rgba32f imageBuffer (a storage
// texel buffer): x_off, ldx, w_off, ldw, y_off and ldy count floats and must
// be multiples of 4, and so must N (the host checks), so that texel
// (x_off + r*ldx)/4 + q holds X[r, 4q .. 4q+3] and each thread stores whole
// texels of Y. B (binding 2) stays a storage buffer.
// The device needs subgroup quad operations in compute shaders, and WG must
// be a multiple of 4 and of the subgroup size (whole subgroups).
//
// On lavapipe (Mesa 22.3) a storage-buffer load is a loop over the SIMD
// lanes with a branch per lane and component, and a texelFetch is a call
// that loads one texel per lane (clobbering every vector register), while a
// subgroupQuadBroadcast with a constant lane is a cheap shuffle. So the
// threads work in quads (four consecutive subgroup invocations): lane
// li = 0..3 of quad q computes rows row0 .. row0+TM-1 of its quad
// (row0 = group row start + q*TM) and the column groups
// c0 + 16*g + 4*li .. +3, g < TN/4 (c0 the group's first column), which it
// stores as texels: on lavapipe an imageStore of a texel costs about what a
// storage-buffer store of one float does.
// Per texel of K (4 floats) a thread fetches TN texels of W (its columns)
// and TM/4 texels of X: lane li fetches row 4*c + li, and four quad
// broadcasts hand every lane of the quad rows 4*c .. 4*c+3. So TM/4 + TN
// fetches feed 4*TM*TN multiply-adds. Out-of-range rows and columns are
// clamped for loading, so every fetch stays inside the bound windows and the
// control flow stays uniform; they are skipped when storing.
//
// When K is not a multiple of 4, the last texel of a row also holds the
// start of the next row (or padding): its W part is masked to the K % 4 valid
// floats, so the host binds X and W windows rounded up to whole texels
// (inside their buffers).
//
// The K loop takes one whole texel per iteration and the partial texel is
// straight-line code, so one invocation runs at most ceil(K / 4) loop
// iterations (lavapipe's loop cap, see README.md). Dispatch grid:
// (ceil(N / (4*TN)), ceil(M / ((WG/4)*TM)), 1).
// With N a multiple of 4, a column group either starts past N or lies
// inside it.
//
// variants: f16 (built with -DF16: X and W are texel buffers of four halves
// (R16G16B16A16_SFLOAT views), Y an rgba16f imageBuffer and B float16_t, so
// offsets and strides count halves and a texel is 8 bytes; the arithmetic
// stays fp32).

layout(constant_id = 0) const uint WG = 16; // threads, a multiple of 4
layout(constant_id = 1) const uint TM = 32; // rows per quad, a multiple of 4
layout(constant_id = 2) const uint TN = 16; // columns per thread, a multiple of 4

layout(local_size_x = 16, local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

#ifdef F16
#extension GL_EXT_shader_16bit_storage : require
#define ELEM float16_t
#define YFORMAT rgba16f
#else
#define ELEM float
#define YFORMAT rgba32f
#endif

// toStored returns v as Y stores it. Lavapipe converts to an rgba16f image
// by truncation, so the fp16 variant rounds to the nearest half first
// (packHalf2x16 rounds to nearest even) and the store is then exact.
vec4 toStored(vec4 v) {
#ifdef F16
	return vec4(unpackHalf2x16(packHalf2x16(v.xy)), unpackHalf2x16(packHalf2x16(v.zw)));
#else
	return v;
#endif
}

layout(set = 0, binding = 0) uniform textureBuffer X;
layout(set = 0, binding = 1) uniform textureBuffer W;
layout(std430, set = 0, binding = 2) readonly buffer BBuf { ELEM B[]; };
layout(set = 0, binding = 3, YFORMAT) uniform writeonly imageBuffer Y;

#include "push/matmul.glsl"

const uint TQ = TM / 4; // X fetches per texel of K

float acc[TM * TN];
int wt[TN];
int xt[TQ];

// step adds one texel of K (texel offset k from each row start) to the
// accumulators, W masked by m.
void step(int k, vec4 m) {
	vec4 b[TN];
	[[unroll]] for (uint j = 0; j < TN; j++) {
		b[j] = texelFetch(W, wt[j] + k) * m;
	}
	[[unroll]] for (uint c = 0; c < TQ; c++) {
		const vec4 xv = texelFetch(X, xt[c] + k);
		vec4 a4[4];
		a4[0] = subgroupQuadBroadcast(xv, 0u);
		a4[1] = subgroupQuadBroadcast(xv, 1u);
		a4[2] = subgroupQuadBroadcast(xv, 2u);
		a4[3] = subgroupQuadBroadcast(xv, 3u);
		[[unroll]] for (uint r = 0; r < 4; r++) {
			const uint i = 4 * c + r;
			[[unroll]] for (uint j = 0; j < TN; j++) {
				float s = acc[i * TN + j];
				s = fma(a4[r].x, b[j].x, s);
				s = fma(a4[r].y, b[j].y, s);
				s = fma(a4[r].z, b[j].z, s);
				acc[i * TN + j] = fma(a4[r].w, b[j].w, s);
			}
		}
	}
}

void main() {
	// Thread index in the workgroup, in subgroup order, so that quads are
	// four consecutive subgroup invocations.
	const uint t = gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID;
	const uint li = t & 3u;
	const uint row0 = gl_WorkGroupID.y * ((WG / 4) * TM) + (t >> 2) * TM;
	const uint col0 = gl_WorkGroupID.x * (4 * TN) + 4 * li;

	[[unroll]] for (uint i = 0; i < TM * TN; i++) {
		acc[i] = 0.0;
	}
	// First texel of each row of W and X this thread reads.
	[[unroll]] for (uint j = 0; j < TN; j++) {
		// Column j of the thread: col0 + 16*(j/4) + j%4.
		wt[j] = int((pc.w_off + min(col0 + 16 * (j / 4) + j % 4, pc.N - 1) * pc.ldw) / 4);
	}
	[[unroll]] for (uint c = 0; c < TQ; c++) {
		xt[c] = int((pc.x_off + min(row0 + 4 * c + li, pc.M - 1) * pc.ldx) / 4);
	}

	const int kt = int(pc.K / 4); // whole texels
	for (int k = 0; k < kt; k++) {
		step(k, vec4(1.0));
	}
	// The partial texel, with W masked to its K % 4 valid floats.
	const uint rem = pc.K % 4;
	if (rem != 0) {
		step(kt, vec4(greaterThan(uvec4(rem), uvec4(0, 1, 2, 3))));
	}

	[[unroll]] for (uint g = 0; g < TN / 4; g++) {
		const uint col = col0 + 16 * g;
		if (col < pc.N) {
			vec4 bias = vec4(0.0);
			if (pc.has_bias != 0) {
				bias = vec4(float(B[pc.b_off + col]), float(B[pc.b_off + col + 1]),
					float(B[pc.b_off + col + 2]), float(B[pc.b_off + col + 3]));
			}
			[[unroll]] for (uint i = 0; i < TM; i++) {
				if (row0 + i < pc.M) {
					const uint a = i * TN + 4 * g;
					imageStore(Y, int((pc.y_off + (row0 + i) * pc.ldy + col) / 4),
						toStored(vec4(acc[a], acc[a + 1], acc[a + 2], acc[a + 3]) + bias));
				}
			}
		}
	}
}
