package isab_test

import (
	"context"
	"fmt"
	"math"
	"math/rand"

	"github.com/isab-vk/isab-vk/isab"
	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

// Load the weights that isab-pytorch's ISAB exported (a state_dict saved with
// safetensors, its configuration in the metadata), run them on the inputs of
// the same fixture and compare with PyTorch's output, computed in float64.
// Examples run in the package folder, so the module's testdata is one level
// up.
func ExampleLoad() {
	const dir = "../testdata/"
	dev, err := vk.Open(vk.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() {
		if err := dev.Close(); err != nil {
			fmt.Println(err)
		}
	}()
	m, err := isab.Load(dev, dir+"tiny_basic.weights.safetensors", isab.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	fmt.Println(m.Config())

	in, err := isab.ReadInput(dir + "tiny_basic.input.safetensors") // x, and no mask or latents here
	if err != nil {
		fmt.Println(err)
		return
	}
	x, err := isab.NewTensor(dev, in.X, in.XShape...)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer x.Free()
	out, lat, err := m.Forward(context.Background(), x)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer out.Free()
	defer lat.Free()
	fmt.Println("out", out.Shape(), "latents", lat.Shape())

	want, err := safetensors.ReadFile(dir + "tiny_basic.expected.safetensors")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range []struct {
		name string
		t    *isab.Tensor
	}{{"out", out}, {"latents", lat}} {
		got, err := r.t.Read()
		if err != nil {
			fmt.Println(err)
			return
		}
		e, err := nmse(got, want, r.name)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s matches PyTorch (NMSE <= 1e-9): %v\n", r.name, e <= 1e-9)
	}
	// Output:
	// dim=8 heads=1 dim_head=4 latents=1 latent_self_attend=false
	// out [1 1 8] latents [1 1 8]
	// out matches PyTorch (NMSE <= 1e-9): true
	// latents matches PyTorch (NMSE <= 1e-9): true
}

// nmse is ref.NMSE of got against the tensor name of f.
func nmse(got []float32, f *safetensors.File, name string) (float64, error) {
	t, ok := f.Get(name)
	if !ok {
		return 0, fmt.Errorf("no tensor %q", name)
	}
	want, err := t.Float64()
	if err != nil {
		return 0, err
	}
	if len(want) != len(got) {
		return 0, fmt.Errorf("%s: %d values, want %d", name, len(got), len(want))
	}
	return ref.NMSE(got, want), nil
}

// A block with 4 learned latents over a batch of 2 sets of 10 elements,
// the last 3 elements of the second set masked out.
func ExampleModel_Forward() {
	dev, err := vk.Open(vk.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() {
		if err := dev.Close(); err != nil {
			fmt.Println(err)
		}
	}()
	cfg := isab.Config{Dim: 16, Heads: 2, DimHead: 8, NumLatents: 4, LatentSelfAttend: true}
	m, err := isab.New(dev, cfg, isab.RandomWeights(cfg, 1)) // or isab.Load(dev, path, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	r := rand.New(rand.NewSource(1))
	x, err := isab.NewTensor(dev, isab.RandomNormal(r, 2*10*16), 2, 10, 16)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer x.Free()
	keep := make([]bool, 2*10)
	for i := range keep {
		keep[i] = i < 17
	}
	mask, err := isab.NewMask(dev, keep, 2, 10)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mask.Free()

	out, lat, err := m.Forward(context.Background(), x, isab.WithMask(mask))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer out.Free()
	defer lat.Free()
	fmt.Println("out", out.Shape(), "latents", lat.Shape())
	// Output: out [2 10 16] latents [2 4 16]
}

// Record the pass over x and its mask once, then replay it: each Run reads
// whatever x holds, and leaves its results in the plan's own Out and
// Latents, which Close frees with the rest of the plan.
func ExampleModel_Prepare() {
	dev, err := vk.Open(vk.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() {
		if err := dev.Close(); err != nil {
			fmt.Println(err)
		}
	}()
	cfg := isab.Config{Dim: 16, Heads: 2, DimHead: 8, NumLatents: 4}
	m, err := isab.New(dev, cfg, isab.RandomWeights(cfg, 1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	const batch, n = 2, 10
	r := rand.New(rand.NewSource(1))
	x, err := isab.NewTensor(dev, isab.RandomNormal(r, batch*n*cfg.Dim), batch, n, cfg.Dim)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer x.Free()
	keep := make([]bool, batch*n)
	for i := range keep {
		keep[i] = i%n < 8 // the last 2 elements of each set are padding
	}
	mask, err := isab.NewMask(dev, keep, batch, n)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mask.Free()

	ctx := context.Background()
	plan, err := m.Prepare(x, isab.WithMask(mask)) // x and mask must outlive the plan
	if err != nil {
		fmt.Println(err)
		return
	}
	defer plan.Close() // frees plan.Out() and plan.Latents() too

	if err := plan.Run(ctx); err != nil {
		fmt.Println(err)
		return
	}
	first, err := plan.Out().Read() // owned by the plan, overwritten by the next Run
	if err != nil {
		fmt.Println(err)
		return
	}

	// New values of the same shape: the recorded pass and its buffers are reused.
	if err := x.Write(isab.RandomNormal(r, batch*n*cfg.Dim)); err != nil {
		fmt.Println(err)
		return
	}
	if err := plan.Run(ctx); err != nil {
		fmt.Println(err)
		return
	}
	out, err := plan.Out().Read()
	if err != nil {
		fmt.Println(err)
		return
	}
	lat, err := plan.Latents().Read()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("out", plan.Out().Shape(), "latents", plan.Latents().Shape())
	fmt.Println("second run differs from the first:", maxAbsDiff(out, first) > 1e-3)

	// Forward on the same x gives the same values.
	fout, flat, err := m.Forward(ctx, x, isab.WithMask(mask))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer fout.Free()
	defer flat.Free()
	wantOut, err := fout.Read()
	if err != nil {
		fmt.Println(err)
		return
	}
	wantLat, err := flat.Read()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("second run matches Forward:", maxAbsDiff(out, wantOut) <= 1e-6 && maxAbsDiff(lat, wantLat) <= 1e-6)
	// Output:
	// out [2 10 16] latents [2 4 16]
	// second run differs from the first: true
	// second run matches Forward: true
}

// maxAbsDiff is the largest |a[i] - b[i]|.
func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}
