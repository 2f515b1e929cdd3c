package benchkit

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func sampleResult() Result {
	peak, coop, pct := 100.0, 400.0, 12.5
	return Result{
		DeviceInfo: DeviceInfo{DeviceIndex: 1, Device: "GPU | x, \"quoted\"", DeviceType: "discrete", VendorID: 0x10de},
		Precision:  "fp16", B: 1, N: 16, Dim: 8, Heads: 2, DimHead: 4, M: 3, SelfAtt: true,
		Iters: 2, Reps: 3, Passes: 6, MsMean: 1.5, MsStddev: 0.25, MsMedian: 1.4, MsMin: 1, MsMax: 2,
		GFLOPs: 12.5, PeakGFLOPs: &peak, PeakCoopGFLOPs: &coop, PeakPct: &pct, DeviceMemBytes: 1 << 20,
		Kernels:    map[string]string{"out2": "matmul", "q1": "matmul", "attn1": "attention+combine", "convert": "convert"},
		Provenance: Provenance{ISABVersion: "(devel)", Commit: "abc", GoVersion: "go1.x", OS: "linux", Arch: "amd64", Timestamp: "2026-01-02T03:04:05Z"},
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range Formats {
		if got, err := ParseFormat(strings.ToUpper(string(f))); err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %q, %v", f, got, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil || !strings.Contains(err.Error(), "jsonl") {
		t.Errorf("ParseFormat(xml) = %v", err)
	}
	if _, err := NewRecordWriter(&bytes.Buffer{}, Table); err == nil {
		t.Error("NewRecordWriter(Table) gave no error")
	}
}

func TestRecordWriters(t *testing.T) {
	r := sampleResult()
	write := func(f Format, rs ...Result) string {
		var b bytes.Buffer
		rw, err := NewRecordWriter(&b, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if err := rw.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := rw.Close(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	// CSV: the header alone without records, then a quoted row per record.
	if got := write(CSV); got != strings.Join(CSVHeader(), ",")+"\n" {
		t.Errorf("empty CSV %q", got)
	}
	rows, err := csv.NewReader(strings.NewReader(write(CSV, r, r))).ReadAll()
	if err != nil || len(rows) != 3 {
		t.Fatalf("CSV rows %v, %v", rows, err)
	}
	col := func(key string) string { return rows[1][slices.Index(rows[0], key)] }
	if col("device") != r.Device || col("vendor_id") != "4318" || col("ms_stddev") != "0.25" || col("dirty") != "" || col("peak_coop_gflops") != "400" ||
		col("kernels") != "convert=convert;q1=matmul;attn1=attention+combine;out2=matmul" {
		t.Errorf("CSV row %v", rows[1])
	}
	// JSON: an array, empty without records.
	if got := strings.TrimSpace(write(JSON)); got != "[]" {
		t.Errorf("empty JSON %q", got)
	}
	var arr []Result
	if err := json.Unmarshal([]byte(write(JSON, r, r)), &arr); err != nil || len(arr) != 2 || arr[1].Device != r.Device {
		t.Errorf("JSON array %v, %v", arr, err)
	}
	// JSONL: a line per record.
	lines := strings.Split(strings.TrimSpace(write(JSONL, r, r)), "\n")
	if len(lines) != 2 {
		t.Fatalf("JSONL %q", lines)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range CSVHeader() {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON record lacks the CSV column %q", k)
		}
	}
	// Markdown: the separator in the device name is escaped.
	md := strings.Split(strings.TrimSpace(write(Markdown, r)), "\n")
	if len(md) != 3 || strings.Count(md[2], " | ") != len(mdHeader)-1 || !strings.Contains(md[2], `GPU \| x`) {
		t.Errorf("markdown %q", md)
	}
}

func TestParseCPUModel(t *testing.T) {
	in := "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n\nprocessor\t: 1\nmodel name\t: other\n"
	if got := parseCPUModel(strings.NewReader(in)); got != "Intel(R) Xeon(R) CPU @ 2.20GHz" {
		t.Errorf("parseCPUModel = %q", got)
	}
	if got := parseCPUModel(strings.NewReader("Hardware\t: BCM2835\n")); got != "" {
		t.Errorf("parseCPUModel without a model name = %q", got)
	}
}

// TestSetPeakPct checks which peak a record's share is taken against: the
// cooperative-matrix peak for passes with a step on cooperative matrices
// (none when it was not measured), else the better float32 rate.
func TestSetPeakPct(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	plain := map[string]string{"q1": "matmul", "attn1": "attention+attn_combine"}
	coop := map[string]string{"q1": "matmul_coop", "attn1": "attention"}
	for _, c := range []struct {
		name                 string
		kernels              map[string]string
		fp32, matmul, coopPk *float64
		want                 *float64
	}{
		{"fp32 peak", plain, f(200), nil, f(1000), f(5)},
		{"matmul faster", plain, f(200), f(400), nil, f(2.5)},
		{"no float32 rate", plain, nil, nil, f(1000), nil},
		{"coop", coop, f(200), f(400), f(1000), f(1)},
		{"coop peak not measured", coop, f(200), f(400), nil, nil},
	} {
		r := Result{GFLOPs: 10, Kernels: c.kernels, PeakGFLOPs: c.fp32, MatmulGFLOPs: c.matmul, PeakCoopGFLOPs: c.coopPk, PeakPct: f(-1)}
		r.SetPeakPct()
		switch {
		case c.want == nil && r.PeakPct != nil:
			t.Errorf("%s: PeakPct %v, want none", c.name, *r.PeakPct)
		case c.want != nil && (r.PeakPct == nil || *r.PeakPct != *c.want):
			t.Errorf("%s: PeakPct %v, want %v", c.name, r.PeakPct, *c.want)
		}
	}
}
