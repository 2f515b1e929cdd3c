package benchkit

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal (an *os.File on a tty).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Progress draws a one-line progress bar, redrawn in place with carriage
// returns. A nil *Progress draws nothing, so callers need no checks.
type Progress struct {
	w     io.Writer
	total int
	done  int
	shown bool
}

// NewProgress returns a bar for total steps on w, or nil when w is not a
// terminal or there is only one step.
func NewProgress(w io.Writer, total int) *Progress {
	if total < 2 || !IsTerminal(w) {
		return nil
	}
	return newProgress(w, total)
}

func newProgress(w io.Writer, total int) *Progress { return &Progress{w: w, total: total} }

const barWidth = 30

// Start shows the bar with the step now running, described by label.
func (p *Progress) Start(label string) {
	if p == nil {
		return
	}
	filled := barWidth * p.done / p.total
	fmt.Fprintf(p.w, "\r\x1b[K[%s%s] %d/%d %s", strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled),
		p.done+1, p.total, label)
	p.shown = true
}

// Done counts the running step as finished and erases the bar, so that
// other output can follow; the next Start draws it again.
func (p *Progress) Done() {
	if p == nil {
		return
	}
	p.done = min(p.done+1, p.total)
	p.Clear()
}

// Clear erases the bar if it is shown.
func (p *Progress) Clear() {
	if p == nil || !p.shown {
		return
	}
	fmt.Fprint(p.w, "\r\x1b[K")
	p.shown = false
}
