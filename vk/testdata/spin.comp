#version 450
// Test kernel for the vk package: every workgroup (of one invocation) runs
// n rounds of sixteen xorshift steps (which no compiler can fold into a
// closed form) and writes the result to out[0], so that a test can keep the
// device busy for a time it chooses (wait limits, cancellation) through n
// (a push constant) and the number of workgroups. llvmpipe (lavapipe) ends
// a shader invocation's loops after 65535 iterations in all, so n stays
// below that and long spins take many workgroups.
//
// A workgroup that starts once stop is non-zero does nothing: on devices
// whose memory the host sees directly (lavapipe), a test sets stop to end a
// long spin within one workgroup's time rather than wait for all of it (a
// host write during the dispatch, which Vulkan does not promise to make
// visible; tests without it wait out the spin). The flag is read once,
// before the loop, with an atomic: llvmpipe runs a loop on to its bound
// even after every lane has broken out of it, so a check inside the loop
// would save nothing.
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) buffer Out { uint out_[]; };
layout(std430, set = 0, binding = 1) coherent buffer Stop { uint stop; };
layout(push_constant) uniform P { uint n; } p;
#define STEP x ^= x << 13; x ^= x >> 17; x ^= x << 5;
#define STEP4 STEP STEP STEP STEP
void main() {
    uint x = 2463534242u + gl_WorkGroupID.x + 65536u * gl_WorkGroupID.y;
    uint n = stop == 0u ? p.n : 0u;
    for (uint i = 0u; i < n; i++) {
        STEP4 STEP4 STEP4 STEP4
    }
    out_[0] = x;
}
