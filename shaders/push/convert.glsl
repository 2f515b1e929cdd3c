// push/convert.glsl: the push-constant block of convert.comp, written once:
// each of them includes this file where it declares its push constants.
// ops.convertPush is the same block in Go, and ops' TestPushBlocks fails on
// any difference of field name, order or type. convert.comp documents the
// fields.
layout(push_constant) uniform Push {
	uint n;
	uint src_off;
	uint dst_off;
	uint to_half; // 1: float32 -> half, 0: half -> float32
} pc;
