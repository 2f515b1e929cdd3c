package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

// The hostile-input tests run the tool as a child process, this test binary
// re-executed with hostileMainEnv set, so that a panic, a fatal runtime
// error (an allocation that cannot be satisfied) or a signal shows up as
// what it is rather than taking the test process down.
const hostileMainEnv = "ISAB_TEST_RUN_MAIN"

// hostileLimit is how long one hostile run may take.
const hostileLimit = 60 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(hostileMainEnv) == "1" {
		main()
		return
	}
	// The lavapipe settings main turns on, for the tests that call
	// mainErr or open devices in this process.
	if err := vk.UseLavapipeDefaults(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// toolResult is how one run of the tool ended.
type toolResult struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
	signal         string // the signal that ended it, if one did
}

// runChild runs the tool with args in a child process, its standard input
// empty, with wrap (if any) as a shell prefix such as "ulimit -f 4;".
func runChild(t *testing.T, wrap string, env []string, args ...string) toolResult {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hostileLimit+30*time.Second)
	defer cancel()
	var cmd *exec.Cmd
	if wrap != "" {
		cmd = exec.CommandContext(ctx, "bash", append([]string{"-c", wrap + ` exec "$@"`, "isab", self}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, self, args...)
	}
	cmd.Env = append(append(os.Environ(), hostileMainEnv+"=1"), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	res := toolResult{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.signal = ws.Signal().String()
		}
	default:
		t.Fatalf("running the tool: %v", err)
	}
	return res
}

// rawFile assembles a safetensors file from a header string and data,
// with the header length that the header has plus delta.
func rawFile(header string, data []byte, delta int64) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(int64(len(header))+delta))
	return append(append(out, header...), data...)
}

// tinyWeights returns testdata/tiny_basic's weights (dim 8, heads 1,
// dim_head 4, one latent) parsed, for cases that alter them.
func tinyWeights(t *testing.T) (*safetensors.File, []*safetensors.Tensor) {
	t.Helper()
	f, err := safetensors.ReadFile(testutil.Testdata(t, "tiny_basic.weights.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var ts []*safetensors.Tensor
	for _, name := range f.Names() {
		ts = append(ts, f.Tensors[name])
	}
	return f, ts
}

// encodeWith re-encodes tensors with metadata, failing the test on error.
func encodeWith(t *testing.T, ts []*safetensors.Tensor, meta map[string]string) []byte {
	t.Helper()
	data, err := safetensors.Encode(ts, meta)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// hostileCase is one hostile command line and its files.
type hostileCase struct {
	name string
	// files maps names to contents, written into the case's folder (a
	// name starting with "fifo" becomes a named pipe); args refer to them
	// as @name.
	files map[string][]byte
	args  []string
	wrap  string   // shell prefix, e.g. a ulimit
	env   []string // extra environment variables
	code  int      // the exit status wanted: 1 or 2
	want  string   // a substring of the one stderr line
}

// hostileCases lists the cases; see TestHostile.
func hostileCases(t *testing.T) []hostileCase {
	f, ts := tinyWeights(t)
	td := func(name string) string { return testutil.Testdata(t, name) }
	tinyIn := td("tiny_basic.input.safetensors")
	meta := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range f.Metadata {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	x32 := make([]byte, 32)
	xHeader := func(extra string) string {
		return `{"x":{"dtype":"F32","shape":[1,1,8],"data_offsets":[0,32]}` + extra + `}`
	}
	run := func(weights, input string, more ...string) []string {
		return append([]string{"run", "--weights", weights, "--input", input, "--output", "@out.safetensors"}, more...)
	}
	withDType := func(dt safetensors.DType, size int) []byte {
		var out []*safetensors.Tensor
		for _, tn := range ts {
			c := *tn
			if c.Name == "latents" {
				c.DType, c.Data = dt, make([]byte, 8*size)
			}
			out = append(out, &c)
		}
		return encodeWith(t, out, f.Metadata)
	}
	return []hostileCase{
		// Configuration arithmetic.
		{name: "metadata dim_head wraps heads*dim_head", files: map[string][]byte{"w": encodeWith(t, ts, meta("heads", "5", "dim_head", "3689348814741910324"))},
			args: run("@w", tinyIn), code: 1, want: "overflows"},
		{name: "flag dim_head wraps heads*dim_head", args: run(td("tiny_basic.weights.safetensors"), tinyIn, "--heads", "5", "--dim-head", "3689348814741910324"), code: 1, want: "overflows"},
		{name: "dim_head 2^62+1", args: run(td("tiny_basic.weights.safetensors"), tinyIn, "--heads", "4", "--dim-head", "4611686018427387905"), code: 1, want: "overflows"},
		{name: "heads do not divide the inner width", files: map[string][]byte{"w": encodeWith(t, ts, meta("heads", "3", "dim_head", "none"))},
			args: run("@w", tinyIn), code: 1, want: "not a multiple of heads 3"},
		{name: "negative heads in metadata", files: map[string][]byte{"w": encodeWith(t, ts, meta("heads", "-1"))},
			args: run("@w", tinyIn), code: 1, want: "heads"},
		{name: "wide head", args: []string{"bench", "--shape", "1,16,4,1,2", "--dim-head", "4096", "--peak-n", "0", "--iters", "1"}, code: 1, want: "shared memory"},
		// Sizes that cannot fit.
		{name: "bench n 1e9", args: []string{"bench", "--shape", "1,1000000000,512,8,128", "--peak-n", "0"}, code: 1, want: "memory"},
		{name: "bench peak-n 1e6", args: []string{"bench", "--peak-n", "1000000", "--shape", "1,16,8,2,2"}, code: 1, want: "memory"},
		{name: "bench shape overflows", args: []string{"bench", "--shape", "2147483648,2147483648,2,1,1", "--peak-n", "0"}, code: 1, want: "overflows"},
		{name: "demo n 1e9", args: []string{"demo", "--n", "1000000000"}, code: 1, want: "memory"},
		{name: "demo n 2^54", args: []string{"demo", "--n", "18014398509481984"}, code: 1, want: "overflows"},
		// Malformed files.
		{name: "overlapping tensors", files: map[string][]byte{"in": rawFile(xHeader(`,"latents":{"dtype":"F32","shape":[1,8],"data_offsets":[0,32]}`), x32, 0)},
			args: run(td("tiny_basic.weights.safetensors"), "@in"), code: 1, want: "overlap"},
		{name: "gap before the first tensor", files: map[string][]byte{"in": rawFile(`{"x":{"dtype":"F32","shape":[1,1,8],"data_offsets":[4,36]}}`, make([]byte, 36), 0)},
			args: run(td("tiny_basic.weights.safetensors"), "@in"), code: 1, want: "safetensors"},
		{name: "header length one byte short", files: map[string][]byte{"in": rawFile(xHeader(""), x32, -1)},
			args: run(td("tiny_basic.weights.safetensors"), "@in"), code: 1, want: "safetensors"},
		{name: "trailing bytes", files: map[string][]byte{"in": rawFile(xHeader(""), make([]byte, 40), 0)},
			args: run(td("tiny_basic.weights.safetensors"), "@in"), code: 1, want: "trailing"},
		{name: "duplicate x", files: map[string][]byte{"in": rawFile(`{"x":{"dtype":"F32","shape":[1,1,8],"data_offsets":[0,32]},"x":{"dtype":"F32","shape":[1,1,8],"data_offsets":[32,64]}}`, make([]byte, 64), 0)},
			args: run(td("tiny_basic.weights.safetensors"), "@in"), code: 1, want: "duplicate"},
		{name: "duplicate metadata", files: map[string][]byte{"in": rawFile(`{"__metadata__":{"a":"1"},"__metadata__":{"a":"2"},"x":{"dtype":"F32","shape":[1,1,8],"data_offsets":[0,32]}}`, x32, 0)},
			args: run(td("tiny_basic.weights.safetensors"), "@in"), code: 1, want: "duplicate"},
		{name: "duplicate metadata key", files: map[string][]byte{"in": rawFile(`{"__metadata__":{"a":"1","a":"2"},"x":{"dtype":"F32","shape":[1,1,8],"data_offsets":[0,32]}}`, x32, 0)},
			args: run(td("tiny_basic.weights.safetensors"), "@in"), code: 1, want: "duplicate"},
		{name: "invalid UTF-8 name", files: map[string][]byte{"in": rawFile("{\"x\xff\":{\"dtype\":\"F32\",\"shape\":[1,1,8],\"data_offsets\":[0,32]}}", x32, 0)},
			args: run(td("tiny_basic.weights.safetensors"), "@in"), code: 1, want: "UTF-8"},
		{name: "I64 weights", files: map[string][]byte{"w": withDType(safetensors.I64, 8)}, args: run("@w", tinyIn), code: 1, want: "dtype"},
		{name: "I8 weights", files: map[string][]byte{"w": withDType(safetensors.I8, 1)}, args: run("@w", tinyIn), code: 1, want: "dtype"},
		{name: "F8 weights", files: map[string][]byte{"w": withDType(safetensors.DType("F8_E4M3"), 1)}, args: run("@w", tinyIn), code: 1, want: "F8_E4M3"},
		{name: "F32 mask", files: map[string][]byte{"in": rawFile(xHeader(`,"mask":{"dtype":"F32","shape":[1,1],"data_offsets":[32,36]}`), make([]byte, 36), 0)},
			args: run(td("tiny_basic.weights.safetensors"), "@in"), code: 1, want: "mask has dtype F32"},
		{name: "empty file", files: map[string][]byte{"in": {}}, args: run(td("tiny_basic.weights.safetensors"), "@in"), code: 1, want: "empty"},
		{name: "huge header length", files: map[string][]byte{"in": binary.LittleEndian.AppendUint64(nil, 1<<63)}, args: run(td("tiny_basic.weights.safetensors"), "@in"), code: 1, want: "header"},
		{name: "ten million dimensions", files: map[string][]byte{"in": rawFile(`{"x":{"dtype":"F32","shape":[`+strings.Repeat("1,", 10_000_000)+`1],"data_offsets":[0,4]}}`, make([]byte, 4), 0)},
			args: run(td("tiny_basic.weights.safetensors"), "@in"), code: 1, want: "dimensions"},
		{name: "extra weight key", files: map[string][]byte{"w": encodeWith(t, append(ts[:len(ts):len(ts)], safetensors.NewF32("evil", []int{1}, []float32{1})), f.Metadata)},
			args: run("@w", tinyIn), code: 1, want: "evil"},
		// Files that are not files.
		{name: "input /dev/zero", args: run(td("tiny_basic.weights.safetensors"), "/dev/zero"), code: 1, want: "regular file"},
		{name: "weights a directory", args: run(td(""), tinyIn), code: 1, want: "regular file"},
		{name: "output a directory", args: []string{"run", "--weights", td("tiny_basic.weights.safetensors"), "--input", tinyIn, "--output", td("")}, code: 1, want: "--output"},
		{name: "output in a missing folder", args: []string{"run", "--weights", td("tiny_basic.weights.safetensors"), "--input", tinyIn, "--output", "/nonexistent/dir/out.safetensors"}, code: 1, want: "--output"},
		// Failures while running.
		{name: "wait limit mid-pass", env: []string{"ISAB_WAIT_TIMEOUT=50ms"}, args: []string{"demo", "--n", "4096", "--runs", "2"}, code: 1, want: "did not finish within 50ms"},
		{name: "bad wait limit", env: []string{"ISAB_WAIT_TIMEOUT=soon"}, args: []string{"demo", "--n", "16"}, code: 1, want: "ISAB_WAIT_TIMEOUT"},
		{name: "plot to a FIFO", files: map[string][]byte{"fifo.png": nil}, args: []string{"bench", "--shape", "1,16,8,2,2", "--iters", "1", "--peak-n", "0", "--plot", "@fifo.png"}, code: 1, want: "not a regular file"},
		{name: "long path", args: run(strings.Repeat("/b", 2500), tinyIn), code: 1, want: "isab run:"},
		// PyTorch files and convert.
		{name: "pt that is not a zip", files: map[string][]byte{"w.pt": []byte("PK\x03\x04garbage")}, args: run("@w.pt", tinyIn), code: 1, want: "zip"},
		{name: "convert from a device", args: []string{"convert", "/dev/zero", "@out.safetensors"}, code: 1, want: "not a regular file"},
		{name: "convert without arguments", args: []string{"convert"}, code: 2, want: "two arguments"},
		{name: "bench unknown format", args: []string{"bench", "-o", "xml"}, code: 2, want: "xml"},
		// Command lines.
		{name: "no command", args: nil, code: 2, want: "no command"},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, want: "unknown command"},
		{name: "iters overflow", args: []string{"bench", "--iters", "9223372036854775807", "--shape", "1,256,32,2,4", "--peak-n", "0"}, code: 2, want: "--iters"},
		{name: "warmup overflow", args: []string{"bench", "--warmup", "9223372036854775800", "--iters", "100", "--peak-n", "0"}, code: 2, want: "--warmup"},
		{name: "runs overflow", args: []string{"demo", "--runs", "9223372036854775807", "--n", "256"}, code: 2, want: "--runs"},
		{name: "unknown flag", args: []string{"run", "--bogus"}, code: 2, want: "-bogus"},
		{name: "negative shape", args: []string{"bench", "--shape", "1,-16,4,1,2"}, code: 2, want: "positive"},
		{name: "bad precision", args: []string{"run", "--weights", "a", "--input", "b", "--output", "c", "--precision", "fp8"}, code: 2, want: "fp8"},
		{name: "stray argument", args: []string{"demo", "extra"}, code: 2, want: "unexpected argument"},
	}
}

// TestHostile runs the tool on hostile files and command lines: each run
// must end within hostileLimit with the wanted exit status and exactly one
// line on stderr that names the problem, never a panic, a fatal runtime
// error or a signal.
func TestHostile(t *testing.T) {
	testutil.Device(t) // skips without Vulkan
	for _, c := range hostileCases(t) {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range c.files {
				p := filepath.Join(dir, name)
				if strings.HasPrefix(name, "fifo") {
					if err := syscall.Mkfifo(p, 0o644); err != nil {
						t.Skipf("mkfifo: %v", err)
					}
					continue
				}
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := make([]string, len(c.args))
			for i, a := range c.args {
				if name, ok := strings.CutPrefix(a, "@"); ok {
					a = filepath.Join(dir, name)
				}
				args[i] = a
			}
			res := runChild(t, c.wrap, c.env, args...)
			t.Logf("exit %d after %v: %s", res.code, res.elapsed.Round(time.Millisecond), clip(res.stderr))
			checkHostile(t, res, c.code, c.want)
		})
	}
}

// checkHostile asserts how a hostile run ended.
func checkHostile(t *testing.T, res toolResult, code int, want string) {
	t.Helper()
	if res.signal != "" {
		t.Fatalf("ended by signal %s after %v; stderr:\n%s", res.signal, res.elapsed, clip(res.stderr))
	}
	for _, bad := range []string{"panic:", "fatal error:", "goroutine "} {
		if strings.Contains(res.stderr, bad) {
			t.Fatalf("stderr shows a crash (%q):\n%s", bad, clip(res.stderr))
		}
	}
	if res.elapsed > hostileLimit {
		t.Errorf("took %v, more than %v", res.elapsed, hostileLimit)
	}
	if res.code != code {
		t.Errorf("exit status %d, want %d; stderr:\n%s", res.code, code, clip(res.stderr))
	}
	lines := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n")
	if len(lines) != 1 || lines[0] == "" || !strings.HasSuffix(res.stderr, "\n") {
		t.Errorf("stderr is %d lines, want one:\n%s", len(lines), clip(res.stderr))
	}
	if n := len(strings.TrimSuffix(res.stderr, "\n")); n > maxErrLine {
		t.Errorf("the error line is %d bytes long, more than %d", n, maxErrLine)
	}
	if !strings.Contains(res.stderr, want) {
		t.Errorf("stderr does not mention %q:\n%s", want, clip(res.stderr))
	}
}

// clip shortens s for a failure message.
func clip(s string) string {
	if len(s) > 2000 {
		return s[:2000] + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return s
}

// TestFailedWriteKeepsOutput checks that a write that fails midway (the
// file size limit of the shell's ulimit -f) leaves an existing output
// file as it was, and that the failure is one clear line.
func TestFailedWriteKeepsOutput(t *testing.T) {
	testutil.Device(t)
	dir := t.TempDir()
	// x [1, 300, 8]: out alone is 9600 bytes, over the 4 KiB limit.
	x := make([]float32, 300*8)
	for i := range x {
		x[i] = float32(i%17) / 17
	}
	in := filepath.Join(dir, "in.safetensors")
	if err := safetensors.WriteFile(in, []*safetensors.Tensor{safetensors.NewF32("x", []int{1, 300, 8}, x)}, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.safetensors")
	old := []byte("an earlier result that must survive\n")
	if err := os.WriteFile(out, old, 0o644); err != nil {
		t.Fatal(err)
	}
	res := runChild(t, "ulimit -f 4;", nil, "run", "--weights", testutil.Testdata(t, "tiny_basic.weights.safetensors"), "--input", in, "--output", out)
	checkHostile(t, res, 1, "out.safetensors")
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, old) {
		t.Fatalf("the existing output changed: %q, %v", clip(string(got)), err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(left) != 2 {
		t.Errorf("files left in the folder: %v, want only the input and the old output", left)
	}
}

// TestInterrupt checks that SIGINT stops a run promptly with status 130 and
// one line, even while the device is busy.
func TestInterrupt(t *testing.T) {
	testutil.Device(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "bench", "--shape", "1,65536,64,4,16", "--iters", "1000", "--peak-n", "0")
	cmd.Env = append(os.Environ(), hostileMainEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(interruptGrace + 10*time.Second):
		cmd.Process.Kill()
		t.Fatalf("still running %v after SIGINT", time.Since(start))
	}
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("exit status %d after SIGINT, want %d; stderr:\n%s", code, exitInterrupted, clip(stderr.String()))
	}
	if n := strings.Count(stderr.String(), "\n"); n != 1 {
		t.Errorf("stderr after SIGINT has %d lines, want one:\n%s", n, clip(stderr.String()))
	}
}
