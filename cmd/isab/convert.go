package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/isab-vk/isab-vk/safetensors"
)

// runConvert writes the tensors of a torch.save state_dict (or of a
// safetensors file) to a safetensors file, with the configuration given on
// the command line as __metadata__ so that the output runs without flags.
func runConvert(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("convert", "IN.pt OUT.safetensors [--model KIND] [--heads H] [--dim-head D] [--latent-self-attend=true|false] [--num-inds M] [--ln=true|false]", stderr)
	model := fs.String("model", "", "model kind to record as metadata \"kind\" (isab or a Set Transformer kind)")
	heads := fs.Int("heads", 0, "attention heads, recorded as metadata \"heads\"")
	dimHead := fs.Int("dim-head", 0, "width of one head, recorded as metadata \"dim_head\"")
	selfAttend := fs.Bool("latent-self-attend", false, "recorded as metadata \"latent_self_attend\" when given")
	numInds := fs.Int("num-inds", 0, "Set Transformer inducing points, recorded as metadata \"num_inds\"")
	ln := fs.Bool("ln", false, "Set Transformer LayerNorms, recorded as metadata \"ln\" when given")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("want two arguments, IN.pt and OUT.safetensors, got %d", len(pos))
	}
	if *heads < 0 || *dimHead < 0 || *numInds < 0 {
		return usagef("--heads, --dim-head and --num-inds must be positive")
	}
	in, out := pos[0], pos[1]
	if err := safetensors.CheckWritable(out); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	f, err := safetensors.ReadAnyFile(in)
	if err != nil {
		return err
	}
	meta := map[string]string{}
	for k, v := range f.Metadata {
		meta[k] = v
	}
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "model":
			meta["kind"] = *model
		case "heads":
			meta["heads"] = strconv.Itoa(*heads)
		case "dim-head":
			meta["dim_head"] = strconv.Itoa(*dimHead)
		case "latent-self-attend":
			meta["latent_self_attend"] = strconv.FormatBool(*selfAttend)
		case "num-inds":
			meta["num_inds"] = strconv.Itoa(*numInds)
		case "ln":
			meta["ln"] = strconv.FormatBool(*ln)
		}
	})
	if len(meta) == 0 {
		meta = nil
	}
	ts := make([]*safetensors.Tensor, 0, len(f.Tensors))
	for _, name := range f.Names() {
		ts = append(ts, f.Tensors[name])
	}
	if err := safetensors.WriteFile(out, ts, meta); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d tensors, %d metadata entries\n", out, len(ts), len(meta))
	return nil
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments, which it returns. Errors are as parse's.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		out := fs.Output()
		fs.SetOutput(io.Discard)
		err := fs.Parse(args)
		fs.SetOutput(out)
		if errors.Is(err, flag.ErrHelp) {
			return nil, parse(fs, []string{"--help"})
		}
		if err != nil {
			return nil, usagef("%v", err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
