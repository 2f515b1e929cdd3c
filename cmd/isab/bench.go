package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/isab-vk/isab-vk/internal/atomicfile"
	"github.com/isab-vk/isab-vk/internal/benchkit"
	"github.com/isab-vk/isab-vk/isab"
	"github.com/isab-vk/isab-vk/ops"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

const benchSynopsis = "[--shape b,n,dim,heads,m]... [--sweep-n FROM..TO] [--precision fp32|fp16|auto] [--iters N] [--reps R] [--device D|all] [-o table|md|csv|json|jsonl] [--stages] [--plot FILE.png]"

// benchArgs are the parsed flags of isab bench.
type benchArgs struct {
	shapes     []benchkit.Shape
	dimHead    int
	selfAttend bool
	precision  isab.Precision
	iters      int
	reps       int
	warmup     int
	stages     bool
	peakN      int
}

// maxPasses bounds --iters, --warmup (bench) and --runs (demo), so that
// their sums and the loops over them cannot overflow; it also bounds
// --iters times --reps.
const maxPasses = 1_000_000_000

// The n of the scaling target: time(scaleHi)/time(scaleLo) is 16 when the
// forward pass is linear in n.
const scaleLo, scaleHi = 4096, 65536

// allDevices is the --device value for every device: bench times each in
// turn, then (in the table output, with several devices) all together
// through an isab.Pool; run splits the batch across them.
const allDevices = "all"

// benchCmd is what isab bench's flags ask for.
type benchCmd struct {
	args     benchArgs
	format   benchkit.Format
	device   string
	plotPath string
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseBench(args, stderr)
	if err != nil {
		return err
	}
	selections, err := benchSelections(c.device)
	if err != nil {
		return err
	}
	var rw *benchkit.RecordWriter
	if c.format != benchkit.Table {
		if rw, err = benchkit.NewRecordWriter(stdout, c.format); err != nil {
			return err
		}
	}
	prov := provenance()
	var results []benchkit.Result
	var names []string // the devices timed
	for i, sel := range selections {
		if c.format == benchkit.Table && i > 0 {
			fmt.Fprintln(stdout)
		}
		res, name, err := benchDevice(ctx, sel, c.args, prov, c.format, rw, stdout, stderr)
		if err != nil {
			if len(selections) > 1 {
				return fmt.Errorf("device %s (%s): %w", sel, name, err)
			}
			return err
		}
		results = append(results, res...)
		names = append(names, name)
	}
	if c.format == benchkit.Table && len(selections) > 1 {
		if err := benchPool(ctx, c.args, stdout, stderr); err != nil {
			return err
		}
	}
	if rw != nil {
		if err := rw.Close(); err != nil {
			return err
		}
	}
	// The plot is written before anything else is said, so that a failure
	// to write it is the only line on stderr.
	if c.plotPath != "" {
		title := fmt.Sprintf("isab bench on %s", strings.Join(names, ", "))
		if err := benchkit.WritePlot(c.plotPath, title, results); err != nil {
			return err
		}
	}
	notes := stdout
	if c.format != benchkit.Table {
		notes = stderr
	}
	writeScaling(notes, results)
	if c.plotPath != "" {
		fmt.Fprintf(notes, "wrote %s\n", c.plotPath)
	}
	return nil
}

// parseBench parses and checks isab bench's flags.
func parseBench(args []string, stderr io.Writer) (benchCmd, error) {
	fs := newFlags("bench", benchSynopsis, stderr)
	var shapes benchkit.ShapeList
	fs.Var(&shapes, "shape", "b,n,dim,heads,m to time, repeatable (default: the isab-pytorch README's "+benchkit.DefaultShape.String()+")")
	sweep := fs.String("sweep-n", "", "FROM..TO: time every shape at n = FROM, 2*FROM, 4*FROM, ... up to TO instead of its own n")
	dimHead := fs.Int("dim-head", isab.DefaultDimHead, "width of one head")
	selfAttend := fs.Bool("latent-self-attend", true, "attn1 attends over concat(latents, x), as in the README example")
	precision := fs.String("precision", string(isab.FP32), "number format on the device: fp32, fp16 or auto")
	iters := fs.Int("iters", 5, "timed forward passes per shape and repetition")
	reps := fs.Int("reps", 1, "repetitions of the timed passes; the statistics cover all iters*reps passes")
	warmup := fs.Int("warmup", 1, "untimed passes first")
	device := fs.String("device", "", "device index or name substring, or \"all\" for every device in turn, then (table output) all together, the batch split across them (default: $ISAB_DEVICE, else the best GPU)")
	format := fs.String("o", string(benchkit.Table), "output format: table, md (GitHub markdown), csv, json (one array) or jsonl (one object per line)")
	asJSON := fs.Bool("json", false, "the same as -o jsonl")
	stages := fs.Bool("stages", false, "record a GPU timestamp after every dispatch and report time per kernel and per forward step, with the kernel each step chose")
	plotPath := fs.String("plot", "", "write median time and device memory against n (log-log) to this PNG file")
	peakN := fs.Int("peak-n", 1024, "size of the square FP32 matmul timed once per device (matmul_gflops), beside the device's peaks (peak_gflops, peak_fp16_gflops, peak_coop_gflops); 0 skips them all")
	if err := parse(fs, args); err != nil {
		return benchCmd{}, err
	}
	if err := checkBenchCounts(*iters, *reps, *warmup, *dimHead, *peakN, *plotPath); err != nil {
		return benchCmd{}, err
	}
	outFmt, err := benchFormat(fs, *format, *asJSON)
	if err != nil {
		return benchCmd{}, err
	}
	if *plotPath != "" {
		// Fail before the runs, not after them, when the plot cannot be written.
		if err := atomicfile.CheckWritable(*plotPath); err != nil {
			return benchCmd{}, fmt.Errorf("--plot: %w", err)
		}
	}
	prec, err := isab.ParsePrecision(*precision)
	if err != nil {
		return benchCmd{}, usagef("--precision: %v", err)
	}
	var sw *benchkit.Sweep
	if *sweep != "" {
		s, err := benchkit.ParseSweep(*sweep)
		if err != nil {
			return benchCmd{}, usagef("--sweep-n: %v", err)
		}
		sw = &s
	}
	if len(shapes) == 0 {
		shapes = benchkit.ShapeList{benchkit.DefaultShape}
	}
	return benchCmd{
		args: benchArgs{
			shapes: benchkit.Expand(shapes, sw), dimHead: *dimHead, selfAttend: *selfAttend, precision: prec,
			iters: *iters, reps: *reps, warmup: *warmup, stages: *stages, peakN: *peakN,
		},
		format: outFmt, device: *device, plotPath: *plotPath,
	}, nil
}

// checkBenchCounts refuses pass counts, widths and a plot name that bench
// cannot use, as usage errors.
func checkBenchCounts(iters, reps, warmup, dimHead, peakN int, plotPath string) error {
	switch {
	case iters < 1 || iters > maxPasses:
		return usagef("--iters must be in [1, %d], got %d", maxPasses, iters)
	case reps < 1 || reps > maxPasses/iters:
		return usagef("--reps must be in [1, %d] (--iters times --reps at most %d), got %d", maxPasses/iters, maxPasses, reps)
	case warmup < 0 || warmup > maxPasses:
		return usagef("--warmup must be in [0, %d], got %d", maxPasses, warmup)
	case dimHead < 1:
		return usagef("--dim-head must be at least 1, got %d", dimHead)
	case peakN < 0:
		return usagef("--peak-n must be at least 0, got %d", peakN)
	case plotPath != "" && !strings.HasSuffix(strings.ToLower(plotPath), ".png"):
		return usagef("--plot writes a PNG; give a file name ending in .png, got %q", plotPath)
	}
	return nil
}

// coopPeak is the key of the cooperative-matrix peak in devicePeaks' map.
const coopPeak = "coop"

// devicePeaks measures dev's multiply-add peak (benchkit.DevicePeak) in
// the precisions the shapes run in: fp32, and fp16 where a's precision
// resolves to it, with then the cooperative-matrix peak
// (benchkit.DeviceCoopPeak, key coopPeak) where the device has a usable
// shape; none with --peak-n 0.
func devicePeaks(ctx context.Context, dev *vk.Device, a benchArgs) (map[string]float64, error) {
	peaks := map[string]float64{}
	if a.peakN == 0 {
		return peaks, nil
	}
	precs := []isab.Precision{isab.FP32}
	if p, err := isab.ResolvePrecision(dev.Info(), a.precision); err == nil && p == isab.FP16 && dev.Info().Float16 {
		precs = append(precs, isab.FP16)
	}
	for _, p := range precs {
		g, err := benchkit.DevicePeak(ctx, dev, p == isab.FP16)
		if err != nil {
			return nil, err
		}
		peaks[string(p)] = g
	}
	if _, ok := benchkit.CoopPeakShape(dev.Info()); ok && slices.Contains(precs, isab.FP16) {
		g, err := benchkit.DeviceCoopPeak(ctx, dev)
		if err != nil {
			return nil, err
		}
		peaks[coopPeak] = g
	}
	return peaks, nil
}

// setPeak fills res's peaks (those of fp16 only in fp16 records) and its
// share of the peak of the kernels it ran (benchkit.Result.SetPeakPct).
func setPeak(res *benchkit.Result, peaks map[string]float64) {
	if g, ok := peaks[string(isab.FP32)]; ok {
		res.PeakGFLOPs = &g
	}
	if res.Precision == string(isab.FP16) {
		if g, ok := peaks[string(isab.FP16)]; ok {
			res.PeakFP16GFLOPs = &g
		}
		if g, ok := peaks[coopPeak]; ok {
			res.PeakCoopGFLOPs = &g
		}
	}
	res.SetPeakPct()
}

// benchFormat is the output format of -o, or -o jsonl for --json (which
// cannot go with another -o).
func benchFormat(fs *flag.FlagSet, format string, asJSON bool) (benchkit.Format, error) {
	outFmt, err := benchkit.ParseFormat(format)
	if err != nil {
		return outFmt, usagef("-o: %v", err)
	}
	oSet := false
	fs.Visit(func(f *flag.Flag) { oSet = oSet || f.Name == "o" })
	if asJSON {
		if oSet && outFmt != benchkit.JSONL {
			return outFmt, usagef("--json is -o jsonl; it cannot go with -o %s", outFmt)
		}
		outFmt = benchkit.JSONL
	}
	return outFmt, nil
}

// benchSelections lists the devices to time, as selections vk.Open
// understands: --device itself, or every device's index for "all".
func benchSelections(device string) ([]string, error) {
	if !allSelected(device) {
		return []string{device}, nil
	}
	infos, err := vk.Devices()
	if err != nil {
		return nil, err
	}
	var selections []string
	for _, in := range infos {
		selections = append(selections, strconv.Itoa(in.Index))
	}
	return selections, nil
}

// writeScaling prints time(scaleHi)/time(scaleLo) for every shape family
// swept over both, per device (scaling compares one device's results only).
func writeScaling(w io.Writer, results []benchkit.Result) {
	byDevice := map[int][]benchkit.Result{}
	var order []int
	for _, r := range results {
		if _, ok := byDevice[r.DeviceIndex]; !ok {
			order = append(order, r.DeviceIndex)
		}
		byDevice[r.DeviceIndex] = append(byDevice[r.DeviceIndex], r)
	}
	for _, d := range order {
		on := ""
		if len(order) > 1 {
			on = fmt.Sprintf(" on device %d", d)
		}
		for _, sc := range benchkit.ScalingRatios(byDevice[d], scaleLo, scaleHi) {
			fmt.Fprintf(w, "scaling time(n=%d)/time(n=%d) = %.2f (%d if linear in n) for %s%s\n",
				sc.NHi, sc.NLo, sc.Ratio, sc.NHi/sc.NLo, sc.Family, on)
		}
	}
}

// provenance describes this build and host for the records; benchDevice
// sets the timestamp of each.
func provenance() benchkit.Provenance {
	v := buildVersion()
	return benchkit.Provenance{
		ISABVersion: v.Version, Commit: v.Revision, Dirty: v.Modified, GoVersion: v.GoVersion,
		OS: v.GOOS, Arch: v.GOARCH,
	}
}

// benchDevice times every shape of a on the device that sel selects and
// writes the records: as a text section when format is Table, else through
// rw. It returns the records and the device's name (or sel when the device
// did not open).
func benchDevice(ctx context.Context, sel string, a benchArgs, prov benchkit.Provenance, format benchkit.Format,
	rw *benchkit.RecordWriter, stdout, stderr io.Writer) ([]benchkit.Result, string, error) {
	dev, err := vk.Open(vk.Options{Device: sel})
	if err != nil {
		return nil, sel, err
	}
	defer dev.Close()
	info := dev.Info()
	devInfo := benchkit.DeviceOf(info)
	// Refuse every shape that cannot fit before anything is allocated.
	for _, s := range a.shapes {
		if err := isab.CheckFits(dev, a.config(s), s.B, s.N, s.M, a.precision); err != nil {
			return nil, info.Name, fmt.Errorf("shape %s: %w", s, err)
		}
	}
	var matmul *float64
	if a.peakN > 0 {
		g, err := benchkit.PeakGFLOPs(ctx, dev, a.peakN, 3)
		if err != nil {
			return nil, info.Name, err
		}
		matmul = &g
	}
	peaks, err := devicePeaks(ctx, dev, a)
	if err != nil {
		return nil, info.Name, err
	}
	table := format == benchkit.Table
	if table {
		writeBenchHeader(stdout, info, a, peaks, matmul)
	}
	bar := benchkit.NewProgress(stderr, len(a.shapes))
	var results []benchkit.Result
	noted := false // said which precision auto resolved to
	for _, s := range a.shapes {
		bar.Start(s.String())
		res, err := benchOne(ctx, dev, s, a)
		bar.Done()
		if err != nil {
			return nil, info.Name, fmt.Errorf("shape %s: %w", s, err)
		}
		res.DeviceInfo, res.Provenance, res.MatmulGFLOPs = devInfo, prov, matmul
		res.Timestamp = time.Now().UTC().Format(time.RFC3339)
		setPeak(&res, peaks)
		results = append(results, res)
		if !table {
			if err := rw.Write(res); err != nil {
				return nil, info.Name, err
			}
			continue
		}
		if res.Precision != string(a.precision) && !noted {
			fmt.Fprintf(stdout, "(precision %s runs as %s on this device)\n", a.precision, res.Precision)
			noted = true
		}
		pct := "-"
		if res.PeakPct != nil {
			pct = fmt.Sprintf("%.0f", *res.PeakPct)
		}
		fmt.Fprintf(stdout, "%-28s %10.3f %10.3f %10.3f %10.3f %10.3f %10.1f %7s %10.1f\n",
			s, res.MsMean, res.MsStddev, res.MsMedian, res.MsMin, res.MsMax, res.GFLOPs, pct, float64(res.DeviceMemBytes)/(1<<20))
		if a.stages {
			benchkit.WriteStages(stdout, res.Stages)
		}
	}
	if table {
		fmt.Fprintf(stdout, "kernels: %s\n", kernelSummary(results))
	}
	return results, info.Name, nil
}

// writeBenchHeader prints the table's device line, with the device's peaks
// and the matmul's rate, and the column heads.
func writeBenchHeader(stdout io.Writer, info vk.Info, a benchArgs, peaks map[string]float64, matmul *float64) {
	fmt.Fprintf(stdout, "device %d: %s (%s), precision %s", info.Index, info.Name, info.Type, a.precision)
	for _, p := range []isab.Precision{isab.FP32, isab.FP16} {
		if g, ok := peaks[string(p)]; ok {
			fmt.Fprintf(stdout, ", %s multiply-add peak %.1f GFLOP/s", p, g)
		}
	}
	if g, ok := peaks[coopPeak]; ok {
		shape, _ := benchkit.CoopPeakShape(info)
		fmt.Fprintf(stdout, ", cooperative-matrix %dx%dx%d peak %.1f GFLOP/s", shape.M, shape.N, shape.K, g)
	}
	if matmul != nil {
		fmt.Fprintf(stdout, ", FP32 matmul %dx%dx%d: %.1f GFLOP/s", a.peakN, a.peakN, a.peakN, *matmul)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "%-28s %10s %10s %10s %10s %10s %10s %7s %10s\n",
		"b,n,dim,heads,m", "mean ms", "± sd ms", "median ms", "min ms", "max ms", "GFLOP/s", "% peak", "mem MiB")
}

// kernelSummary names the kernels of each step, once for a device's
// results when they agree, else per shape.
func kernelSummary(results []benchkit.Result) string {
	var lists []string
	for _, r := range results {
		if l := benchkit.KernelList(r.Kernels); !slices.Contains(lists, l) {
			lists = append(lists, l)
		}
	}
	if len(lists) == 1 {
		return lists[0]
	}
	var parts []string
	for _, r := range results {
		parts = append(parts, r.Shape().String()+": "+benchkit.KernelList(r.Kernels))
	}
	return strings.Join(parts, " | ")
}

// benchModel builds a model of random weights through the same loading path
// as a weights file, so that isab.Options (the precision) apply.
func benchModel(dev *vk.Device, cfg isab.Config, prec isab.Precision) (*isab.Model, error) {
	w := isab.RandomWeights(cfg, 1)
	inner := cfg.Inner()
	tensors := map[string]*safetensors.Tensor{
		"latents": safetensors.NewF32("latents", []int{cfg.NumLatents, cfg.Dim}, w.Latents),
	}
	for i, aw := range []isab.AttentionWeights{w.Attn1, w.Attn2} {
		layer := fmt.Sprintf("attn%d.", i+1)
		for _, t := range []*safetensors.Tensor{
			safetensors.NewF32(layer+"to_q.weight", []int{inner, cfg.Dim}, aw.Q),
			safetensors.NewF32(layer+"to_kv.weight", []int{2 * inner, cfg.Dim}, aw.KV),
			safetensors.NewF32(layer+"to_out.weight", []int{cfg.Dim, inner}, aw.Out),
		} {
			tensors[t.Name] = t
		}
	}
	opts := isab.Options{Heads: cfg.Heads, DimHead: cfg.DimHead, LatentSelfAttend: isab.Bool(cfg.LatentSelfAttend), Precision: prec}
	return isab.LoadFile(dev, &safetensors.File{Tensors: tensors}, opts)
}

// config is the block that shape s is timed with.
func (a benchArgs) config(s benchkit.Shape) isab.Config {
	return isab.Config{Dim: s.Dim, Heads: s.Heads, DimHead: a.dimHead, NumLatents: s.M, LatentSelfAttend: a.selfAttend}
}

func benchOne(ctx context.Context, dev *vk.Device, s benchkit.Shape, a benchArgs) (benchkit.Result, error) {
	cfg := a.config(s)
	m, err := benchModel(dev, cfg, a.precision)
	if err != nil {
		return benchkit.Result{}, err
	}
	defer m.Close()
	prec := m.Precision() // auto resolved
	r := rand.New(rand.NewSource(2))
	x, err := isab.NewTensor(dev, isab.RandomNormal(r, s.B*s.N*s.Dim), s.B, s.N, s.Dim)
	if err != nil {
		return benchkit.Result{}, err
	}
	defer x.Free()
	// The pass is recorded once and replayed, as a program running the same
	// shape again and again would do (isab.Model.Prepare); the peak device
	// memory covers the weights, x, the temporaries and the outputs.
	var last []isab.StageTime // the stage times of the latest run
	var opts []isab.ForwardOption
	if a.stages {
		opts = append(opts, isab.WithStageTimes(&last))
	}
	dev.ResetPeakBytes()
	first := time.Now()
	pl, err := m.Prepare(x, opts...)
	if err != nil {
		return benchkit.Result{}, err
	}
	defer pl.Close()
	var times []time.Duration
	var firstPass time.Duration // Prepare and the first Run: pipelines made and first dispatched
	var passes [][]isab.StageTime
	for i := 0; i < a.warmup+a.iters*a.reps; i++ {
		start := time.Now()
		if err := pl.Run(ctx); err != nil {
			return benchkit.Result{}, err
		}
		elapsed := time.Since(start)
		if i == 0 {
			firstPass = time.Since(first)
		}
		if i >= a.warmup {
			times = append(times, elapsed)
			passes = append(passes, append([]isab.StageTime(nil), last...))
		}
	}
	memPeak := dev.PeakBytes()
	st := benchkit.Summarize(times)
	gflop := cfg.FLOPs(s.B, s.N, s.M) / 1e9
	kernels := map[string]string{}
	for step, names := range pl.Kernels() {
		kernels[step] = strings.Join(names, "+")
	}
	res := benchkit.Result{
		Precision: string(prec),
		B:         s.B, N: s.N, Dim: s.Dim, Heads: s.Heads, DimHead: a.dimHead, M: s.M, SelfAtt: a.selfAttend,
		Iters: a.iters, Reps: a.reps, Passes: len(times),
		MsMean: st.Mean, MsStddev: st.Stddev, MsMedian: st.Median, MsMin: st.Min, MsMax: st.Max,
		GFLOPs:         gflop / (st.Median / 1e3),
		DeviceMemBytes: memPeak, Kernels: kernels,
		FirstPassMs: float64(firstPass.Microseconds()) / 1e3,
	}
	if a.stages {
		res.Stages = benchkit.AggregateStages(passes)
		if res.Stages != nil {
			if res.Stages.Choices, err = benchChoices(dev, s, a, prec); err != nil {
				return benchkit.Result{}, err
			}
		}
	}
	return res, nil
}

// benchChoices is stepChoices for a benchmarked shape, with the Ops the
// model uses (ops.New's defaults).
func benchChoices(dev *vk.Device, s benchkit.Shape, a benchArgs, prec isab.Precision) ([]benchkit.StepChoice, error) {
	o, err := ops.New(dev)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return stepChoices(o, s, a.dimHead, a.selfAttend, prec == isab.FP16), nil
}

// stats are the median, min and max of some times in milliseconds.
type stats struct{ median, min, max float64 }

// summarize gives the median, min and max of durations in milliseconds.
func summarize(ts []time.Duration) stats {
	s := benchkit.Summarize(ts)
	return stats{median: s.Median, min: s.Min, max: s.Max}
}

// benchPool times every shape of a on all devices together (isab.Pool: the
// batch split across them, each device's shard run from its own
// goroutine) and writes one more table section after the devices' own.
// A pass takes as long as its slowest shard, so the row shows what
// splitting the batch gains over the devices' own rows.
func benchPool(ctx context.Context, a benchArgs, stdout, stderr io.Writer) error {
	devs, err := openAll()
	if err != nil {
		return err
	}
	defer closeAll(devs)
	var names []string
	for _, d := range devs {
		names = append(names, strconv.Itoa(d.Info().Index))
	}
	fmt.Fprintf(stdout, "\nall devices together: %s (isab.Pool: the batch split across them, each device in the precision it resolves), precision %s\n",
		strings.Join(names, " + "), a.precision)
	fmt.Fprintf(stdout, "%-28s %10s %10s %10s %10s %10s %10s  %s\n",
		"b,n,dim,heads,m", "mean ms", "± sd ms", "median ms", "min ms", "max ms", "GFLOP/s", "split (precision)")
	bar := benchkit.NewProgress(stderr, len(a.shapes))
	for _, s := range a.shapes {
		bar.Start(s.String())
		st, split, err := benchPoolOne(ctx, devs, s, a)
		bar.Done()
		if err != nil {
			return fmt.Errorf("all devices together, shape %s: %w", s, err)
		}
		gflops := a.config(s).FLOPs(s.B, s.N, s.M) / 1e9 / (st.Median / 1e3)
		fmt.Fprintf(stdout, "%-28s %10.3f %10.3f %10.3f %10.3f %10.3f %10.1f  %s\n",
			s, st.Mean, st.Stddev, st.Median, st.Min, st.Max, gflops, split)
	}
	return nil
}

// benchPoolOne builds a pool of random weights on devs, prepares the pass
// over a random x of shape s and times its replays. It returns the
// statistics and the split, as "2 (fp32) + 1 (fp32)".
func benchPoolOne(ctx context.Context, devs []*vk.Device, s benchkit.Shape, a benchArgs) (benchkit.Stats, string, error) {
	var models []*isab.Model
	for _, d := range devs {
		m, err := benchModel(d, a.config(s), a.precision)
		if err != nil {
			for _, m := range models {
				m.Close()
			}
			return benchkit.Stats{}, "", fmt.Errorf("device %d (%s): %w", d.Info().Index, d.Info().Name, err)
		}
		models = append(models, m)
	}
	pool, err := isab.NewPool(models...)
	if err != nil {
		return benchkit.Stats{}, "", err
	}
	defer pool.Close()
	r := rand.New(rand.NewSource(2))
	in := &isab.Input{X: isab.RandomNormal(r, s.B*s.N*s.Dim), XShape: []int{s.B, s.N, s.Dim}}
	pl, err := pool.Prepare(ctx, in)
	if err != nil {
		return benchkit.Stats{}, "", err
	}
	defer pl.Close()
	var times []time.Duration
	for i := 0; i < a.warmup+a.iters*a.reps; i++ {
		start := time.Now()
		if err := pl.Run(ctx); err != nil {
			return benchkit.Stats{}, "", err
		}
		if i >= a.warmup {
			times = append(times, time.Since(start))
		}
	}
	var parts []string
	precs := pool.Precisions()
	for i, c := range pl.Split() {
		parts = append(parts, fmt.Sprintf("%d (%s)", c, precs[i]))
	}
	return benchkit.Summarize(times), strings.Join(parts, " + "), nil
}
