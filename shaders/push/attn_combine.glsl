// push/attn_combine.glsl: the push-constant block of attn_combine.comp (and
// attn_combine_f16), written once: each of them includes this file where it
// declares its push constants. ops.combinePush is the same block in Go, and
// ops' TestPushBlocks fails on any difference of field name, order or type.
// attn_combine.comp documents the fields.
layout(push_constant) uniform Push {
	uint nq;
	uint heads;
	uint dh;
	uint batch;
	uint nslots;
	uint ldo;
	uint out_off;
} pc;
