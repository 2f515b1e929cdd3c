// Package window shows the view in a GLFW window presented through a Vulkan
// swapchain (vk.Presenter). Each frame is drawn by view's compute shader
// into a storage buffer on the compute device, copied into a host-visible
// transfer buffer of the presenting device, and from there into the
// swapchain image with vkCmdCopyBufferToImage. All Vulkan calls go through
// package vk: GLFW only makes the window and its surface.
//
// Keys: n / p next and previous inducing point (or seed), h next head,
// r resample the set, q or Esc quit; a left click adds a point.
//
// This package is the only one in the module that imports GLFW.
package window

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/go-gl/glfw/v3.3/glfw"

	"github.com/isab-vk/isab-vk/view"
	"github.com/isab-vk/isab-vk/vk"
)

func init() {
	// GLFW must be called from the process's main thread.
	runtime.LockOSThread()
}

// Options tune Run.
type Options struct {
	// Frames, when positive, closes the window after that many frames have
	// been presented (for tests and demos).
	Frames int
	// Keys are pressed one per presented frame, as if typed (for tests).
	Keys string
	// Log receives a line per notable event (nil: none).
	Log func(format string, args ...any)
}

// session is one Run: the window, its presenter and what the loop keeps.
type session struct {
	dev     *vk.Device
	app     *view.App
	win     *glfw.Window
	p       *vk.Presenter
	r       *view.Renderer
	logf    func(format string, args ...any)
	dirty   bool  // the view changed: draw and present a frame
	failure error // an error from a callback, returned by the loop
}

// Run opens a window of app's size and shows app until the window is
// closed, q or Esc is pressed, or opts.Frames frames were shown. dev draws
// the frames; the window presents them through a vk.Presenter, on the
// device of dev's name where it can present. With the validation layer on
// (ISAB_VALIDATION=1), Run reads vk.ValidationMessages when it ends and
// fails with them, if any.
func Run(dev *vk.Device, app *view.App, opts Options) error {
	err := run(dev, app, opts)
	if msgs := vk.ValidationMessages(); len(msgs) > 0 {
		err = errors.Join(err, fmt.Errorf("window: the validation layer reported %d message(s):\n%s", len(msgs), strings.Join(msgs, "\n")))
	}
	return err
}

func run(dev *vk.Device, app *view.App, opts Options) error {
	s := &session{dev: dev, app: app, logf: opts.Log, dirty: true}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	// GLFW logs a missing display rather than failing Init, so check first.
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return errors.New("window: no display (DISPLAY is not set); use --screenshot out.png to render a frame offscreen, or xvfb-run")
	}
	if err := glfw.Init(); err != nil {
		return fmt.Errorf("window: %w", err)
	}
	defer glfw.Terminate()
	if !glfw.VulkanSupported() {
		return errors.New("window: GLFW finds no Vulkan loader")
	}
	glfw.WindowHint(glfw.ClientAPI, glfw.NoAPI)
	glfw.WindowHint(glfw.Resizable, glfw.False)
	win, err := glfw.CreateWindow(app.Width, app.Height, "isab view", nil, nil)
	if err != nil {
		return fmt.Errorf("window: %w", err)
	}
	defer win.Destroy()
	s.win = win
	exts := win.GetRequiredInstanceExtensions()
	if len(exts) == 0 {
		return errors.New("window: the Vulkan loader offers no window-surface extensions")
	}
	fw, fh := win.GetFramebufferSize()
	s.p, err = vk.OpenPresenter(vk.PresentOptions{
		Extensions: exts,
		Surface:    windowSurface(win),
		Width:      fw,
		Height:     fh,
		Device:     dev.Info().Name,
	})
	if err != nil {
		return err
	}
	defer s.p.Close() // before the window is destroyed
	w, h := s.p.Size()
	s.logf("presenting on %s, %dx%d, format %s, %d images", s.p.Info().Name, w, h, s.p.Format(), s.p.Images())
	defer func() {
		if s.r != nil {
			s.r.Close()
		}
	}()
	s.listen()
	return s.loop(opts)
}

// key acts on a key press: n, p, h, r, q or Esc (27).
func (s *session) key(k rune) {
	switch k {
	case 'n':
		s.app.Next()
	case 'p':
		s.app.Prev()
	case 'h':
		s.app.NextHead()
	case 'r':
		s.failure = s.app.Resample()
	case 'q', 27:
		s.win.SetShouldClose(true)
		return
	default:
		return
	}
	s.dirty = true
}

// listen installs the window's key, mouse and refresh callbacks.
func (s *session) listen() {
	keyNames := map[glfw.Key]rune{glfw.KeyN: 'n', glfw.KeyP: 'p', glfw.KeyH: 'h', glfw.KeyR: 'r', glfw.KeyQ: 'q', glfw.KeyEscape: 27}
	s.win.SetKeyCallback(func(_ *glfw.Window, k glfw.Key, _ int, action glfw.Action, _ glfw.ModifierKey) {
		if action == glfw.Press || action == glfw.Repeat {
			if c, ok := keyNames[k]; ok {
				s.key(c)
			}
		}
	})
	s.win.SetMouseButtonCallback(func(w *glfw.Window, b glfw.MouseButton, action glfw.Action, _ glfw.ModifierKey) {
		if b != glfw.MouseButtonLeft || action != glfw.Press {
			return
		}
		x, y := w.GetCursorPos()
		ww, wh := w.GetSize()
		fw, fh := w.GetFramebufferSize()
		if ww > 0 && wh > 0 {
			x, y = x*float64(fw)/float64(ww), y*float64(fh)/float64(wh)
		}
		added, err := s.app.AddPoint(x, y)
		if err != nil {
			s.failure = err
		}
		s.dirty = s.dirty || added
	})
	s.win.SetRefreshCallback(func(*glfw.Window) { s.dirty = true })
}

// loop draws and presents a frame whenever the view changed, until the
// window closes or opts.Frames frames were presented.
func (s *session) loop(opts Options) error {
	frames := 0
	keys := []rune(strings.ToLower(opts.Keys))
	for !s.win.ShouldClose() {
		if s.failure != nil {
			return s.failure
		}
		if s.dirty {
			s.dirty = false
			presented, err := s.frame()
			if err != nil {
				return err
			}
			if !presented {
				continue
			}
			frames++
			if len(keys) > 0 {
				s.logf("key %q", keys[0])
				s.key(keys[0])
				keys = keys[1:]
				s.dirty = true
			}
			if opts.Frames > 0 {
				if frames >= opts.Frames {
					s.logf("presented %d frames", frames)
					break
				}
				s.dirty = true // keep presenting until the count is reached
			}
		}
		glfw.WaitEventsTimeout(0.25)
	}
	return s.failure
}

// frame draws the view at the swapchain's size and presents it. When the
// swapchain turned out stale it makes it again for the window's size,
// drops the renderer (whose size it fixed) and asks for another frame.
func (s *session) frame() (presented bool, err error) {
	s.app.Width, s.app.Height = s.p.Size()
	if s.r == nil {
		if s.r, err = view.NewRenderer(s.dev, s.app.Width, s.app.Height); err != nil {
			return false, err
		}
	}
	img, err := s.r.Frame(context.Background(), s.app.State())
	if err != nil {
		return false, err
	}
	stale, err := s.p.Present(img.Pix)
	if err != nil || !stale {
		return err == nil, err
	}
	if err := s.p.Resize(s.win.GetFramebufferSize()); err != nil {
		return false, err
	}
	s.r.Close()
	s.r = nil
	s.dirty = true
	return false, nil
}
