package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/isab-vk/isab-vk/isab"
	"github.com/isab-vk/isab-vk/vk"
)

// benchShape is one --shape: b,n,dim,heads,m.
type benchShape struct{ b, n, dim, heads, m int }

type shapeList []benchShape

func (s *shapeList) String() string {
	var parts []string
	for _, v := range *s {
		parts = append(parts, fmt.Sprintf("%d,%d,%d,%d,%d", v.b, v.n, v.dim, v.heads, v.m))
	}
	return strings.Join(parts, " ")
}

func (s *shapeList) Set(v string) error {
	f := strings.Split(v, ",")
	if len(f) != 5 {
		return fmt.Errorf("want b,n,dim,heads,m, got %q", v)
	}
	var n [5]int
	for i, x := range f {
		k, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil || k < 1 {
			return fmt.Errorf("%q: every field must be a positive integer", v)
		}
		n[i] = k
	}
	*s = append(*s, benchShape{n[0], n[1], n[2], n[3], n[4]})
	return nil
}

// benchResult is one line of --json output.
type benchResult struct {
	Device   string  `json:"device"`
	B        int     `json:"b"`
	N        int     `json:"n"`
	Dim      int     `json:"dim"`
	Heads    int     `json:"heads"`
	DimHead  int     `json:"dim_head"`
	M        int     `json:"m"`
	SelfAtt  bool    `json:"latent_self_attend"`
	MsMedian float64 `json:"ms_median"`
	MsMin    float64 `json:"ms_min"`
	MsMax    float64 `json:"ms_max"`
	GFLOPs   float64 `json:"gflops"`
}

type stats struct{ median, min, max float64 }

// summarize gives the median, min and max of durations in milliseconds.
func summarize(ts []time.Duration) stats {
	ms := make([]float64, len(ts))
	for i, t := range ts {
		ms[i] = float64(t) / 1e6
	}
	sort.Float64s(ms)
	med := ms[len(ms)/2]
	if len(ms)%2 == 0 {
		med = (ms[len(ms)/2-1] + ms[len(ms)/2]) / 2
	}
	return stats{median: med, min: ms[0], max: ms[len(ms)-1]}
}

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", "[--shape b,n,dim,heads,m]... [--iters N] [--json]", stderr)
	var shapes shapeList
	fs.Var(&shapes, "shape", "b,n,dim,heads,m to time, repeatable (default: the isab-pytorch README's 1,16384,512,8,128)")
	dimHead := fs.Int("dim-head", isab.DefaultDimHead, "width of one head")
	selfAttend := fs.Bool("latent-self-attend", true, "attn1 attends over concat(latents, x), as in the README example")
	iters := fs.Int("iters", 5, "timed forward passes per shape")
	warmup := fs.Int("warmup", 1, "untimed passes first")
	device := fs.String("device", "", "device index or name substring (default: $ISAB_DEVICE, else the best GPU)")
	asJSON := fs.Bool("json", false, "print one JSON object per shape")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *iters < 1 || *warmup < 0 || *dimHead < 1 {
		return fmt.Errorf("--iters and --dim-head must be at least 1, --warmup at least 0")
	}
	if len(shapes) == 0 {
		shapes = shapeList{{1, 16384, 512, 8, 128}}
	}
	dev, err := vk.Open(vk.Options{Device: *device})
	if err != nil {
		return err
	}
	defer dev.Close()
	info := dev.Info()
	if !*asJSON {
		fmt.Fprintf(stdout, "device %d: %s (%s)\n", info.Index, info.Name, info.Type)
		fmt.Fprintf(stdout, "%-28s %10s %10s %10s %10s\n", "b,n,dim,heads,m", "median ms", "min ms", "max ms", "GFLOP/s")
	}
	for _, s := range shapes {
		res, err := benchOne(dev, s, *dimHead, *selfAttend, *iters, *warmup)
		if err != nil {
			return fmt.Errorf("shape %d,%d,%d,%d,%d: %w", s.b, s.n, s.dim, s.heads, s.m, err)
		}
		res.Device = info.Name
		if *asJSON {
			if err := json.NewEncoder(stdout).Encode(res); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(stdout, "%-28s %10.2f %10.2f %10.2f %10.1f\n",
			fmt.Sprintf("%d,%d,%d,%d,%d", s.b, s.n, s.dim, s.heads, s.m), res.MsMedian, res.MsMin, res.MsMax, res.GFLOPs)
	}
	return nil
}

func benchOne(dev *vk.Device, s benchShape, dimHead int, selfAttend bool, iters, warmup int) (benchResult, error) {
	cfg := isab.Config{Dim: s.dim, Heads: s.heads, DimHead: dimHead, NumLatents: s.m, LatentSelfAttend: selfAttend}
	m, err := isab.New(dev, cfg, isab.RandomWeights(cfg, 1))
	if err != nil {
		return benchResult{}, err
	}
	defer m.Close()
	r := rand.New(rand.NewSource(2))
	x, err := isab.NewTensor(dev, isab.RandomNormal(r, s.b*s.n*s.dim), s.b, s.n, s.dim)
	if err != nil {
		return benchResult{}, err
	}
	defer x.Free()
	ctx := context.Background()
	var times []time.Duration
	for i := 0; i < warmup+iters; i++ {
		start := time.Now()
		out, lat, err := m.Forward(ctx, x)
		if err != nil {
			return benchResult{}, err
		}
		if i >= warmup {
			times = append(times, time.Since(start))
		}
		out.Free()
		lat.Free()
	}
	st := summarize(times)
	gflop := cfg.FLOPs(s.b, s.n, s.m) / 1e9
	return benchResult{
		B: s.b, N: s.n, Dim: s.dim, Heads: s.heads, DimHead: dimHead, M: s.m, SelfAtt: selfAttend,
		MsMedian: st.median, MsMin: st.min, MsMax: st.max, GFLOPs: gflop / (st.median / 1e3),
	}, nil
}
