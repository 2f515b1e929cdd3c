#version 450
// Test kernel for shaderInt64: copies floats through 64-bit-component loads
// (u64vec4, 8 floats each), as the CPU kernels do.
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
layout(local_size_x = 32) in;
layout(std430, binding = 0) readonly buffer S { u64vec4 s[]; };
layout(std430, binding = 1) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { uint n; }; // groups of 8 floats
void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i >= n) return;
    u64vec4 v = s[i];
    for (uint c = 0; c < 4; c++) {
        uvec2 w = unpackUint2x32(v[c]);
        o[8 * i + 2 * c] = uintBitsToFloat(w.x);
        o[8 * i + 2 * c + 1] = uintBitsToFloat(w.y);
    }
}
