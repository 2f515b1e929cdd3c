package safetensors

import (
	"fmt"
	"io"

	"github.com/isab-vk/isab-vk/internal/atomicfile"
)

// writeHook, when a test sets it, wraps the writer of WriteFile's temporary
// file so that the test can make the write fail midway.
var writeHook func(io.Writer) io.Writer

// WriteFile encodes tensors and metadata (see Encode) and writes them to
// path atomically: into a temporary file in the same directory, which is
// synced, given mode 0644 (or the permission bits of the file it replaces)
// and renamed over path; the directory is then synced, best effort. On any
// failure the temporary file is removed and an existing file at path is left
// as it was. When path is a symbolic link, the file it points to is
// replaced. Replacing a file gives it a new inode: other links to the old
// file keep the old contents, and its owner becomes the writer.
func WriteFile(path string, tensors []*Tensor, metadata map[string]string) error {
	data, err := Encode(tensors, metadata)
	if err != nil {
		return err
	}
	err = atomicfile.Write(path, func(w io.Writer) error {
		if writeHook != nil {
			w = writeHook(w)
		}
		_, err := w.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("safetensors: writing %s: %w", path, err)
	}
	return nil
}

// CheckWritable reports whether WriteFile could write path, without
// touching path itself, so that a program can fail before a long
// computation rather than after it. It fails when path is a directory or
// exists as anything but a regular file (or a symbolic link to one), when
// its directory does not exist or is not a directory, and when a file
// cannot be created and removed in that directory.
func CheckWritable(path string) error {
	if err := atomicfile.CheckWritable(path); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}
