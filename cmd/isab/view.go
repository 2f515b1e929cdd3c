package main

import (
	"context"
	"flag"
	"fmt"
	"image/png"
	"io"
	"os"

	"github.com/isab-vk/isab-vk/view"
	"github.com/isab-vk/isab-vk/vk"
)

const viewSynopsis = "[--weights W] [--n N] [--seed S] [--block isab|pma] [--query I] [--head H] [--size WxH] [--screenshot out.png] [--frames F] [--keys K] [-v] [--device SEL]"

// runView opens the viewer window, or with --screenshot renders one frame
// offscreen to a PNG. The headless isab (the default build) has no window:
// without --screenshot it hands over to isab-view (execViewer).
func runView(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("view", viewSynopsis, stderr)
	weights := fs.String("weights", "examples/clustering/weights.safetensors", "clustering model weights (safetensors)")
	n := fs.Int("n", 300, "points in the sampled set")
	seed := fs.Int64("seed", 1, "seed of the sampled set (r in the window takes the next)")
	block := fs.String("block", "isab", "whose attention to show: isab (inducing points of the first ISAB) or pma (PMA seeds)")
	query := fs.Int("query", 0, "inducing point (or seed) index, from 0")
	head := fs.Int("head", 0, "attention head, from 0")
	size := fs.String("size", "960x640", "frame size WxH in pixels")
	shot := fs.String("screenshot", "", "render one frame offscreen to this PNG and exit (no window)")
	device := fs.String("device", "", "device index or name substring (default ISAB_DEVICE, else the best)")
	frames := fs.Int("frames", 0, "close the window after this many frames (0: run until closed)")
	keys := fs.String("keys", "", "keys to press, one per frame, as if typed (for tests)")
	verbose := fs.Bool("v", false, "log window events to stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *shot == "" && !hasWindow {
		return execViewer(args, stdout, stderr) // the window is in isab-view
	}
	var w, h int
	if _, err := fmt.Sscanf(*size, "%dx%d", &w, &h); err != nil {
		return usagef("--size %q: want WxH such as 960x640", *size)
	}
	if *query < 0 || *head < 0 {
		return usagef("--query and --head must be >= 0")
	}
	if err := (&view.State{Width: w, Height: h}).Validate(); err != nil {
		return err
	}
	dev, err := vk.Open(vk.Options{Device: *device})
	if err != nil {
		return err
	}
	defer dev.Close()
	m, err := view.LoadModel(dev, *weights)
	if err != nil {
		if _, serr := os.Stat(*weights); serr != nil && !isFlagSet(fs, "weights") {
			return fmt.Errorf("%w (run from the repository root, or pass --weights)", err)
		}
		return err
	}
	defer m.Close()
	app, err := view.NewApp(m, *n, *seed, *block, w, h)
	if err != nil {
		return err
	}
	app.Query, app.Head = *query, *head
	if *shot == "" {
		var logf func(format string, args ...any)
		if *verbose {
			logf = func(format string, args ...any) { fmt.Fprintf(stderr, "isab view: "+format+"\n", args...) }
		}
		if err := openWindow(dev, app, *frames, *keys, logf); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "window closed (%d points, seed %d, %s %d, head %d)\n", len(app.Points), app.Seed, app.Block, app.Query, app.Head)
		return nil
	}
	img, err := view.Render(dev, app.State())
	if err != nil {
		return err
	}
	f, err := os.Create(*shot)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%dx%d, %d points, %s)\n", *shot, w, h, len(app.Points), dev.Info().Name)
	return nil
}

// isFlagSet says whether the flag name was given on the command line.
func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
