package view

import (
	"context"
	"fmt"
)

// App is the viewer's model of what is on screen: a point set, the model's
// prediction for it (computed on the model's device: see Model), and which
// attention row is shown. The window maps keys and clicks to its methods;
// the screenshot path only calls State.
type App struct {
	Model  *Model
	N      int
	Seed   int64
	Block  string // "isab" (first ISAB's inducing points) or "pma" (PMA seeds)
	Query  int    // inducing point or seed index
	Head   int
	Width  int
	Height int
	Points [][2]float64
	Pred   *Prediction
}

// NewApp samples a set of n points with seed and runs the model on it.
func NewApp(m *Model, n int, seed int64, block string, width, height int) (*App, error) {
	if m == nil {
		return nil, fmt.Errorf("view: nil model")
	}
	if block != "isab" && block != "pma" {
		return nil, fmt.Errorf("view: block %q is neither isab nor pma", block)
	}
	if n < 1 {
		return nil, fmt.Errorf("view: need at least one point, got %d", n)
	}
	a := &App{Model: m, N: n, Seed: seed, Block: block, Width: width, Height: height}
	a.Points, _ = Sample(n, seed)
	return a, a.predict()
}

// predict runs the model on the device for the current points. The
// window's key and click handlers have no context to pass, and one pass
// on the viewer's few hundred points is short, so it is not cancellable.
func (a *App) predict() error {
	p, err := a.Model.Predict(context.Background(), a.Points)
	if err != nil {
		return err
	}
	a.Pred = p
	return nil
}

func (a *App) queries() int {
	if a.Block == "pma" {
		return a.Model.Seeds
	}
	return a.Model.NumInds
}

// Next and Prev step through the inducing points (or seeds); NextHead
// through the heads.
func (a *App) Next() { a.Query = (a.Query + 1) % a.queries() }

// Prev steps back one inducing point (or seed).
func (a *App) Prev() { a.Query = (a.Query + a.queries() - 1) % a.queries() }

// NextHead shows the next attention head.
func (a *App) NextHead() { a.Head = (a.Head + 1) % a.Model.Heads }

// Resample draws a new set with the next seed.
func (a *App) Resample() error {
	a.Seed++
	a.Points, _ = Sample(a.N, a.Seed)
	return a.predict()
}

// AddPoint adds a point at pixel (px, py) of the frame, when that lies in
// the plot, and reruns the model; it reports whether it added one.
func (a *App) AddPoint(px, py float64) (bool, error) {
	s := a.State()
	if !s.InPlot(px, py) {
		return false, nil
	}
	x, y := s.Unproject(px, py)
	a.Points = append(a.Points, [2]float64{x, y})
	return true, a.predict()
}

// State describes the current frame.
func (a *App) State() *State {
	a.Query %= a.queries()
	a.Head %= a.Model.Heads
	rows := a.Pred.ISAB
	what := fmt.Sprintf("ISAB1 INDUCING %d/%d", a.Query+1, a.queries())
	if a.Block == "pma" {
		rows = a.Pred.PMA
		what = fmt.Sprintf("PMA SEED %d/%d", a.Query+1, a.queries())
	}
	return &State{
		Width:   a.Width,
		Height:  a.Height,
		Points:  a.Points,
		Heat:    rows[a.Head][a.Query],
		Mixture: a.Pred.Mixture,
		Title: []string{
			"ISAB-VK VIEW",
			fmt.Sprintf("N=%d  SEED=%d", len(a.Points), a.Seed),
			"",
			"ATTENTION OF",
			what,
			fmt.Sprintf("HEAD %d/%d", a.Head+1, a.Model.Heads),
		},
		MixtureSource: "DEVICE",
		Footer: []string{
			"N/P  INDUCING POINT",
			"H    NEXT HEAD",
			"R    RESAMPLE",
			"CLICK ADD POINT",
			"Q    QUIT",
		},
	}
}
