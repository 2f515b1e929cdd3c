#version 450
#extension GL_EXT_samplerless_texture_functions : require
// Test kernel for texel-buffer bindings: out[i] = texel(i / 4)[i % 4] + s[i],
// reading four-float texels with texelFetch.
layout(local_size_x = 32) in;
layout(binding = 0) uniform textureBuffer t;
layout(std430, binding = 1) readonly buffer S { float s[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { uint n; };
void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i >= n) return;
    o[i] = texelFetch(t, int(i / 4))[i % 4] + s[i];
}
