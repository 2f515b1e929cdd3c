// push/softmax.glsl: the push-constant block of softmax.comp (and
// softmax_f16), written once: each of them includes this file where it
// declares its push constants. ops.softmaxPush is the same block in Go, and
// ops' TestPushBlocks fails on any difference of field name, order or type.
// softmax.comp documents the fields.
layout(push_constant) uniform Push {
	uint rows;
	uint cols;
	uint ldx;           // row strides, in elements
	uint ldy;
	uint x_off;         // element offsets into the bound ranges
	uint y_off;
	uint mask_off;
	uint rows_per_mask; // rows sharing one mask row: mask row = row / rows_per_mask
	uint ld_mask;       // mask row stride, in elements
	uint has_mask;      // 0 or 1
	float scale;
} pc;
