package view

import (
	"math"
	"math/rand"
)

// Sample draws n points as examples/clustering/common.py does: a mixture of
// 4 Gaussians with pi ~ Dirichlet(1,1,1,1), means ~ Uniform(-4, 4)^2 and
// isotropic standard deviation 0.3. The same seed gives the same set (with
// Go's generator, not PyTorch's). It also returns the true mixture.
func Sample(n int, seed int64) ([][2]float64, Mixture) {
	const k, std = 4, 0.3
	rng := rand.New(rand.NewSource(seed))
	var truth Mixture
	sum := 0.0
	for i := 0; i < k; i++ {
		e := -math.Log(1 - rng.Float64())
		truth.Pi = append(truth.Pi, e)
		sum += e
	}
	for i := 0; i < k; i++ {
		truth.Pi[i] /= sum
		truth.Mu = append(truth.Mu, [2]float64{-4 + 8*rng.Float64(), -4 + 8*rng.Float64()})
		truth.Sigma = append(truth.Sigma, [2]float64{std, std})
	}
	pts := make([][2]float64, n)
	for j := range pts {
		u, c := rng.Float64(), 0
		for acc := truth.Pi[0]; u > acc && c < k-1; {
			c++
			acc += truth.Pi[c]
		}
		pts[j] = [2]float64{truth.Mu[c][0] + std*rng.NormFloat64(), truth.Mu[c][1] + std*rng.NormFloat64()}
	}
	return pts, truth
}
