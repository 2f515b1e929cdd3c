//go:build window && !nowindow

package main

import (
	"github.com/isab-vk/isab-vk/view"
	"github.com/isab-vk/isab-vk/view/window"
	"github.com/isab-vk/isab-vk/vk"
)

// hasWindow says that this build has the viewer's window: it is isab-view
// (go build -tags window), which links GLFW and the X11 libraries.
const hasWindow = true

// openWindow runs the viewer's window (package view/window, GLFW on X11)
// until it is closed, or for frames frames when positive, pressing keys one
// per frame; logf, when not nil, gets a line per notable event.
func openWindow(dev *vk.Device, app *view.App, frames int, keys string, logf func(format string, args ...any)) error {
	return window.Run(dev, app, window.Options{Frames: frames, Keys: keys, Log: logf})
}
