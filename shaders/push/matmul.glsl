// push/matmul.glsl: the push-constant block of matmul.comp, matmul_cpu.comp,
// matmul_tex.comp and matmul_coop.comp (and their fp16 variants), written
// once: each of them includes this file where it declares its push constants.
// ops.matmulPush is the same block in Go, and ops' TestPushBlocks fails on any
// difference of field name, order or type. matmul.comp documents the fields.
layout(push_constant) uniform Push {
	uint M;        // rows of X and Y
	uint N;        // outputs: rows of W, columns of Y
	uint K;        // inner size: columns of X and W
	uint ldx;      // row strides, in elements
	uint ldw;
	uint ldy;
	uint x_off;    // element offsets into the bound ranges
	uint w_off;
	uint b_off;
	uint y_off;
	uint has_bias; // 0 or 1
} pc;
