package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// viewerName is the binary with the viewer's window: cmd/isab built with
// -tags window, which make build puts next to bin/isab.
const viewerName = "isab-view"

// viewerHandoffEnv is set in isab-view's environment when the headless isab
// hands over to it, so that a headless binary under that name fails instead
// of handing over to itself again.
const viewerHandoffEnv = "ISAB_VIEW_HANDOFF"

// findViewer returns the isab-view next to the running executable, else
// the one in PATH.
func findViewer() (string, error) {
	dir := ""
	if exe, err := os.Executable(); err == nil {
		dir = filepath.Dir(exe)
		p := filepath.Join(dir, viewerName)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath(viewerName); err == nil {
		return p, nil
	}
	where := "in PATH"
	if dir != "" {
		where = fmt.Sprintf("next to this isab (in %s) or in PATH", dir)
	}
	return "", fmt.Errorf("this isab has no window and finds no %s %s: run make build (it builds bin/isab-view), "+
		"or go build -tags window -o %s ./cmd/isab; --screenshot out.png renders a frame without it", viewerName, where, viewerName)
}

// execViewer runs "isab-view view args": the headless isab's isab view
// without --screenshot. From main, isab-view replaces this process (same
// arguments, standard streams, signals and exit status, and its own one
// line on a failure); called in-process (tests), it runs as a child writing
// to stdout and stderr.
func execViewer(args []string, stdout, stderr io.Writer) error {
	if os.Getenv(viewerHandoffEnv) != "" {
		exe, _ := os.Executable()
		return fmt.Errorf("%s was started as %s but has no window either: build it with go build -tags window -o %s ./cmd/isab (make build does)", exe, viewerName, viewerName)
	}
	path, err := findViewer()
	if err != nil {
		return err
	}
	argv := append([]string{path, "view"}, args...)
	env := append(os.Environ(), viewerHandoffEnv+"=1")
	if stdout == os.Stdout && stderr == os.Stderr {
		err := syscall.Exec(path, argv, env)
		return fmt.Errorf("starting %s: %w", path, err)
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Env, cmd.Stdin, cmd.Stdout, cmd.Stderr = env, os.Stdin, stdout, stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("%s: %v", path, ee)
		}
		return err
	}
	return nil
}
