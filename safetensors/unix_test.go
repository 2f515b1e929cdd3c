//go:build unix

package safetensors

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadFileFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ReadFile(p)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), p+" is a named pipe (FIFO), not a regular file") {
			t.Errorf("FIFO: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFile blocked on a FIFO with no writer")
	}
	if err := CheckWritable(p); err == nil || !strings.Contains(err.Error(), "named pipe") {
		t.Errorf("CheckWritable of a FIFO: %v", err)
	}
}

func TestReadFileSocket(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sock")
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Skipf("listen: %v", err)
	}
	defer l.Close()
	if _, err := ReadFile(p); err == nil {
		t.Error("ReadFile of a socket succeeded")
	}
	if err := CheckWritable(p); err == nil || !strings.Contains(err.Error(), "a socket, not a regular file") {
		t.Errorf("CheckWritable of a socket: %v", err)
	}
}
