// push/attention.glsl: the push-constant block of attention.comp,
// attention_cpu.comp, attention_tex.comp and attention_coop.comp (and their
// fp16 variants), written once: each of them includes this file where it
// declares its push constants. ops.attnPush is the same block in Go, and ops'
// TestPushBlocks fails on any difference of field name, order or type.
// attention.comp documents the fields.
layout(push_constant) uniform Push {
	uint nq;
	uint nk;
	uint heads;
	uint dh;
	uint batch;
	uint ldq;
	uint ldkv;
	uint koff;
	uint voff;
	uint q_bstride;
	uint kv_bstride;
	uint mask_bstride;
	uint q_off;
	uint kv_off;
	uint mask_off;
	uint o_off;
	uint has_mask;
	uint keys_per_split;
	uint slot_base;
	uint nslots_total;
	uint direct;
	uint ldo;
	float scale;
} pc;
