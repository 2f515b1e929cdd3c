//go:build linux

package safetensors

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
)

// childEnv selects what TestWriteChild does in a subprocess.
const childEnv = "SAFETENSORS_WRITE_CHILD"

// TestWriteChild is not a test on its own: the tests below run the test
// binary again with childEnv set, so that it writes under a resource limit
// that would hamper the rest of the tests. It writes a 256 KiB file over
// the path in $SAFETENSORS_WRITE_PATH and prints childOK when WriteFile
// fails as expected.
func TestWriteChild(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("run by TestWriteFileTooLarge and TestWriteFileCreateFails")
	}
	path := os.Getenv("SAFETENSORS_WRITE_PATH")
	var want error
	switch mode {
	case "fsize":
		// Writes past 4 KiB fail with EFBIG instead of killing the process.
		signal.Ignore(syscall.SIGXFSZ)
		lim := syscall.Rlimit{Cur: 4096, Max: 4096}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
			t.Fatal(err)
		}
		want = syscall.EFBIG
	case "nofile":
		// No file can be opened: creating the temporary file fails, even
		// for root.
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
		lim.Cur = 0
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
		want = syscall.EMFILE
	}
	err := WriteFile(path, bigTensors(64<<10), nil)
	if !errors.Is(err, want) {
		t.Fatalf("WriteFile: %v, want %v", err, want)
	}
	fmt.Printf("%s: %v\n", childOK, err)
}

// childOK is what TestWriteChild prints when WriteFile failed as expected.
const childOK = "child-ok"

// runWriteChild runs TestWriteChild in a subprocess in the given mode
// against an existing file, and checks the file is left intact.
func runWriteChild(t *testing.T, mode string) {
	p, old := existingFile(t, t.TempDir())
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriteChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "SAFETENSORS_WRITE_PATH="+p)
	out, err := cmd.CombinedOutput()
	t.Logf("child: %s", out)
	if err != nil || !strings.Contains(string(out), childOK) {
		t.Fatalf("child: %v", err)
	}
	checkIntact(t, p, old)
}

// TestWriteFileTooLarge makes the write fail midway with EFBIG (works for
// root too).
func TestWriteFileTooLarge(t *testing.T) { runWriteChild(t, "fsize") }

// TestWriteFileCreateFails makes creating the temporary file fail, the
// root-proof stand-in for a read-only directory.
func TestWriteFileCreateFails(t *testing.T) { runWriteChild(t, "nofile") }
