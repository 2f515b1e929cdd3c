package settransformer_test

import (
	"context"
	"fmt"
	"math"

	"github.com/isab-vk/isab-vk/isab"
	"github.com/isab-vk/isab-vk/settransformer"
	"github.com/isab-vk/isab-vk/vk"
)

// The trained amortised-clustering model of examples/clustering reads two
// sets of 6 points, drawn around (-2, -2) and (2, 2), and outputs 4 mixture
// components of (pi_logit, mu_x, mu_y, raw_sigma_x, raw_sigma_y) per set.
func ExampleModel_Forward() {
	dev, err := vk.Open(vk.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dev.Close()
	m, err := settransformer.Load(dev, "../examples/clustering/weights.safetensors", settransformer.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	fmt.Println(m.Config())

	pts := make([]float32, 0, 2*6*2)
	for s := 0; s < 2; s++ {
		for i := 0; i < 6; i++ {
			c := float32(-2)
			if i%2 == 1 {
				c = 2
			}
			pts = append(pts, c+0.1*float32(math.Sin(float64(7*i+s))), c+0.1*float32(math.Cos(float64(5*i+s))))
		}
	}
	x, err := isab.NewTensor(dev, pts, 2, 6, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer x.Free()
	out, err := m.Forward(context.Background(), x)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer out.Free()
	fmt.Println("out", out.Shape())
	// Output:
	// settransformer-model dim_in=2 dim=128 dim_out=5 heads=4 num_inds=32 seeds=4 ln=false
	// out [2 4 5]
}
