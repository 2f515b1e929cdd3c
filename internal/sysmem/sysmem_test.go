package sysmem

import (
	"runtime"
	"testing"
)

func TestTotal(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skipf("sysmem reads memory sizes on linux only, not %s", runtime.GOOS)
	}
	tot, avail := Total(), Available()
	if tot < 64<<20 {
		t.Fatalf("Total() = %d bytes, implausibly small", tot)
	}
	if avail <= 0 || avail > tot {
		t.Fatalf("Available() = %d, want in (0, Total() = %d]", avail, tot)
	}
}
