//go:build !unix

package safetensors

import "os"

// openFlags opens for reading.
const openFlags = os.O_RDONLY
