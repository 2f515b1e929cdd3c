package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/isab-vk/isab-vk/internal/benchkit"
	"github.com/isab-vk/isab-vk/isab"
	"github.com/isab-vk/isab-vk/ops"
	"github.com/isab-vk/isab-vk/vk"
)

// stepChoices says, for the ISAB block of shape s (heads of dimHead,
// attn1 over concat(latents, x) when selfAttend) in fp16 when half, which
// implementation each Linear and Attention step of the forward pass would
// use on o's device and why the others decline (ops.ExplainLinear,
// ops.ExplainAttention). The calls are the whole ones: the model cuts x
// into chunks of rows, which shortens kv1, q2, out2 and attn1's sources of
// x without changing which kernels can take them, but may change the tile
// sizes of small chunks (see ops.FastKernelsFrom).
func stepChoices(o *ops.Ops, s benchkit.Shape, dimHead int, selfAttend, half bool) []benchkit.StepChoice {
	B, N, D, H, M := s.B, s.N, s.Dim, s.Heads, s.M
	I := H * dimHead
	lin := func(step string, rows, in, out int) benchkit.StepChoice {
		return benchkit.StepChoice{Step: step, Call: fmt.Sprintf("Linear %dx%d -> %d", rows, in, out), Choice: o.ExplainLinear(rows, in, out, half)}
	}
	attn := func(step string, nq int, nk []int) benchkit.StepChoice {
		keys := ""
		for i, n := range nk {
			if i > 0 {
				keys += "+"
			}
			keys += strconv.Itoa(n)
		}
		call := fmt.Sprintf("Attention %d queries x %s keys, %d heads of %d", nq, keys, H, dimHead)
		if B > 1 {
			call = fmt.Sprintf("Attention %d x %d queries x %s keys, %d heads of %d", B, nq, keys, H, dimHead)
		}
		return benchkit.StepChoice{Step: step, Call: call, Choice: o.ExplainAttention(B, nq, nk, H, dimHead, half)}
	}
	steps := []benchkit.StepChoice{lin("q1", M, D, I)}
	sources := []int{N}
	if selfAttend {
		steps = append(steps, lin("kv1", M, D, 2*I))
		sources = []int{M, N}
	}
	return append(steps,
		lin("kv1", B*N, D, 2*I),
		attn("attn1", M, sources),
		lin("out1", B*M, I, D),
		lin("kv2", B*M, D, 2*I),
		lin("q2", B*N, D, I),
		attn("attn2", N, []int{M}),
		lin("out2", B*N, I, D),
	)
}

// deviceChoices opens device index and returns its implementation choices
// at the README's shape (isab-pytorch's defaults: heads of 64, attn1 over
// concat(latents, x)), in float32 and, where the device has 16-bit
// storage, in fp16.
func deviceChoices(index int) (map[string][]benchkit.StepChoice, error) {
	dev, err := vk.Open(vk.Options{Device: strconv.Itoa(index)})
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	o, err := ops.New(dev)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	out := map[string][]benchkit.StepChoice{"fp32": stepChoices(o, benchkit.DefaultShape, isab.DefaultDimHead, true, false)}
	if o.SupportsHalf() {
		out["fp16"] = stepChoices(o, benchkit.DefaultShape, isab.DefaultDimHead, true, true)
	}
	return out, nil
}

// writeDeviceChoices prints deviceChoices as the --kernels section of isab
// devices.
func writeDeviceChoices(w io.Writer, choices map[string][]benchkit.StepChoice) {
	for _, prec := range []string{"fp32", "fp16"} {
		c, ok := choices[prec]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "   kernels at %s (%s); step, call, kernel, why the others decline:\n", benchkit.DefaultShape, prec)
		benchkit.WriteChoices(w, "     ", c)
	}
}
