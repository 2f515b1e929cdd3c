// Package sysmem tells how much memory the host has, so that a size that
// cannot fit is refused with a clear error before anything is allocated.
package sysmem

// Total returns the host's physical memory in bytes, or 0 where it cannot
// be found out (then callers skip the check).
func Total() int64 { return total() }

// Available returns the memory the host can give a new allocation without
// swapping, in bytes (Linux's MemAvailable), or Total where that is
// unknown, or 0 where neither is.
func Available() int64 {
	if a := available(); a > 0 {
		return a
	}
	return total()
}
