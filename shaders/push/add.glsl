// push/add.glsl: the push-constant block of add.comp (and add_f16), written
// once: each of them includes this file where it declares its push constants.
// ops.addPush is the same block in Go, and ops' TestPushBlocks fails on any
// difference of field name, order or type. add.comp documents the fields.
layout(push_constant) uniform Push {
	uint rows;
	uint cols;
	uint lda;    // row strides, in elements
	uint ldb;
	uint ldy;
	uint a_off;  // element offsets into the bound ranges
	uint b_off;
	uint y_off;
	uint a_rows; // 0: A has rows rows; else A's rows repeat with this period
	uint a_row0; // the row of A that row 0 uses when a_rows > 0
	uint relu;   // 0 or 1: apply max(., 0) to B first
} pc;
