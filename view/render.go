// Package view draws what the clustering Set Transformer sees: a 2-D point
// set, the Gaussian mixture the model predicts for it (ellipses at 1 and 2
// sigma) and the attention of one inducing point of the first ISAB, or one
// PMA seed, over the points as a heat map, with a legend. Both the mixture
// and the attention probabilities come from the engine on the device (see
// Model): the picture shows what the device computed, and the tests check
// it against the float64 reference of package ref.
//
// A frame is drawn by a compute shader (shaders/frame.comp) into a storage
// buffer on a vk.Device; Render reads it back as an image, without any
// window system. The window itself (GLFW and a Vulkan swapchain) lives in
// package view/window, so that this package does not depend on GLFW.
package view

import (
	"context"
	_ "embed"
	"fmt"
	"image"

	"github.com/isab-vk/isab-vk/vk"
)

//go:embed shaders/frame.spv
var frameSPIRV []byte

// Renderer draws frames of one size on a device. It is not safe for
// concurrent use.
type Renderer struct {
	dev            *vk.Device
	w, h           int
	kern           *vk.Kernel
	seq            *vk.Sequence
	pts, comps     *vk.Buffer
	overlay, frame *vk.Buffer
	overlayPix     []uint32
}

// NewRenderer prepares the pipeline and buffers for width x height frames.
func NewRenderer(dev *vk.Device, width, height int) (*Renderer, error) {
	st := State{Width: width, Height: height}
	if err := st.Validate(); err != nil {
		return nil, err
	}
	k, err := dev.Kernel(vk.KernelSpec{Name: "view_frame", Code: frameSPIRV, Buffers: 4, PushSize: 36})
	if err != nil {
		return nil, err
	}
	r := &Renderer{dev: dev, w: width, h: height, kern: k, overlayPix: make([]uint32, width*height)}
	if r.overlay, err = dev.NewBuffer(int64(width * height * 4)); err != nil {
		return nil, err
	}
	if r.frame, err = dev.NewBuffer(int64(width * height * 4)); err != nil {
		r.Close()
		return nil, err
	}
	r.seq = dev.NewSequence()
	return r, nil
}

// Close frees the renderer's buffers and sequence.
func (r *Renderer) Close() {
	if r.seq != nil {
		r.seq.Close()
	}
	for _, b := range []*vk.Buffer{r.pts, r.comps, r.overlay, r.frame} {
		if b != nil {
			b.Free()
		}
	}
}

// ensure makes *b a buffer of at least size bytes.
func (r *Renderer) ensure(b **vk.Buffer, size int64) error {
	if *b != nil && (*b).Size() >= size {
		return nil
	}
	if *b != nil {
		(*b).Free()
		*b = nil
	}
	nb, err := r.dev.NewBuffer(size)
	if err != nil {
		return err
	}
	*b = nb
	return nil
}

// Frame draws s, which must have the renderer's size, and returns the
// picture.
func (r *Renderer) Frame(ctx context.Context, s *State) (*image.RGBA, error) {
	if s.Width != r.w || s.Height != r.h {
		return nil, fmt.Errorf("view: state is %dx%d, renderer %dx%d", s.Width, s.Height, r.w, r.h)
	}
	heat := s.HeatValues()
	pts := make([]float32, 0, 4*max(len(s.Points), 1))
	for i, p := range s.Points {
		x, y := s.Project(p[0], p[1])
		pts = append(pts, float32(x), float32(y), float32(heat[i]), 0)
	}
	if len(pts) == 0 {
		pts = append(pts, 0, 0, 0, 0)
	}
	k := s.scale()
	comps := make([]float32, 0, 8*max(len(s.Mixture.Pi), 1))
	for i := range s.Mixture.Pi {
		mx, my := s.Project(s.Mixture.Mu[i][0], s.Mixture.Mu[i][1])
		c := ComponentColors[i%len(ComponentColors)]
		comps = append(comps, float32(mx), float32(my),
			float32(s.Mixture.Sigma[i][0]*k), float32(s.Mixture.Sigma[i][1]*k),
			float32(c[0])/255, float32(c[1])/255, float32(c[2])/255, float32(s.Mixture.Pi[i]))
	}
	if len(comps) == 0 {
		comps = make([]float32, 8)
	}
	if err := r.ensure(&r.pts, int64(4*len(pts))); err != nil {
		return nil, err
	}
	if err := r.ensure(&r.comps, int64(4*len(comps))); err != nil {
		return nil, err
	}
	if err := vk.Upload(r.pts, 0, pts); err != nil {
		return nil, err
	}
	if err := vk.Upload(r.comps, 0, comps); err != nil {
		return nil, err
	}
	drawLegend(r.overlayPix, s)
	if err := vk.Upload(r.overlay, 0, r.overlayPix); err != nil {
		return nil, err
	}
	ox, oy := s.Project(0, 0)
	push := vk.PushStruct(&framePush{
		Width: uint32(r.w), Height: uint32(r.h), NPoints: uint32(len(s.Points)), NComps: uint32(len(s.Mixture.Pi)),
		PlotW: uint32(s.plotWidth()), Radius: float32(PointRadius), Grid: float32(k), OriginX: float32(ox), OriginY: float32(oy),
	})
	if err := r.seq.Reset(); err != nil {
		return nil, err
	}
	groups := [3]uint32{uint32((r.w + 15) / 16), uint32((r.h + 15) / 16), 1}
	if err := r.seq.Dispatch(r.kern, groups, push, vk.In(r.pts), vk.In(r.comps), vk.In(r.overlay), vk.Out(r.frame)); err != nil {
		return nil, err
	}
	if err := r.seq.Run(ctx); err != nil {
		return nil, err
	}
	img := image.NewRGBA(image.Rect(0, 0, r.w, r.h))
	if err := r.frame.Read(0, img.Pix); err != nil {
		return nil, err
	}
	return img, nil
}

// Render draws one frame of s on dev and returns it; it needs no window
// system.
func Render(dev *vk.Device, s *State) (image.Image, error) {
	r, err := NewRenderer(dev, s.Width, s.Height)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Frame(context.Background(), s)
}

func packRGB(c [3]uint8) uint32 {
	return uint32(c[0]) | uint32(c[1])<<8 | uint32(c[2])<<16 | 255<<24
}

// drawLegend fills the overlay (R in the low byte, alpha 0 = transparent)
// with the legend panel's text, heat bar and component list.
func drawLegend(dst []uint32, s *State) {
	for i := range dst {
		dst[i] = 0
	}
	w, h := s.Width, s.Height
	x0 := s.plotWidth() + 14
	y := 16
	white := [3]uint8{225, 228, 235}
	grey := [3]uint8{150, 155, 170}
	for i, line := range s.Title {
		c := grey
		if i == 0 {
			c = white
		}
		drawText(dst, w, h, x0, y, line, c)
		y += lineHeight
	}
	// Heat bar.
	y += 6
	barW := PanelWidth - 28
	for i := 0; i < barW; i++ {
		fillRect(dst, w, h, x0+i, y, 1, 14, packRGB(HeatColor(float64(i)/float64(barW-1))))
	}
	y += 18
	drawText(dst, w, h, x0, y, "LOW", grey)
	drawText(dst, w, h, x0+barW-4*glyphAdvance+2, y, "HIGH", grey)
	y += lineHeight + 10
	head := "PREDICTED MIXTURE"
	if s.MixtureSource != "" {
		head += " (" + s.MixtureSource + ")"
	}
	drawText(dst, w, h, x0, y, head, white)
	y += lineHeight + 2
	for i := range s.Mixture.Pi {
		c := ComponentColors[i%len(ComponentColors)]
		fillRect(dst, w, h, x0, y, 12, glyphH, packRGB(c))
		line := fmt.Sprintf("PI %.2f (%.1f,%.1f)", s.Mixture.Pi[i], s.Mixture.Mu[i][0], s.Mixture.Mu[i][1])
		drawText(dst, w, h, x0+18, y, line, c)
		y += lineHeight
	}
	y += 4
	drawText(dst, w, h, x0, y, "ELLIPSES AT 1 AND 2 SIGMA", grey)
	y = h - 12 - len(s.Footer)*lineHeight
	for _, line := range s.Footer {
		drawText(dst, w, h, x0, y, line, grey)
		y += lineHeight
	}
}

// framePush is frame.comp's push-constant block, field for field
// (TestFramePushBlock compares them).
type framePush struct {
	Width, Height, NPoints, NComps, PlotW uint32
	Radius, Grid, OriginX, OriginY        float32
}
