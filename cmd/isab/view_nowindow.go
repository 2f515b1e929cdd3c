//go:build !window || nowindow

package main

import (
	"errors"

	"github.com/isab-vk/isab-vk/view"
	"github.com/isab-vk/isab-vk/vk"
)

// hasWindow says that this build has no window: it is the headless isab
// (the default build; -tags nowindow means the same), which links no X11
// library, and isab view without --screenshot hands over to isab-view
// (execViewer).
const hasWindow = false

// openWindow is the viewer's window in a build without it; runView hands
// over to isab-view before it would get here.
func openWindow(*vk.Device, *view.App, int, string, func(string, ...any)) error {
	return errors.New("this isab was built without the viewer's window (go build -tags window makes isab-view); use --screenshot out.png")
}
