#version 450
// Test kernel for uniform-buffer bindings: out[i] = u[i] * u[0] + s[i],
// where u is a uniform buffer (read with a per-invocation offset and with
// an offset the same for every invocation) and s, out are storage buffers.
layout(local_size_x = 32) in;
layout(std140, binding = 0) uniform U { vec4 u[1024]; };
layout(std430, binding = 1) readonly buffer S { float s[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { uint n; };
void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i >= n) return;
    o[i] = u[i / 4][i % 4] * u[0].x + s[i];
}
