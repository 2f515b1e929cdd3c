package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/isab-vk/isab-vk/internal/benchkit"
	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/vk"
)

// TestBenchSweepJSON runs a small sweep with every output option and checks
// the JSON lines, the stage breakdown and the plot.
func TestBenchSweepJSON(t *testing.T) {
	timestamps := testutil.Device(t).Info().Timestamps
	plotPath := filepath.Join(t.TempDir(), "sweep.png")
	code, stdout, stderr := runTool(t, "bench", "--shape", "1,33,16,2,3", "--shape", "2,7,8,1,1", "--dim-head", "8",
		"--sweep-n", "16..40", "--iters", "2", "--reps", "2", "--warmup", "0", "--precision", "fp32", "--stages", "--json",
		"--plot", plotPath, "--peak-n", "64")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stderr, "\r") {
		t.Errorf("progress bar drawn although stderr is not a terminal: %q", stderr)
	}
	var got []benchkit.Shape
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		for _, k := range []string{"device", "precision", "b", "n", "dim", "heads", "m", "ms_median", "ms_min", "ms_max",
			"gflops", "peak_gflops", "device_mem_bytes", "dim_head", "latent_self_attend",
			"iters", "reps", "passes", "ms_mean", "ms_stddev", "peak_pct", "kernels",
			"device_index", "device_type", "vendor", "vendor_id", "device_id", "driver", "api_version", "cpu_model",
			"isab_version", "commit", "dirty", "go_version", "os", "arch", "timestamp"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("line %q lacks %q", sc.Text(), k)
			}
		}
		var r benchkit.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Shape())
		if r.Device == "" || r.Precision != "fp32" || r.DimHead != 8 || !r.SelfAtt {
			t.Errorf("line %q: wrong device, precision or configuration", sc.Text())
		}
		if !(r.MsMin > 0 && r.MsMin <= r.MsMedian && r.MsMedian <= r.MsMax && r.GFLOPs > 0) {
			t.Errorf("line %q: implausible times", sc.Text())
		}
		if r.Iters != 2 || r.Reps != 2 || r.Passes != 4 || !(r.MsMin <= r.MsMean && r.MsMean <= r.MsMax) || r.MsStddev < 0 {
			t.Errorf("line %q: wrong pass counts, mean or standard deviation", sc.Text())
		}
		if _, err := time.Parse(time.RFC3339, r.Timestamp); err != nil || !strings.HasSuffix(r.Timestamp, "Z") {
			t.Errorf("line %q: timestamp not RFC 3339 UTC: %v", sc.Text(), err)
		}
		if r.GoVersion == "" || r.OS == "" || r.Arch == "" || r.ISABVersion == "" || r.Commit == "" || r.Driver == "" || r.APIVersion == "" {
			t.Errorf("line %q: provenance missing", sc.Text())
		}
		if r.Kernels["q1"] == "" || r.Kernels["attn1"] == "" || r.Kernels["out2"] == "" {
			t.Errorf("line %q: kernels per step missing", sc.Text())
		}
		if r.PeakGFLOPs == nil || !(*r.PeakGFLOPs > 0) || r.PeakPct == nil {
			t.Errorf("line %q: no peak_gflops", sc.Text())
		}
		// At least x and out [b, n, dim] and the weights (8 inner x dim matrices).
		if min := int64(4 * (2*r.B*r.N*r.Dim + 8*r.Heads*r.DimHead*r.Dim)); r.DeviceMemBytes < min {
			t.Errorf("line %q: device_mem_bytes %d, want at least %d", sc.Text(), r.DeviceMemBytes, min)
		}
		if st := r.Stages; timestamps && st == nil {
			t.Errorf("line %q: no stage report although the device has timestamps", sc.Text())
		} else if st != nil {
			if len(st.Kernels) == 0 || len(st.Forward) == 0 || !(st.GPUMs > 0) {
				t.Errorf("line %q: empty stage report", sc.Text())
			}
			if st.Forward[0].Name != "q1" || st.Forward[len(st.Forward)-1].Name != "out2" {
				t.Errorf("line %q: forward steps not labelled", sc.Text())
			}
			if len(st.Forward[0].Kernels) == 0 {
				t.Errorf("line %q: no kernels for step q1", sc.Text())
			}
			checkStepChoices(t, st.Choices)
		}
	}
	shape := func(b, n, dim, heads, m int) benchkit.Shape {
		return benchkit.Shape{B: b, N: n, Dim: dim, Heads: heads, M: m}
	}
	want := []benchkit.Shape{shape(1, 16, 16, 2, 3), shape(1, 32, 16, 2, 3), shape(2, 16, 8, 1, 1), shape(2, 32, 8, 1, 1)}
	if len(got) != len(want) {
		t.Fatalf("shapes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("shapes %v, want %v", got, want)
		}
	}
	f, err := os.Open(plotPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("--plot wrote no valid PNG: %v", err)
	}
}

// TestBenchScalingText checks the text table and the scaling line of a
// sweep across n = 4096 and 65536.
func TestBenchScalingText(t *testing.T) {
	code, stdout, stderr := runTool(t, "bench", "--shape", "1,1,4,1,2", "--dim-head", "4", "--sweep-n", "4096..65536",
		"--iters", "1", "--warmup", "0", "--peak-n", "0", "--latent-self-attend=false")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, s := range []string{"precision fp32", "1,4096,4,1,2", "1,65536,4,1,2", "mem MiB"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("output lacks %q:\n%s", s, stdout)
		}
	}
	if !regexp.MustCompile(`scaling time\(n=65536\)/time\(n=4096\) = [0-9.]+ \(16 if linear in n\)`).MatchString(stdout) {
		t.Errorf("no scaling line:\n%s", stdout)
	}
	if strings.Contains(stdout, "GFLOP/s,") || strings.Contains(stdout, "matmul ") {
		t.Errorf("--peak-n 0 still measured the matmul:\n%s", stdout)
	}
}

func TestBenchBadFlags(t *testing.T) {
	cases := []struct {
		args  []string
		wants string
	}{
		{[]string{"--shape", "1,2,3"}, "b,n,dim,heads,m"},
		{[]string{"--shape", "1,0,3,4,5"}, "positive"},
		{[]string{"--sweep-n", "64"}, "FROM..TO"},
		{[]string{"--sweep-n", "64..32"}, "larger than TO"},
		{[]string{"--sweep-n", "0..32"}, "positive"},
		{[]string{"--precision", "fp64"}, "fp32, fp16 or auto"},
		{[]string{"--iters", "0"}, "--iters"},
		{[]string{"--warmup", "-1"}, "--warmup"},
		{[]string{"--dim-head", "0"}, "--dim-head"},
		{[]string{"--peak-n", "-3"}, "--peak-n"},
		{[]string{"--plot", "out.svg"}, ".png"},
		{[]string{"stray"}, "unexpected argument"},
		{[]string{"-o", "xml"}, "table, md, csv, json, jsonl"},
		{[]string{"--json", "-o", "csv"}, "--json"},
		{[]string{"--reps", "0"}, "--reps"},
		{[]string{"--iters", "1000", "--reps", "1000000000"}, "--reps"},
	}
	// A plot into a missing folder fails before any run, with one line.
	code, _, stderr := runTool(t, "bench", "--plot", filepath.Join(t.TempDir(), "absent", "x.png"))
	if line := strings.TrimSpace(stderr); code != 1 || strings.Contains(line, "\n") || !strings.Contains(line, "does not exist") {
		t.Errorf("--plot into a missing folder: exit %d, stderr %q", code, stderr)
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, stdout, stderr := runTool(t, append([]string{"bench"}, c.args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2 (usage); stderr %q", code, stderr)
			}
			if stdout != "" || !strings.Contains(stderr, c.wants) {
				t.Fatalf("stdout %q, stderr %q; want a message naming %q", stdout, stderr, c.wants)
			}
		})
	}
}

// TestBenchPrecision checks that the JSON names the precision that ran:
// auto resolves to fp32 or fp16, and fp16 either runs as fp16 or fails with
// one line that says why.
func TestBenchPrecision(t *testing.T) {
	for _, p := range []string{"auto", "fp16"} {
		code, stdout, stderr := runTool(t, "bench", "--shape", "1,9,8,2,3", "--dim-head", "4", "--iters", "1",
			"--warmup", "0", "--peak-n", "0", "--precision", p, "--json")
		if code != 0 {
			line := strings.TrimSpace(stderr)
			if p == "fp16" && code == 1 && !strings.Contains(line, "\n") && strings.HasPrefix(line, "isab bench: ") {
				t.Logf("fp16 unsupported here: %s", line)
				continue
			}
			t.Fatalf("--precision %s: exit %d: %s", p, code, stderr)
		}
		var r benchkit.Result
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("--precision %s: %q: %v", p, stdout, err)
		}
		if want := map[string][]string{"auto": {"fp32", "fp16"}, "fp16": {"fp16"}}[p]; !slices.Contains(want, r.Precision) {
			t.Errorf("--precision %s ran as %q, want one of %v", p, r.Precision, want)
		}
	}
}

// TestBenchFormats runs one tiny shape on every device in each output
// format and parses what each prints; nothing else goes to stdout, and a
// successful run prints nothing on stderr.
func TestBenchFormats(t *testing.T) {
	infos, err := vk.Devices()
	if err != nil {
		t.Skip(err)
	}
	base := []string{"bench", "--device", "all", "--shape", "1,8,8,2,2", "--dim-head", "4", "--iters", "2",
		"--warmup", "0", "--peak-n", "32", "--precision", "auto"}
	run := func(format string) string {
		t.Helper()
		code, stdout, stderr := runTool(t, append(base, "-o", format)...)
		if code != 0 || stderr != "" {
			t.Fatalf("-o %s: exit %d, stderr %q", format, code, stderr)
		}
		return stdout
	}
	checkDevices := func(format string, got []int) {
		t.Helper()
		if len(got) != len(infos) {
			t.Fatalf("-o %s: %d records, want one per device (%d)", format, len(got), len(infos))
		}
		for i, d := range got {
			if d != infos[i].Index {
				t.Errorf("-o %s: record %d from device %d, want %d", format, i, d, infos[i].Index)
			}
		}
	}

	var arr []benchkit.Result
	if err := json.Unmarshal([]byte(run("json")), &arr); err != nil {
		t.Fatalf("-o json: %v", err)
	}
	var devs []int
	for _, r := range arr {
		devs = append(devs, r.DeviceIndex)
		if r.Device != infos[r.DeviceIndex].Name || r.DeviceType != infos[r.DeviceIndex].Type.String() {
			t.Errorf("-o json: record of device %d names %q (%s)", r.DeviceIndex, r.Device, r.DeviceType)
		}
		if r.DeviceType != "cpu" && r.CPUModel != "" {
			t.Errorf("-o json: cpu_model %q on a %s device", r.CPUModel, r.DeviceType)
		}
	}
	checkDevices("json", devs)

	devs = nil
	for _, line := range strings.Split(strings.TrimSpace(run("jsonl")), "\n") {
		var r benchkit.Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("-o jsonl: %q: %v", line, err)
		}
		devs = append(devs, r.DeviceIndex)
	}
	checkDevices("jsonl", devs)

	rows, err := csv.NewReader(strings.NewReader(run("csv"))).ReadAll()
	if err != nil {
		t.Fatalf("-o csv: %v", err)
	}
	if len(rows) < 1 || !slices.Equal(rows[0], benchkit.CSVHeader()) {
		t.Fatalf("-o csv: header %v", rows)
	}
	devs = nil
	for _, row := range rows[1:] {
		d, err := strconv.Atoi(row[0])
		if err != nil {
			t.Fatalf("-o csv: row %v", row)
		}
		devs = append(devs, d)
	}
	checkDevices("csv", devs)

	lines := strings.Split(strings.TrimSpace(run("md")), "\n")
	if len(lines) != 2+len(infos) || !strings.HasPrefix(lines[0], "| device |") || !strings.HasPrefix(lines[1], "| --- |") {
		t.Fatalf("-o md: want a header, a rule and one row per device:\n%s", strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "| ") || !strings.HasSuffix(l, " |") {
			t.Errorf("-o md: not a table row: %q", l)
		}
	}

	table := run("table")
	for _, in := range infos {
		if !strings.Contains(table, fmt.Sprintf("device %d: %s", in.Index, in.Name)) {
			t.Errorf("-o table: no section for device %d:\n%s", in.Index, table)
		}
	}
	for _, s := range []string{"mean ms", "± sd ms", "kernels: q1="} {
		if !strings.Contains(table, s) {
			t.Errorf("-o table lacks %q:\n%s", s, table)
		}
	}
}

// checkStepChoices checks the implementation choices of one forward pass:
// every Linear and Attention step, each with one chosen implementation and
// a reason for every other.
func checkStepChoices(t *testing.T, choices []benchkit.StepChoice) {
	t.Helper()
	var steps []string
	for _, c := range choices {
		steps = append(steps, c.Step)
		chosen := 0
		for _, cand := range c.Candidates {
			if cand.Chosen {
				chosen++
			} else if cand.Why == "" {
				t.Errorf("step %s: %s declines without a reason", c.Step, cand.Name)
			}
		}
		if chosen != 1 || c.Kernel == "" {
			t.Errorf("step %s: %d chosen, kernel %q", c.Step, chosen, c.Kernel)
		}
	}
	for _, s := range []string{"q1", "kv1", "attn1", "out1", "kv2", "q2", "attn2", "out2"} {
		if !slices.Contains(steps, s) {
			t.Errorf("no choice for step %s (steps %v)", s, steps)
		}
	}
}

// TestDevicesKernels checks isab devices --kernels, as text and in JSON.
func TestDevicesKernels(t *testing.T) {
	code, stdout, stderr := runTool(t, "devices", "--kernels")
	if code != 0 || !strings.Contains(stdout, "kernels at 1,16384,512,8,128 (fp32)") || !strings.Contains(stdout, "attn2") {
		t.Fatalf("exit %d: %s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = runTool(t, "devices", "--json", "--kernels")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var d deviceJSON
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		checkStepChoices(t, d.Kernels["fp32"])
		if d.Storage16 {
			checkStepChoices(t, d.Kernels["fp16"])
		}
	}
}

// TestDevicesJSON checks that isab devices --json uses the snake_case keys
// of isab bench's records.
func TestDevicesJSON(t *testing.T) {
	code, stdout, stderr := runTool(t, "devices", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	n := 0
	for sc.Scan() {
		n++
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		for _, k := range []string{"device_index", "device", "device_type", "vendor", "vendor_id", "device_id", "driver",
			"api_version", "cpu_model", "subgroup_size", "shared_memory_bytes", "float16", "cooperative_matrix",
			"timestamps", "device_memory_bytes", "host_visible"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("line %q lacks %q", sc.Text(), k)
			}
		}
		for k := range raw {
			if k != strings.ToLower(k) {
				t.Errorf("key %q is not snake_case", k)
			}
		}
	}
	if n == 0 {
		t.Fatal("no devices listed")
	}
}
