#version 450
#extension GL_EXT_control_flow_attributes : require
// matmul_tex.comp: PyTorch Linear, Y[r, o] = sum_k X[r, k] * W[o, k] (+ B[o]),
// for CPU rasterisers (lavapipe), reading X and W through uniform texel
// buffers of four-float texels (R32G32B32A32_SFLOAT). Bindings and push
// constants as matmul_cpu.comp, but X (binding 0) and W (binding 1) are
// samplerBuffers: x_off, ldx, w_off and ldw count floats and must be
// multiples of 4 (the host checks), so that texel (x_off + r*ldx)/4 + q holds
// X[r, 4q .. 4q+3]. B (binding 2) and Y (binding 3) stay storage buffers.
//
// On lavapipe (Mesa 22.3) a storage-buffer load is a loop over the 8 SIMD
// lanes with a branch per lane and component, but texelFetch is one gather
// per component, several times cheaper. Thread t of a workgroup of WG
// threads computes rows row0 .. row0+TM-1 (shared by the workgroup) and
// columns col0 + t + j*WG, j < TN, walking K one texel (4 floats) at a time:
// TM + TN fetches feed 4*TM*TN multiply-adds. Out-of-range rows and columns
// are clamped for loading, so every fetch stays inside the bound windows and
// the control flow stays uniform; they are skipped when storing.
//
// When K is not a multiple of 4, the last texel of a row also holds the
// start of the next row (or padding): its W part is masked to the K % 4 valid
// floats, so the host binds X and W windows rounded up to whole texels
// (inside their buffers).
//
// The main K loop steps by KU texels (its body unrolled), a second loop
// takes the remaining whole texels, and the partial texel is straight-line
// code, so one invocation runs at most ceil(K / (4*KU)) + KU loop
// iterations (lavapipe's loop cap, see README.md). Dispatch grid:
// (ceil(N / (WG*TN)), ceil(M / TM), 1).

layout(constant_id = 0) const uint WG = 8;  // threads, along N
layout(constant_id = 1) const uint TM = 8;  // rows per workgroup
layout(constant_id = 2) const uint TN = 2;  // columns per thread
layout(constant_id = 3) const uint KU = 1;  // K unroll, in texels

layout(local_size_x = 8, local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

layout(set = 0, binding = 0) uniform samplerBuffer X;
layout(set = 0, binding = 1) uniform samplerBuffer W;
layout(std430, set = 0, binding = 2) readonly buffer BBuf { float B[]; };
layout(std430, set = 0, binding = 3) writeonly buffer YBuf { float Y[]; };

layout(push_constant) uniform Push {
	uint M;
	uint N;
	uint K;
	uint ldx;
	uint ldw;
	uint ldy;
	uint x_off;
	uint w_off;
	uint b_off;
	uint y_off;
	uint has_bias;
} pc;

void main() {
	const uint lx = gl_LocalInvocationID.x;
	const uint row0 = gl_WorkGroupID.y * TM;
	const uint col0 = gl_WorkGroupID.x * (WG * TN);

	float acc[TM * TN];
	[[unroll]] for (uint i = 0; i < TM * TN; i++) {
		acc[i] = 0.0;
	}
	// First texel of each row of W and X this thread reads.
	int wt[TN];
	[[unroll]] for (uint j = 0; j < TN; j++) {
		wt[j] = int((pc.w_off + min(col0 + lx + j * WG, pc.N - 1) * pc.ldw) / 4);
	}
	int xt[TM];
	[[unroll]] for (uint i = 0; i < TM; i++) {
		xt[i] = int((pc.x_off + min(row0 + i, pc.M - 1) * pc.ldx) / 4);
	}

	const int kt = int(pc.K / 4); // whole texels
	const int kmain = kt - kt % int(KU);
	for (int k = 0; k < kmain; k += int(KU)) {
		[[unroll]] for (int u = 0; u < int(KU); u++) {
			vec4 b[TN];
			[[unroll]] for (uint j = 0; j < TN; j++) {
				b[j] = texelFetch(W, wt[j] + k + u);
			}
			[[unroll]] for (uint i = 0; i < TM; i++) {
				const vec4 a = texelFetch(X, xt[i] + k + u);
				[[unroll]] for (uint j = 0; j < TN; j++) {
					float s = acc[i * TN + j];
					s = fma(a.x, b[j].x, s);
					s = fma(a.y, b[j].y, s);
					s = fma(a.z, b[j].z, s);
					acc[i * TN + j] = fma(a.w, b[j].w, s);
				}
			}
		}
	}
	// The remaining whole texels, then the partial one with W masked.
	const uint rem = pc.K % 4;
	const vec4 mask = vec4(greaterThan(uvec4(rem), uvec4(0, 1, 2, 3)));
	const int kend = kt + int(rem != 0);
	for (int k = kmain; k < kend; k++) {
		const vec4 m = k == kt ? mask : vec4(1.0);
		vec4 b[TN];
		[[unroll]] for (uint j = 0; j < TN; j++) {
			b[j] = texelFetch(W, wt[j] + k) * m;
		}
		[[unroll]] for (uint i = 0; i < TM; i++) {
			const vec4 a = texelFetch(X, xt[i] + k);
			[[unroll]] for (uint j = 0; j < TN; j++) {
				float s = acc[i * TN + j];
				s = fma(a.x, b[j].x, s);
				s = fma(a.y, b[j].y, s);
				s = fma(a.z, b[j].z, s);
				acc[i * TN + j] = fma(a.w, b[j].w, s);
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
