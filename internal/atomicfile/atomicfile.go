// Package atomicfile writes files so that a failure never destroys what was
// there: the new contents go to a temporary file in the same directory,
// which is synced and renamed over the target. It also tells, before a long
// computation, whether a path can be written at all.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Write writes path atomically with the contents that write produces: into
// a temporary file in the same directory, which is synced, given mode 0644
// (or the permission bits of the file it replaces) and renamed over path;
// the directory is then synced, best effort. On any failure, write's
// included, the temporary file is removed and an existing file at path is
// left as it was. When path is a symbolic link, the file it points to is
// replaced. A directory or any other non-regular file at path is an error
// (a FIFO or a device is never opened). Replacing a file gives it a new
// inode: other links to the old file keep the old contents, and its owner
// becomes the writer.
func Write(path string, write func(io.Writer) error) (err error) {
	real, mode, err := target(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(real)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(real)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = write(tmp); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), real); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// WriteFile is Write for contents already in memory.
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// CheckWritable reports whether Write could write path, without touching
// path itself, so that a program can fail before a long computation rather
// than after it. It fails when path is a directory or exists as anything
// but a regular file (or a symbolic link to one), when its directory does
// not exist or is not a directory, and when a file cannot be created and
// removed in that directory.
func CheckWritable(path string) error {
	real, _, err := target(path)
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	dir := filepath.Dir(real)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("cannot write %s: directory %s does not exist", path, dir)
	case err != nil:
		return fmt.Errorf("cannot write %s: %w", path, err)
	case !fi.IsDir():
		return fmt.Errorf("cannot write %s: %s is not a directory", path, dir)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(real)+".check-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: directory %s is not writable: %w", path, dir, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("cannot write %s: removing a test file: %w", path, err)
	}
	return nil
}

// target resolves path for writing: the file a symbolic link points to, or
// path itself. It returns the permission bits the written file should have:
// those of the file it replaces, else 0644. A directory or other
// non-regular file at path is an error.
func target(path string) (string, fs.FileMode, error) {
	real := path
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if real, err = filepath.EvalSymlinks(path); err != nil {
			return "", 0, fmt.Errorf("resolving the symbolic link %s: %w", path, err)
		}
	}
	fi, err := os.Stat(real)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return real, 0o644, nil
	case err != nil:
		return "", 0, err
	case !fi.Mode().IsRegular():
		return "", 0, fmt.Errorf("%s is %s, not a regular file", real, FileKind(fi.Mode()))
	}
	return real, fi.Mode().Perm(), nil
}

// syncDir flushes the directory entry of a rename, where the system allows
// it; failures are ignored.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}

// FileKind names the kind of file a mode describes, for messages: "a
// directory", "a named pipe (FIFO)", "a character device", ...
func FileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m.IsRegular():
		return "a regular file"
	}
	return "an irregular file"
}
