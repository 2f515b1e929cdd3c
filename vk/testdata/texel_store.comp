#version 450
#extension GL_EXT_samplerless_texture_functions : require
// Test kernel for storage texel-buffer bindings: texel i of the rgba32f
// imageBuffer o becomes 2 * texel i of the textureBuffer t + 1, for i < n.
layout(local_size_x = 32) in;
layout(binding = 0) uniform textureBuffer t;
layout(binding = 1, rgba32f) uniform writeonly imageBuffer o;
layout(push_constant) uniform P { uint n; };
void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i >= n) return;
    imageStore(o, int(i), 2.0 * texelFetch(t, int(i)) + 1.0);
}
