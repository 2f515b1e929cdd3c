// Package shaders holds the project's GLSL compute shaders and their SPIR-V,
// compiled by glslc (go generate ./shaders, see README.md) and embedded at
// build time, so that building the project needs no shader compiler. The
// generated kernels.go names each embedded kernel with a Kernel constant.
//
// Kernels:
//   - matmul: PyTorch Linear, Y = X W^T (+ b), shared-memory tiles.
//   - matmul_tex: the same for CPU rasterisers, register tiles in quads, x and w read
//     through texel buffers, y written through one.
//   - matmul_coop: the same for fp16 operands on cooperative matrices
//     (VK_KHR_cooperative_matrix).
//   - matmul_cpu: the same for CPU rasterisers where operands are not
//     texel-aligned: register tiles, u64vec4, vec4 or scalar loads.
//   - softmax: masked, scaled softmax over rows.
//   - attention: fused multi-head attention with key splits.
//   - attention_tex, attention_cpu: the same for CPU rasterisers, queries in
//     registers, Q and K/V through texel buffers or storage-buffer loads.
//   - attention_coop: the same for fp16 operands on cooperative matrices.
//   - attn_combine: merges attention's key-split partials.
//   - add: elementwise residual sum, Y = A + B or A + relu(B).
//   - layernorm: LayerNorm over rows with an affine weight and bias.
//   - convert: float32 <-> IEEE half conversion.
//
// Kernels whose source has a "// variants: f16" line also come as X_f16,
// built with -DF16: float16_t storage, fp32 arithmetic (see README.md).
// Each .comp file documents its bindings, push constants (consecutive 4-byte
// scalars, declared once per interface in push/NAME.glsl, which every
// variant includes) and specialization constants.
package shaders

//go:generate go run ./internal/gen

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.spv
var spirv embed.FS

// SPIRV returns the compiled SPIR-V of the named shader; name is the file
// name without its extension, such as "matmul". An unknown name is an error
// that lists the known ones.
func SPIRV(name string) ([]byte, error) {
	code, err := spirv.ReadFile(name + ".spv")
	if err != nil {
		return nil, fmt.Errorf("shaders: no shader %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return code, nil
}

// Names returns the names of all embedded shaders, sorted.
func Names() []string {
	entries, err := fs.ReadDir(spirv, ".")
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".spv"); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Kernel names one embedded shader: kernels.go, which go generate writes
// from the variants each source declares, has a constant for every one,
// such as Attention and AttentionF16.
type Kernel int

// Name returns k's file name without ".spv", such as "attention_f16".
func (k Kernel) Name() string {
	if k <= 0 || int(k) >= len(kernelNames) {
		return fmt.Sprintf("shaders.Kernel(%d)", int(k))
	}
	return kernelNames[k]
}

// String returns k's name.
func (k Kernel) String() string { return k.Name() }

// SPIRV returns k's compiled SPIR-V.
func (k Kernel) SPIRV() ([]byte, error) {
	if k <= 0 || int(k) >= len(kernelNames) {
		return nil, fmt.Errorf("shaders: no kernel %s", k.Name())
	}
	return SPIRV(kernelNames[k])
}
