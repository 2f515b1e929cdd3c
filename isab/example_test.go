package isab_test

import (
	"context"
	"fmt"
	"math/rand"

	"github.com/isab-vk/isab-vk/isab"
	"github.com/isab-vk/isab-vk/vk"
)

// A block with 4 learned latents over a batch of 2 sets of 10 elements,
// the last 3 elements of the second set masked out.
func ExampleModel_Forward() {
	dev, err := vk.Open(vk.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dev.Close()
	cfg := isab.Config{Dim: 16, Heads: 2, DimHead: 8, NumLatents: 4, LatentSelfAttend: true}
	m, err := isab.New(dev, cfg, isab.RandomWeights(cfg, 1)) // or isab.Load(dev, path, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	r := rand.New(rand.NewSource(1))
	x, _ := isab.NewTensor(dev, isab.RandomNormal(r, 2*10*16), 2, 10, 16)
	defer x.Free()
	keep := make([]bool, 2*10)
	for i := range keep {
		keep[i] = i < 17
	}
	mask, _ := isab.NewMask(dev, keep, 2, 10)
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
