// Package benchkit holds the pieces of `isab bench` that are not about
// running the model: shapes and n sweeps, timing statistics, the JSON
// record, per-stage aggregation of GPU timestamps, the peak matmul rate,
// the plot and the terminal progress bar.
package benchkit

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Shape is one benchmarked input shape: x is [B, N, Dim], the block has
// Heads heads and M latents.
type Shape struct{ B, N, Dim, Heads, M int }

// DefaultShape is the isab-pytorch README example: x [1, 16384, 512],
// 8 heads, 128 latents.
var DefaultShape = Shape{B: 1, N: 16384, Dim: 512, Heads: 8, M: 128}

// String formats the shape as "b,n,dim,heads,m", the form ParseShape reads.
func (s Shape) String() string {
	return fmt.Sprintf("%d,%d,%d,%d,%d", s.B, s.N, s.Dim, s.Heads, s.M)
}

// Family is the shape without n: the shapes of one n sweep share it.
func (s Shape) Family() string {
	return fmt.Sprintf("b=%d dim=%d heads=%d m=%d", s.B, s.Dim, s.Heads, s.M)
}

// ParseShape reads "b,n,dim,heads,m" with every field a positive integer.
func ParseShape(v string) (Shape, error) {
	f := strings.Split(v, ",")
	if len(f) != 5 {
		return Shape{}, fmt.Errorf("want b,n,dim,heads,m (5 comma-separated integers), got %q", v)
	}
	var n [5]int
	for i, x := range f {
		k, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil || k < 1 {
			return Shape{}, fmt.Errorf("%q: every field of b,n,dim,heads,m must be a positive integer", v)
		}
		n[i] = k
	}
	return Shape{B: n[0], N: n[1], Dim: n[2], Heads: n[3], M: n[4]}, nil
}

// ShapeList is a repeatable flag.Value of shapes.
type ShapeList []Shape

// String lists the shapes separated by spaces.
func (l *ShapeList) String() string {
	parts := make([]string, len(*l))
	for i, s := range *l {
		parts[i] = s.String()
	}
	return strings.Join(parts, " ")
}

// Set appends one shape.
func (l *ShapeList) Set(v string) error {
	s, err := ParseShape(v)
	if err != nil {
		return err
	}
	*l = append(*l, s)
	return nil
}

// Sweep is an n range covered by doubling: From, 2*From, 4*From, ... up to
// and including To.
type Sweep struct{ From, To int }

// maxSweepN bounds n so that doubling never overflows.
const maxSweepN = 1 << 40

// ParseSweep reads "FROM..TO" with 1 <= FROM <= TO.
func ParseSweep(v string) (Sweep, error) {
	a, b, ok := strings.Cut(v, "..")
	if !ok {
		return Sweep{}, fmt.Errorf("want FROM..TO (for example 1024..65536), got %q", v)
	}
	from, err1 := strconv.Atoi(strings.TrimSpace(a))
	to, err2 := strconv.Atoi(strings.TrimSpace(b))
	switch {
	case err1 != nil || err2 != nil:
		return Sweep{}, fmt.Errorf("%q: FROM and TO must be integers", v)
	case from < 1 || to < 1:
		return Sweep{}, fmt.Errorf("%q: FROM and TO must be positive", v)
	case from > to:
		return Sweep{}, fmt.Errorf("%q: FROM is larger than TO", v)
	case to > maxSweepN:
		return Sweep{}, fmt.Errorf("%q: TO is larger than %d", v, maxSweepN)
	}
	return Sweep{From: from, To: to}, nil
}

// Ns lists the values of n: From doubled while it stays at most To.
func (w Sweep) Ns() []int {
	var ns []int
	for n := w.From; n <= w.To; n *= 2 {
		ns = append(ns, n)
	}
	return ns
}

// Expand replaces every shape's n by each n of the sweep, in order, and
// drops repeated shapes. A nil sweep leaves the shapes as they are.
func Expand(shapes []Shape, sweep *Sweep) []Shape {
	var out []Shape
	seen := map[Shape]bool{}
	add := func(s Shape) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, s := range shapes {
		if sweep == nil {
			add(s)
			continue
		}
		for _, n := range sweep.Ns() {
			s.N = n
			add(s)
		}
	}
	return out
}

// Stats summarize some times, in milliseconds: the median, minimum,
// maximum, mean and sample standard deviation (0 for one time).
type Stats struct{ Median, Min, Max, Mean, Stddev float64 }

// Summarize gives the Stats of durations in milliseconds; an empty slice
// gives NaNs.
func Summarize(ts []time.Duration) Stats {
	ms := make([]float64, len(ts))
	for i, t := range ts {
		ms[i] = float64(t) / 1e6
	}
	return SummarizeMs(ms)
}

// SummarizeMs is Summarize for times already in milliseconds. It sorts ms.
func SummarizeMs(ms []float64) Stats {
	if len(ms) == 0 {
		nan := math.NaN()
		return Stats{nan, nan, nan, nan, nan}
	}
	sort.Float64s(ms)
	med := ms[len(ms)/2]
	if len(ms)%2 == 0 {
		med = (ms[len(ms)/2-1] + ms[len(ms)/2]) / 2
	}
	sum := 0.0
	for _, v := range ms {
		sum += v
	}
	mean := sum / float64(len(ms))
	sd := 0.0
	if len(ms) > 1 {
		ss := 0.0
		for _, v := range ms {
			ss += (v - mean) * (v - mean)
		}
		sd = math.Sqrt(ss / float64(len(ms)-1))
	}
	return Stats{Median: med, Min: ms[0], Max: ms[len(ms)-1], Mean: mean, Stddev: sd}
}
