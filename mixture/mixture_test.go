package mixture

import (
	"math"
	"testing"
)

func TestFromOutput(t *testing.T) {
	m, err := FromOutput([][]float64{{0, 1, 2, 0, 100}, {math.Log(3), -1, 0, -50, 25}})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(m.Pi[0]-0.25) > 1e-15 || math.Abs(m.Pi[1]-0.75) > 1e-15 {
		t.Errorf("pi %v, want [0.25 0.75]", m.Pi)
	}
	if m.Mu[0] != [2]float64{1, 2} || m.Mu[1] != [2]float64{-1, 0} {
		t.Errorf("mu %v", m.Mu)
	}
	want := [][2]float64{{math.Log(2), 100}, {SigmaMin, 25}} // softplus(0), identity above 20, the floor
	for k := range want {
		for d := range want[k] {
			if math.Abs(m.Sigma[k][d]-want[k][d]) > 1e-12 {
				t.Errorf("sigma[%d][%d] = %v, want %v", k, d, m.Sigma[k][d], want[k][d])
			}
		}
	}
}

func TestLogLik(t *testing.T) {
	// One standard-normal component: log p at the mean is -log(2 pi).
	one := Mixture{Pi: []float64{1}, Mu: [][2]float64{{0, 0}}, Sigma: [][2]float64{{1, 1}}}
	if got := one.LogLik([]float64{0, 0}); math.Abs(got+math.Log(2*math.Pi)) > 1e-12 {
		t.Errorf("LogLik at the mean = %v, want %v", got, -math.Log(2*math.Pi))
	}
	// Two identical halves give the same density as one component, and
	// the sum runs over points.
	two := Mixture{Pi: []float64{0.5, 0.5}, Mu: [][2]float64{{1, 2}, {1, 2}}, Sigma: [][2]float64{{0.5, 2}, {0.5, 2}}}
	single := Mixture{Pi: []float64{1}, Mu: two.Mu[:1], Sigma: two.Sigma[:1]}
	pts := []float64{0, 0, 1, 2, 3, -1}
	if a, b := two.LogLik(pts), single.LogLik(pts); math.Abs(a-b) > 1e-12 {
		t.Errorf("split mixture %v, single %v", a, b)
	}
}

func TestFromFlat(t *testing.T) {
	m, err := FromFlat([]float32{0, 1, 2, 0, 100, 0, -1, 0, -50, 25})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Pi) != 2 || m.Pi[0] != 0.5 || m.Mu[1] != [2]float64{-1, 0} || m.Sigma[1][0] != SigmaMin {
		t.Errorf("FromFlat: %+v", m)
	}
	for _, bad := range [][]float32{nil, {1, 2, 3}, make([]float32, 7)} {
		if _, err := FromFlat(bad); err == nil {
			t.Errorf("FromFlat of %d values: no error", len(bad))
		}
	}
	if _, err := FromOutput([][]float64{{1, 2, 3, 4, 5}, {1, 2}}); err == nil {
		t.Errorf("FromOutput with a short row: no error")
	}
}
