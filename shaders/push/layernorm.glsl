// push/layernorm.glsl: the push-constant block of layernorm.comp (and
// layernorm_f16), written once: each of them includes this file where it
// declares its push constants. ops.layerNormPush is the same block in Go, and
// ops' TestPushBlocks fails on any difference of field name, order or type.
// layernorm.comp documents the fields.
layout(push_constant) uniform Push {
	uint rows;
	uint cols;
	uint ldx;   // row strides, in elements
	uint ldy;
	uint x_off; // element offsets into the bound ranges
	uint y_off;
	uint w_off;
	uint b_off;
	float eps;
} pc;
