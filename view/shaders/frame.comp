#version 450
// frame: draws one frame of the isab view, one invocation per pixel.
//
// Bindings (std430, set 0):
//   0 points  vec4 per point: (x pixel, y pixel, heat in [0,1], unused)
//   1 comps   8 floats per mixture component: (mu_x px, mu_y px, sigma_x px,
//             sigma_y px, r, g, b in [0,1], weight pi)
//   2 overlay uint per pixel, RGBA8 (R in the low byte); alpha 0 = none
//   3 frame   uint per pixel, RGBA8 (R in the low byte), written
// Push constants (4-byte scalars, in order):
//   width, height, npoints, ncomps, plot_w (uint: pixels of the plot area,
//   the rest is the legend panel), radius, grid (pixels per unit), origin_x,
//   origin_y (pixel of world (0,0)) (float)
// Grid: (ceil(width/16), ceil(height/16), 1), 16x16 workgroups.
layout(local_size_x = 16, local_size_y = 16) in;

layout(std430, set = 0, binding = 0) readonly buffer Points { vec4 pts[]; };
layout(std430, set = 0, binding = 1) readonly buffer Comps { float comps[]; };
layout(std430, set = 0, binding = 2) readonly buffer Overlay { uint overlay[]; };
layout(std430, set = 0, binding = 3) writeonly buffer Frame { uint frame[]; };

layout(push_constant) uniform Push {
	uint width;
	uint height;
	uint npoints;
	uint ncomps;
	uint plot_w;
	float radius;
	float grid;
	float origin_x;
	float origin_y;
} pc;

// heat maps t in [0,1] through five colour stops (dark violet to pale yellow);
// view.HeatColor is the same map on the host.
vec3 heat(float t) {
	const vec3 stops[5] = vec3[5](
		vec3(0.30, 0.22, 0.60),
		vec3(0.55, 0.20, 0.60),
		vec3(0.85, 0.30, 0.35),
		vec3(0.98, 0.60, 0.12),
		vec3(0.99, 0.95, 0.50));
	t = clamp(t, 0.0, 1.0) * 4.0;
	int i = min(int(t), 3);
	return mix(stops[i], stops[i + 1], t - float(i));
}

uint pack(vec3 c) {
	uvec3 u = uvec3(clamp(c, 0.0, 1.0) * 255.0 + 0.5);
	return u.r | (u.g << 8) | (u.b << 16) | (255u << 24);
}

void main() {
	uint x = gl_GlobalInvocationID.x, y = gl_GlobalInvocationID.y;
	if (x >= pc.width || y >= pc.height) {
		return;
	}
	vec2 p = vec2(x, y) + 0.5;
	vec3 col;
	if (x >= pc.plot_w) {
		col = vec3(0.10, 0.11, 0.15);
	} else {
		col = vec3(0.055, 0.063, 0.085);
		// Grid lines at integer world coordinates, axes brighter.
		vec2 w = (p - vec2(pc.origin_x, pc.origin_y)) / pc.grid;
		vec2 g = abs(w - round(w)) * pc.grid;
		if (min(g.x, g.y) < 0.5) {
			col = vec3(0.11, 0.12, 0.15);
		}
		if ((abs(w.x) * pc.grid < 0.5) || (abs(w.y) * pc.grid < 0.5)) {
			col = vec3(0.20, 0.22, 0.27);
		}
		// Mixture components: a faint fill under the points.
		for (uint k = 0; k < pc.ncomps; k++) {
			vec2 z = (p - vec2(comps[8 * k], comps[8 * k + 1])) / vec2(comps[8 * k + 2], comps[8 * k + 3]);
			vec3 kc = vec3(comps[8 * k + 4], comps[8 * k + 5], comps[8 * k + 6]);
			col = mix(col, kc, 0.10 * exp(-0.5 * dot(z, z)));
		}
		// Points: the hottest point covering the pixel wins; a dark rim.
		float best = -1.0;
		float bestd = 0.0;
		for (uint j = 0; j < pc.npoints; j++) {
			vec4 q = pts[j];
			float dd = length(p - q.xy);
			if (dd <= pc.radius + 1.0 && q.z >= best) {
				best = q.z;
				bestd = dd;
			}
		}
		if (best >= 0.0) {
			col = bestd <= pc.radius ? heat(best) : vec3(0.0);
		}
		// Over the points: ellipses at 1 sigma (solid, 2 px) and 2 sigma
		// (dashed, 1.2 px), and a cross at each mean.
		for (uint k = 0; k < pc.ncomps; k++) {
			vec2 mu = vec2(comps[8 * k], comps[8 * k + 1]);
			vec2 sd = vec2(comps[8 * k + 2], comps[8 * k + 3]);
			vec3 kc = vec3(comps[8 * k + 4], comps[8 * k + 5], comps[8 * k + 6]);
			vec2 z = (p - mu) / sd;
			float d = length(z);
			float gl = length((p - mu) / (sd * sd)) / max(d, 1e-6);
			float ang = atan(z.y, z.x);
			if (abs(d - 1.0) / gl < 1.0) {
				col = kc;
			} else if (abs(d - 2.0) / gl < 0.6 && fract(ang * 24.0 / 6.2831853) < 0.55) {
				col = mix(col, kc, 0.8);
			}
			vec2 m = abs(p - mu);
			if ((m.x < 0.6 && m.y < 5.0) || (m.y < 0.6 && m.x < 5.0)) {
				col = kc;
			}
		}
	}
	uint o = overlay[y * pc.width + x];
	float a = float(o >> 24) / 255.0;
	if (a > 0.0) {
		vec3 oc = vec3(o & 255u, (o >> 8) & 255u, (o >> 16) & 255u) / 255.0;
		col = mix(col, oc, a);
	}
	frame[y * pc.width + x] = pack(col);
}
