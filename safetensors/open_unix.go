//go:build unix

package safetensors

import (
	"os"
	"syscall"
)

// openFlags opens for reading without blocking: opening a FIFO for reading
// otherwise waits for a writer, before ReadFile can see it is no regular
// file. O_NONBLOCK has no effect on the reads of a regular file.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK
