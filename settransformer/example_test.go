package settransformer_test

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"

	"github.com/isab-vk/isab-vk/isab"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/settransformer"
	"github.com/isab-vk/isab-vk/vk"
)

// Save the state_dict of a small SetTransformer (dim_input=3,
// num_outputs=2, dim_output=5, num_inds=4, dim_hidden=8, num_heads=2,
// ln=False) with random weights, as PyTorch's safetensors save_file would,
// load it and run it on a batch of 2 sets of 7 points. The output holds one
// row of dim_output values per seed of the PMA.
func ExampleLoad() {
	const dimIn, dim, inds, seeds, dimOut = 3, 8, 4, 2, 5
	r := rand.New(rand.NewSource(1))
	var tensors []*safetensors.Tensor
	param := func(key string, shape ...int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() / math.Sqrt(float64(shape[len(shape)-1])))
		}
		tensors = append(tensors, safetensors.NewF32(key, shape, v))
	}
	linear := func(prefix string, in, out int) {
		param(prefix+"weight", out, in)
		param(prefix+"bias", out)
	}
	mab := func(prefix string, dimQ, dimK int) {
		linear(prefix+"fc_q.", dimQ, dim)
		linear(prefix+"fc_k.", dimK, dim)
		linear(prefix+"fc_v.", dimK, dim)
		linear(prefix+"fc_o.", dim, dim)
	}
	param("enc.0.I", 1, inds, dim) // ISAB(dim_input, dim_hidden)
	mab("enc.0.mab0.", dim, dimIn)
	mab("enc.0.mab1.", dimIn, dim)
	param("enc.1.I", 1, inds, dim) // ISAB(dim_hidden, dim_hidden)
	mab("enc.1.mab0.", dim, dim)
	mab("enc.1.mab1.", dim, dim)
	param("dec.0.S", 1, seeds, dim) // PMA
	mab("dec.0.mab.", dim, dim)
	mab("dec.1.mab.", dim, dim) // SAB
	mab("dec.2.mab.", dim, dim) // SAB
	linear("dec.3.", dim, dimOut)

	dir, err := os.MkdirTemp("", "settransformer-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "st.safetensors")
	meta := map[string]string{"kind": settransformer.KindModel, "heads": "2", "ln": "false"}
	if err := safetensors.WriteFile(path, tensors, meta); err != nil {
		fmt.Println(err)
		return
	}

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
	m, err := settransformer.Load(dev, path, settransformer.Options{}) // kind and heads from the metadata
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	fmt.Println(m.Config())

	x, err := isab.NewTensor(dev, isab.RandomNormal(r, 2*7*dimIn), 2, 7, dimIn)
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
	v, err := out.Read()
	if err != nil {
		fmt.Println(err)
		return
	}
	finite := true
	for _, f := range v {
		finite = finite && !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0)
	}
	fmt.Println("out", out.Shape(), "finite:", finite)
	// Output:
	// settransformer-model dim_in=3 dim=8 dim_out=5 heads=2 num_inds=4 seeds=2 ln=false
	// out [2 2 5] finite: true
}

// The trained amortised-clustering model of examples/clustering reads two
// sets of 6 points, drawn around (-2, -2) and (2, 2), and outputs 4 mixture
// components of (pi_logit, mu_x, mu_y, raw_sigma_x, raw_sigma_y) per set.
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
