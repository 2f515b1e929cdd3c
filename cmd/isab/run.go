package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/isab-vk/isab-vk/isab"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", "--weights W --input IN --output OUT [--model KIND] [--heads H] [--dim-head D] [--latent-self-attend=true|false] [--num-inds M] [--ln=true|false] [--precision fp32|fp16|auto] [--device SEL|all]", stderr)
	weights := fs.String("weights", "", "ISAB or Set Transformer state_dict as safetensors (required)")
	input := fs.String("input", "", "safetensors file with x [b, n, dim], optional mask [b, n] and latents (required)")
	output := fs.String("output", "", "safetensors file to write out [b, n, dim] (and for isab latents [b, m, dim]) to (required)")
	heads := fs.Int("heads", 0, "attention heads (default: from the weights' metadata)")
	st := stRunFlags(fs)
	dimHead := fs.Int("dim-head", 0, "width of one head (default: metadata, else 64)")
	selfAttend := fs.Bool("latent-self-attend", false, "attn1 attends over concat(latents, x) (default: metadata, else false)")
	device := fs.String("device", "", "device index or name substring, or \"all\" to split an isab model's batch across every device (default: $ISAB_DEVICE, else the best GPU)")
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
		if allSelected(*device) {
			return usagef("--device all: only isab models run across several devices (this is a %s model)", kind)
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
	out, lat, dim, err := forwardISAB(ctx, *device, *weights, opts, in)
	if err != nil {
		return err
	}
	b, n := in.XShape[0], in.XShape[1]
	mLat := len(lat) / (b * dim)
	return isab.WriteOutput(*output, out, []int{b, n, dim}, lat, []int{b, mLat, dim})
}

// forwardISAB runs the isab block of weights on in, on the device that
// device selects, or with --device all on every device, the batch split
// across them (isab.Pool). It returns out, the latents and the model width.
func forwardISAB(ctx context.Context, device, weights string, opts isab.Options, in *isab.Input) (out, lat []float32, dim int, err error) {
	if !allSelected(device) {
		dev, err := vk.Open(vk.Options{Device: device})
		if err != nil {
			return nil, nil, 0, err
		}
		defer dev.Close()
		m, err := isab.Load(dev, weights, opts)
		if err != nil {
			return nil, nil, 0, err
		}
		defer m.Close()
		out, lat, err = m.ForwardHost(ctx, in)
		return out, lat, m.Config().Dim, err
	}
	devs, err := openAll()
	if err != nil {
		return nil, nil, 0, err
	}
	defer closeAll(devs)
	p, err := isab.LoadOn(devs, weights, opts)
	if err != nil {
		return nil, nil, 0, err
	}
	defer p.Close()
	out, lat, err = p.ForwardHost(ctx, in)
	return out, lat, p.Config().Dim, err
}

// allSelected reports whether a --device value asks for every device; an
// empty one defers to ISAB_DEVICE, as vk.Open does.
func allSelected(device string) bool {
	if strings.TrimSpace(device) == "" {
		device = os.Getenv("ISAB_DEVICE")
	}
	return strings.EqualFold(strings.TrimSpace(device), allDevices)
}

// openAll opens every device that vk.Devices lists, in its order.
func openAll() ([]*vk.Device, error) {
	infos, err := vk.Devices()
	if err != nil {
		return nil, err
	}
	var devs []*vk.Device
	for _, in := range infos {
		d, err := vk.Open(vk.Options{Device: strconv.Itoa(in.Index)})
		if err != nil {
			closeAll(devs)
			return nil, fmt.Errorf("device %d (%s): %w", in.Index, in.Name, err)
		}
		devs = append(devs, d)
	}
	return devs, nil
}

// closeAll closes devices opened by openAll.
func closeAll(devs []*vk.Device) {
	for _, d := range devs {
		d.Close()
	}
}
