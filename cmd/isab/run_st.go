package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/isab-vk/isab-vk/isab"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/settransformer"
	"github.com/isab-vk/isab-vk/vk"
)

// stFlags are the flags of "isab run" that pick and configure a Set
// Transformer model.
type stFlags struct {
	model   *string
	numInds *int
	ln      *bool
}

func stRunFlags(fs *flag.FlagSet) *stFlags {
	return &stFlags{
		model: fs.String("model", "", "model kind: isab or "+strings.Join(settransformer.Kinds(), ", ")+
			" (default: the weights' metadata kind, else isab)"),
		numInds: fs.Int("num-inds", 0, "Set Transformer: inducing points (or a PMA's seeds) the weights must hold"),
		ln:      fs.Bool("ln", false, "Set Transformer: the MABs have LayerNorms (default: metadata, else the keys)"),
	}
}

// set reports whether the flag called name was given.
func set(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// kind picks the model: --model, else the weights' metadata, else isab. It
// returns the parsed weights for the Set Transformer kinds.
func (s *stFlags) kind(fs *flag.FlagSet, weights string) (string, *safetensors.File, error) {
	kind := *s.model
	var f *safetensors.File
	if kind != "isab" {
		var err error
		if f, err = safetensors.ReadAnyFile(weights); err != nil {
			return "", nil, fmt.Errorf("isab: loading weights: %w", err)
		}
		if kind == "" {
			kind = f.Metadata["kind"]
		}
	}
	switch {
	case kind == "" || kind == "isab":
		if set(fs, "num-inds") || set(fs, "ln") {
			return "", nil, usagef("--num-inds and --ln apply to the Set Transformer kinds only")
		}
		return "isab", nil, nil
	case settransformer.IsKind(kind):
		for _, name := range []string{"dim-head", "latent-self-attend"} {
			if set(fs, name) {
				return "", nil, usagef("--%s applies to isab only, not to %s", name, kind)
			}
		}
		return kind, f, nil
	}
	return "", nil, fmt.Errorf("unknown model kind %q: want isab or one of %s", kind, strings.Join(settransformer.Kinds(), ", "))
}

// run runs a Set Transformer model and writes out to output.
func (s *stFlags) run(ctx context.Context, fs *flag.FlagSet, kind string, f *safetensors.File, weights, input, output string, heads int, device string) error {
	if *s.numInds < 0 {
		return usagef("--num-inds must be positive")
	}
	opts := settransformer.Options{Kind: kind, Heads: heads, NumInds: *s.numInds}
	if set(fs, "ln") {
		opts.LN = settransformer.Bool(*s.ln)
	}
	in, err := isab.ReadInput(input)
	if err != nil {
		return err
	}
	if in.Mask != nil || in.LatentsShape != nil {
		return fmt.Errorf("%s takes only x: the input holds a mask or latents (input %s)", kind, input)
	}
	dev, err := vk.Open(vk.Options{Device: device})
	if err != nil {
		return err
	}
	defer dev.Close()
	m, err := settransformer.LoadFile(dev, f, opts)
	if err != nil {
		return fmt.Errorf("%w (weights %s)", err, weights)
	}
	defer m.Close()
	out, shape, err := m.ForwardHost(ctx, in.X, in.XShape)
	if err != nil {
		return err
	}
	if err := safetensors.WriteFile(output, []*safetensors.Tensor{safetensors.NewF32("out", shape, out)}, nil); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}
