//go:build nowindow

package main

import (
	"errors"

	"github.com/isab-vk/isab-vk/view"
	"github.com/isab-vk/isab-vk/vk"
)

// openWindow is the viewer's window in a build without it (-tags nowindow,
// for machines without the X11 libraries, such as make gpu-bundle's).
func openWindow(*vk.Device, *view.App, int, string, func(string, ...any)) error {
	return errors.New("this isab was built with -tags nowindow, without the viewer's window; use --screenshot out.png")
}
