package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/isab-vk/isab-vk/isab"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", "--weights W --input IN --output OUT [--model KIND] [--heads H] [--dim-head D] [--latent-self-attend=true|false] [--num-inds M] [--ln=true|false] [--precision fp32|fp16|auto] [--device SEL]", stderr)
	weights := fs.String("weights", "", "ISAB or Set Transformer state_dict as safetensors (required)")
	input := fs.String("input", "", "safetensors file with x [b, n, dim], optional mask [b, n] and latents (required)")
	output := fs.String("output", "", "safetensors file to write out [b, n, dim] (and for isab latents [b, m, dim]) to (required)")
	heads := fs.Int("heads", 0, "attention heads (default: from the weights' metadata)")
	st := stRunFlags(fs)
	dimHead := fs.Int("dim-head", 0, "width of one head (default: metadata, else 64)")
	selfAttend := fs.Bool("latent-self-attend", false, "attn1 attends over concat(latents, x) (default: metadata, else false)")
	device := fs.String("device", "", "device index or name substring (default: $ISAB_DEVICE, else the best GPU)")
	precision := fs.String("precision", "fp32", "number format on the device for isab models: fp32, fp16 (half storage, fp32 accumulation) or auto")
	if err := parse(fs, args); err != nil {
		return err
	}
	prec, err := isab.ParsePrecision(*precision)
	if err != nil {
		return usagef("--precision: %v", err)
	}
	for _, req := range []struct{ name, v string }{{"weights", *weights}, {"input", *input}, {"output", *output}} {
		if req.v == "" {
			return usagef("--%s is required", req.name)
		}
	}
	if *heads < 0 || *dimHead < 0 {
		return usagef("--heads and --dim-head must be positive")
	}
	// Fail now, not after the whole forward pass, when the output cannot
	// be written (the write itself is atomic: a failure keeps the old file).
	if err := safetensors.CheckWritable(*output); err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	if kind, f, err := st.kind(fs, *weights); err != nil {
		return err
	} else if kind != "isab" {
		if prec != isab.FP32 {
			return usagef("--precision %s: only isab models run in other precisions than fp32 (this is a %s model)", prec, kind)
		}
		return st.run(ctx, fs, kind, f, *weights, *input, *output, *heads, *device)
	}
	opts := isab.Options{Heads: *heads, DimHead: *dimHead, Precision: prec}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "latent-self-attend" {
			opts.LatentSelfAttend = isab.Bool(*selfAttend)
		}
	})
	in, err := isab.ReadInput(*input)
	if err != nil {
		return err
	}
	dev, err := vk.Open(vk.Options{Device: *device})
	if err != nil {
		return err
	}
	defer dev.Close()
	m, err := isab.Load(dev, *weights, opts)
	if err != nil {
		return err
	}
	defer m.Close()
	out, lat, err := m.ForwardHost(ctx, in)
	if err != nil {
		return err
	}
	cfg := m.Config()
	b, n := in.XShape[0], in.XShape[1]
	mLat := len(lat) / (b * cfg.Dim)
	return isab.WriteOutput(*output, out, []int{b, n, cfg.Dim}, lat, []int{b, mLat, cfg.Dim})
}
