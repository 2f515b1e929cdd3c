package isab

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

func TestPoolSplit(t *testing.T) {
	for _, c := range []struct {
		batch, k int
		want     []int
	}{
		{3, 2, []int{2, 1}},
		{1, 2, []int{1, 0}},
		{2, 3, []int{1, 1, 0}},
		{7, 3, []int{3, 2, 2}},
		{33, 1, []int{33}},
		{0, 2, []int{0, 0}},
	} {
		if got := splitBatch(c.batch, c.k); !slices.Equal(got, c.want) {
			t.Errorf("splitBatch(%d, %d) = %v, want %v", c.batch, c.k, got, c.want)
		}
	}
}

// poolCase is a golden case, or a range of its batch elements, with its
// expected out and latents in float64.
type poolCase struct {
	name     string
	c        fixtureCase
	in       *Input
	out, lat []float64
}

// loadPoolCase reads the golden case name, keeping batch elements b0 to
// b1-1 (all with b1 = 0).
func loadPoolCase(t *testing.T, dir, name string, b0, b1 int) poolCase {
	t.Helper()
	var fc *fixtureCase
	for _, c := range readCases(t, dir) {
		if c.Name == name {
			fc = &c
		}
	}
	if fc == nil {
		t.Fatalf("golden cases.json has no case %s", name)
	}
	in, err := ReadInput(filepath.Join(dir, name+".input.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	exp, err := safetensors.ReadFile(filepath.Join(dir, name+".expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	get := func(n string) []float64 {
		tn, ok := exp.Get(n)
		if !ok {
			t.Fatalf("%s: expected file lacks %q", name, n)
		}
		v, err := tn.Float64()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	pc := poolCase{name: name, c: *fc, in: in, out: get("out"), lat: get("latents")}
	b := in.XShape[0]
	if b1 == 0 {
		return pc
	}
	// Keep elements b0..b1-1 of every batched tensor.
	part := func(v []float64, per int) []float64 { return v[b0*per : b1*per] }
	n, dim := in.XShape[1], in.XShape[2]
	pc.name = fmt.Sprintf("%s[%d:%d]", name, b0, b1)
	pc.out = part(pc.out, len(pc.out)/b)
	pc.lat = part(pc.lat, len(pc.lat)/b)
	sub := &Input{X: in.X[b0*n*dim : b1*n*dim], XShape: []int{b1 - b0, n, dim}, Latents: in.Latents, LatentsShape: in.LatentsShape}
	if in.Mask != nil {
		sub.Mask = in.Mask[b0*n : b1*n]
	}
	if len(in.LatentsShape) == 3 {
		per := in.LatentsShape[1] * in.LatentsShape[2]
		sub.Latents = in.Latents[b0*per : b1*per]
		sub.LatentsShape = []int{b1 - b0, in.LatentsShape[1], in.LatentsShape[2]}
	}
	pc.in = sub
	return pc
}

// options are the load options the case needs.
func (pc poolCase) options(p Precision) Options {
	opts := Options{Precision: p}
	if pc.c.MetadataHasConfig != nil && !*pc.c.MetadataHasConfig {
		opts.Heads, opts.DimHead, opts.LatentSelfAttend = pc.c.Heads, pc.c.DimHead, Bool(pc.c.LatentSelfAttend)
	}
	return opts
}

// check runs the case through the pool and compares with the golden
// results at bound.
func (pc poolCase) check(t *testing.T, p *Pool, bound float64) {
	t.Helper()
	out, lat, err := p.ForwardHost(context.Background(), pc.in)
	if err != nil {
		t.Fatalf("%s: %v", pc.name, err)
	}
	if len(out) != len(pc.out) || len(lat) != len(pc.lat) {
		t.Fatalf("%s: %d out and %d latent values, want %d and %d", pc.name, len(out), len(lat), len(pc.out), len(pc.lat))
	}
	eOut, eLat := ref.NMSE(out, pc.out), ref.NMSE(lat, pc.lat)
	t.Logf("%s on %d device(s), split %v, precisions %v: NMSE out %.3g latents %.3g",
		pc.name, len(p.models), p.Split(pc.in.XShape[0]), p.Precisions(), eOut, eLat)
	if !(eOut <= bound && eLat <= bound) {
		t.Errorf("%s: NMSE out %.3g latents %.3g, bound %g", pc.name, eOut, eLat, bound)
	}
}

func loadPool(t *testing.T, devs []*vk.Device, dir string, pc poolCase, p Precision) *Pool {
	t.Helper()
	pool, err := LoadOn(devs, filepath.Join(dir, pc.c.Name+".weights.safetensors"), pc.options(p))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestPoolOneDevice runs the pool's split and gather on one device (the
// default, lavapipe in make test): a pool of one, and pools holding the
// same device two and three times, whose shards run one after the other
// on its queue but are split and gathered as on several devices.
func TestPoolOneDevice(t *testing.T) {
	dir := testutil.GoldenDir(t)
	dev := testutil.Device(t)
	for _, c := range []struct {
		name   string
		copies int
		b0, b1 int
	}{
		{"isab_self_attend_mask", 1, 0, 0}, // batch 3 with a mask, one device
		{"isab_self_attend_mask", 2, 0, 0}, // batch 3 on 2: 2 + 1
		{"isab_external_3d", 3, 0, 0},      // batch 2 on 3, batched latents: one idle
		{"isab_external_2d", 2, 0, 0},      // shared latents and a random mask: 1 + 1
		{"isab_basic", 2, 1, 2},            // batch 1 on 2: one idle
	} {
		pc := loadPoolCase(t, dir, c.name, c.b0, c.b1)
		t.Run(fmt.Sprintf("%s/x%d", pc.name, c.copies), func(t *testing.T) {
			devs := slices.Repeat([]*vk.Device{dev}, c.copies)
			pc.check(t, loadPool(t, devs, dir, pc, FP32), fp32Bound)
		})
	}
}

// TestPoolDevices runs golden cases across every device present, which
// must be at least two: under scripts/swiftshader.sh both, SwiftShader
// and lavapipe, two implementations with different capabilities.
func TestPoolDevices(t *testing.T) {
	dir := testutil.GoldenDir(t)
	devs := testutil.Devices(t, 2)
	cases := []poolCase{
		loadPoolCase(t, dir, "isab_self_attend_mask", 0, 0), // batch 3, mask: 2 + 1
		loadPoolCase(t, dir, "isab_external_3d", 0, 0),      // batched latents: 1 + 1
		loadPoolCase(t, dir, "isab_empty_mask_row", 0, 0),   // a fully masked row
		loadPoolCase(t, dir, "isab_external_2d", 1, 2),      // batch 1: one idle device
	}
	for _, pc := range cases {
		t.Run(pc.name, func(t *testing.T) {
			pc.check(t, loadPool(t, devs, dir, pc, FP32), fp32Bound)
		})
	}
	t.Run("auto", func(t *testing.T) {
		// Every device resolves auto for itself.
		pc := cases[0]
		pool := loadPool(t, devs, dir, pc, Auto)
		for i, d := range pool.Devices() {
			want, err := ResolvePrecision(d.Info(), Auto)
			if err != nil {
				t.Fatal(err)
			}
			if got := pool.Precisions()[i]; got != want {
				t.Errorf("device %d (%s) runs %s, ResolvePrecision says %s", i, d.Info().Name, got, want)
			}
		}
		pc.check(t, pool, fp16Bound)
	})
	t.Run("fp16", func(t *testing.T) {
		// FP16 is refused, naming the device, where one lacks 16-bit
		// storage; a pool of one FP16 model and FP32 others runs each
		// shard in its own precision.
		pc := cases[0]
		var half, full []*vk.Device
		for _, d := range devs {
			if d.Info().Storage16 {
				half = append(half, d)
			} else {
				full = append(full, d)
			}
		}
		if len(full) > 0 {
			_, err := LoadOn(devs, filepath.Join(dir, pc.c.Name+".weights.safetensors"), pc.options(FP16))
			if err == nil || !strings.Contains(err.Error(), full[0].Info().Name) {
				t.Errorf("FP16 on a pool with %s: error %v, want one naming it", full[0].Info().Name, err)
			}
		}
		if len(half) == 0 {
			t.Skip("no device with 16-bit storage: no FP16 shard to run")
		}
		var models []*Model
		for _, d := range devs {
			p := FP32
			if d == half[0] {
				p = FP16
			}
			pm := loadPool(t, []*vk.Device{d}, dir, pc, p)
			models = append(models, pm.models...)
			pm.models = nil // handed to the mixed pool
		}
		pool, err := NewPool(models...)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		if !slices.Contains(pool.Precisions(), FP16) {
			t.Fatalf("precisions %v, want one FP16", pool.Precisions())
		}
		pc.check(t, pool, fp16Bound)
	})
}

var errInjected = errors.New("injected device failure")

// TestPoolFailure makes one device fail at each stage of a pass while the
// others work, and checks that the pass returns an error naming that
// device, that nothing hangs, that the pass's memory is freed on every
// device and that the pool then runs correctly. It uses every device when
// there are two or more, else the default device twice.
func TestPoolFailure(t *testing.T) {
	dir := testutil.GoldenDir(t)
	var devs []*vk.Device
	if infos, err := vk.Devices(); err == nil && len(infos) >= 2 {
		devs = testutil.Devices(t, 2)
	} else {
		d := testutil.Device(t)
		t.Logf("one device: the failures are injected into a pool holding %s twice", d.Info().Name)
		devs = []*vk.Device{d, d}
	}
	pc := loadPoolCase(t, dir, "isab_self_attend_mask", 0, 0) // batch 3: 2 + 1
	pool := loadPool(t, devs, dir, pc, FP32)
	pc.check(t, pool, fp32Bound) // compiles the pipelines, so that the baseline below holds them
	type count struct{ objs, bytes int64 }
	live := func() []count {
		var cs []count
		for _, d := range devs {
			o, b := d.LiveObjects()
			cs = append(cs, count{o, b})
		}
		return cs
	}
	base := live()
	for _, stage := range []string{"upload", "record", "run", "read"} {
		for victim := range devs {
			t.Run(fmt.Sprintf("%s/device%d", stage, victim), func(t *testing.T) {
				pool.hook = failAt(victim, stage)
				defer func() { pool.hook = nil }()
				err := forwardWithin(t, pool, pc.in, 2*time.Minute)
				name := devs[victim].Info().Name
				if !errors.Is(err, errInjected) {
					t.Fatalf("error %v, want the injected failure", err)
				}
				t.Logf("%v", err)
				want := fmt.Sprintf("pool device %d (%s", victim, name)
				if msg := err.Error(); !strings.Contains(msg, want) || !strings.Contains(msg, stage) {
					t.Errorf("error %q does not name %q and stage %s", msg, want, stage)
				}
				if got := live(); !slices.Equal(got, base) {
					t.Errorf("live objects and bytes per device %v after the failure, %v before", got, base)
				}
			})
		}
	}
	t.Run("cancel", func(t *testing.T) {
		// The caller's context ending is reported as such, not as a device failure.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		pool.hook = func(_ context.Context, dev int, stage string) error {
			if dev == 0 && stage == "run" {
				cancel()
			}
			return nil
		}
		defer func() { pool.hook = nil }()
		_, _, err := pool.ForwardHost(ctx, pc.in)
		if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "pool device") {
			t.Errorf("error %v, want the context's cancellation", err)
		}
		if got := live(); !slices.Equal(got, base) {
			t.Errorf("live objects and bytes per device %v after the cancellation, %v before", got, base)
		}
	})
	pc.check(t, pool, fp32Bound) // the devices still work
}

// failAt returns a pool hook that fails device victim at stage. At "run"
// it first waits until another device has started its pass, so that the
// failure stops work in flight.
func failAt(victim int, stage string) func(context.Context, int, string) error {
	started := make(chan struct{})
	var once sync.Once
	return func(ctx context.Context, dev int, st string) error {
		if st != stage {
			return nil
		}
		if dev != victim {
			if st == "run" {
				once.Do(func() { close(started) })
			}
			return nil
		}
		if st == "run" {
			select {
			case <-started:
			case <-ctx.Done():
			case <-time.After(time.Minute):
			}
		}
		return fmt.Errorf("device %d at %s: %w", dev, st, errInjected)
	}
}

// forwardWithin runs pool.ForwardHost and fails the test when it does not
// return within limit.
func forwardWithin(t *testing.T, pool *Pool, in *Input, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, _, err := pool.ForwardHost(context.Background(), in)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("the pool's pass did not return within %v after a device failed", limit)
		return nil
	}
}

func TestNewPoolRefuses(t *testing.T) {
	dev := testutil.Device(t)
	objs0, bytes0 := dev.LiveObjects()
	cfg := Config{Dim: 8, Heads: 1, DimHead: 4, NumLatents: 2}
	newModel := func(c Config) *Model {
		m, err := New(dev, c, RandomWeights(c, 1))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	other := cfg
	other.NumLatents = 3
	for _, c := range []struct {
		name   string
		models func() []*Model
		want   string
	}{
		{"none", func() []*Model { return nil }, "at least one"},
		{"nil", func() []*Model { return []*Model{newModel(cfg), nil} }, "model 1 is nil"},
		{"twice", func() []*Model { m := newModel(cfg); return []*Model{m, newModel(cfg), m} }, "model 2 is model 0 again"},
		{"config", func() []*Model { return []*Model{newModel(cfg), newModel(other)} }, "configuration"},
	} {
		_, err := NewPool(c.models()...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
		// The refused models are closed, each once.
		if objs, bytes := dev.LiveObjects(); objs != objs0 || bytes != bytes0 {
			t.Errorf("%s: %d objects and %d bytes live after the refusal, %d and %d before", c.name, objs, bytes, objs0, bytes0)
		}
	}
	if _, err := LoadOn(nil, "unused", Options{}); err == nil {
		t.Error("LoadOn with no device: no error")
	}
	pool, err := NewPool(newModel(cfg))
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	if _, _, err := pool.ForwardHost(context.Background(), &Input{X: make([]float32, 8), XShape: []int{1, 1, 8}}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("ForwardHost on a closed pool: error %v", err)
	}
	if pool.Config() != cfg {
		t.Errorf("Config after Close: %v, want %v", pool.Config(), cfg)
	}
}

// TestPoolBadInput checks that inputs the split cannot follow are refused
// before anything is uploaded.
func TestPoolBadInput(t *testing.T) {
	dev := testutil.Device(t)
	cfg := Config{Dim: 8, Heads: 1, DimHead: 4}
	var models []*Model
	for range 2 {
		m, err := New(dev, cfg, RandomWeights(cfg, 1))
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, m)
	}
	pool, err := NewPool(models...)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	x := make([]float32, 3*5*8)
	for _, c := range []struct {
		name string
		in   *Input
		want string
	}{
		{"nil", nil, "nil"},
		{"dim", &Input{X: x, XShape: []int{3, 5, 4, 2}}, "want [batch, n, 8]"},
		{"values", &Input{X: x[1:], XShape: []int{3, 5, 8}}, "values"},
		{"mask", &Input{X: x, XShape: []int{3, 5, 8}, Mask: make([]bool, 14)}, "mask"},
		{"latents batch", &Input{X: x, XShape: []int{3, 5, 8}, Latents: make([]float32, 2*4*8), LatentsShape: []int{2, 4, 8}}, "latents have shape [2, 4, 8]"},
		{"no latents", &Input{X: x, XShape: []int{3, 5, 8}}, "no learned latents"},
		{"latents dim", &Input{X: x, XShape: []int{3, 5, 8}, Latents: make([]float32, 4*7), LatentsShape: []int{4, 7}}, "latents have shape [4, 7]"},
		{"latents rank", &Input{X: x, XShape: []int{3, 5, 8}, Latents: make([]float32, 8), LatentsShape: []int{8}}, "latents have shape [8]"},
	} {
		_, _, err := pool.ForwardHost(context.Background(), c.in)
		t.Logf("%s: %v", c.name, err)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
}
