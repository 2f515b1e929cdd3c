package view

import (
	"fmt"
	"math"
)

// PanelWidth is the width in pixels of the legend panel on the right of
// every frame; the plot fills the rest.
const PanelWidth = 232

// State is everything one frame shows.
type State struct {
	Width, Height int
	// Points is the set in world coordinates.
	Points [][2]float64
	// Heat is one value per point (any non-negative scale; the frame
	// divides by the largest); nil draws every point at the bottom colour.
	Heat []float64
	// Mixture is drawn as ellipses at 1 and 2 sigma per component.
	Mixture Mixture
	// MixtureSource names where the mixture was computed (App says
	// "DEVICE"); empty shows nothing.
	MixtureSource string
	// Title and Footer are legend lines above and below the heat bar and
	// the mixture list.
	Title, Footer []string
	// Center and Scale (pixels per unit) place the world in the plot area;
	// a zero Scale fits the square [-6, 6]^2.
	Center [2]float64
	Scale  float64
}

// PointRadius is the radius in pixels of a drawn point.
const PointRadius = 3.5

// ComponentColors are the colours of the mixture components, in order
// (repeated past the fourth).
var ComponentColors = [][3]uint8{
	{90, 200, 255}, {110, 230, 120}, {255, 120, 210}, {235, 235, 235},
}

func (s *State) plotWidth() int { return max(s.Width-PanelWidth, 1) }

func (s *State) scale() float64 {
	if s.Scale > 0 {
		return s.Scale
	}
	return float64(min(s.plotWidth(), s.Height)) / 12.5
}

// Project maps world (x, y) to pixel coordinates (y grows downwards).
func (s *State) Project(x, y float64) (px, py float64) {
	k := s.scale()
	return float64(s.plotWidth())/2 + (x-s.Center[0])*k, float64(s.Height)/2 - (y-s.Center[1])*k
}

// Unproject maps pixel coordinates back to the world.
func (s *State) Unproject(px, py float64) (x, y float64) {
	k := s.scale()
	return (px-float64(s.plotWidth())/2)/k + s.Center[0], (float64(s.Height)/2-py)/k + s.Center[1]
}

// InPlot says whether a pixel lies in the plot area.
func (s *State) InPlot(px, py float64) bool {
	return px >= 0 && py >= 0 && px < float64(s.plotWidth()) && py < float64(s.Height)
}

// HeatValues returns the per-point values in [0, 1] that the frame colours
// by: Heat divided by its largest value.
func (s *State) HeatValues() []float64 {
	t := make([]float64, len(s.Points))
	mx := 0.0
	for i := range t {
		if i < len(s.Heat) {
			mx = math.Max(mx, s.Heat[i])
		}
	}
	for i := range t {
		if i < len(s.Heat) && mx > 0 {
			t[i] = s.Heat[i] / mx
		}
	}
	return t
}

var heatStops = [5][3]float64{
	{0.30, 0.22, 0.60}, {0.55, 0.20, 0.60}, {0.85, 0.30, 0.35}, {0.98, 0.60, 0.12}, {0.99, 0.95, 0.50},
}

// HeatColor is the colour of a point with heat value t in [0, 1], the same
// map as the frame shader's.
func HeatColor(t float64) [3]uint8 {
	t = math.Max(0, math.Min(1, t)) * 4
	i := min(int(t), 3)
	f := t - float64(i)
	var c [3]uint8
	for j := range c {
		v := heatStops[i][j] + (heatStops[i+1][j]-heatStops[i][j])*f
		c[j] = uint8(math.Floor(math.Max(0, math.Min(1, v))*255 + 0.5))
	}
	return c
}

// Validate checks the frame size.
func (s *State) Validate() error {
	if s.Width < PanelWidth+32 || s.Height < 240 || s.Width > 8192 || s.Height > 8192 {
		return fmt.Errorf("view: frame %dx%d outside %dx240 .. 8192x8192", s.Width, s.Height, PanelWidth+32)
	}
	return nil
}
