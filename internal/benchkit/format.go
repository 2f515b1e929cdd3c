package benchkit

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Format is an output format of isab bench.
type Format string

// The formats of isab bench -o. Table is the readable text that isab bench
// prints itself; RecordWriter writes the others.
const (
	Table    Format = "table" // aligned text, one section per device
	Markdown Format = "md"    // one GitHub markdown table
	CSV      Format = "csv"   // a header row, then one row per record (RFC 4180)
	JSON     Format = "json"  // one JSON array of records
	JSONL    Format = "jsonl" // one JSON object per line
)

// Formats lists every format, for messages.
var Formats = []Format{Table, Markdown, CSV, JSON, JSONL}

// ParseFormat reads one of Formats.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Formats, f) {
		return f, nil
	}
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return "", fmt.Errorf("want one of %s, got %q", strings.Join(names, ", "), s)
}

// RecordWriter writes Results in Markdown, CSV, JSON or JSONL. Records are
// written as they come, except for JSON, whose array is written by Close;
// Close also flushes CSV. Nothing is written before the first record but
// the header of a table.
type RecordWriter struct {
	f      Format
	w      io.Writer
	csv    *csv.Writer
	header bool
	all    []Result
}

// NewRecordWriter returns a writer of format f (not Table) to w.
func NewRecordWriter(w io.Writer, f Format) (*RecordWriter, error) {
	switch f {
	case Markdown, CSV, JSON, JSONL:
	default:
		return nil, fmt.Errorf("benchkit: no record writer for format %q", f)
	}
	rw := &RecordWriter{f: f, w: w, all: []Result{}}
	if f == CSV {
		rw.csv = csv.NewWriter(w)
	}
	return rw, nil
}

// Write writes one record.
func (rw *RecordWriter) Write(r Result) error {
	switch rw.f {
	case JSONL:
		return json.NewEncoder(rw.w).Encode(r)
	case JSON:
		rw.all = append(rw.all, r)
		return nil
	case CSV:
		if !rw.header {
			rw.header = true
			if err := rw.csv.Write(CSVHeader()); err != nil {
				return err
			}
		}
		if err := rw.csv.Write(csvRow(r)); err != nil {
			return err
		}
		rw.csv.Flush()
		return rw.csv.Error()
	default: // Markdown
		if !rw.header {
			rw.header = true
			if _, err := fmt.Fprintf(rw.w, "| %s |\n|%s\n", strings.Join(mdHeader, " | "), mdRule()); err != nil {
				return err
			}
		}
		_, err := fmt.Fprintf(rw.w, "| %s |\n", strings.Join(mdRow(r), " | "))
		return err
	}
}

// Close finishes the output: the JSON array (empty when there were no
// records) or the CSV header of an empty run.
func (rw *RecordWriter) Close() error {
	switch rw.f {
	case JSON:
		b, err := json.MarshalIndent(rw.all, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(rw.w, "%s\n", b)
		return err
	case CSV:
		if !rw.header {
			rw.header = true
			if err := rw.csv.Write(CSVHeader()); err != nil {
				return err
			}
		}
		rw.csv.Flush()
		return rw.csv.Error()
	}
	return nil
}

// csvColumns are the CSV columns, named by the records' JSON keys, with
// the value of each; stages are left out.
var csvColumns = []struct {
	key string
	get func(r Result) string
}{
	{"device_index", func(r Result) string { return strconv.Itoa(r.DeviceIndex) }},
	{"device", func(r Result) string { return r.Device }},
	{"device_type", func(r Result) string { return r.DeviceType }},
	{"vendor", func(r Result) string { return r.Vendor }},
	{"vendor_id", func(r Result) string { return strconv.FormatUint(uint64(r.VendorID), 10) }},
	{"device_id", func(r Result) string { return strconv.FormatUint(uint64(r.DeviceID), 10) }},
	{"driver", func(r Result) string { return r.Driver }},
	{"driver_name", func(r Result) string { return r.DriverName }},
	{"driver_version", func(r Result) string { return r.DriverVersion }},
	{"api_version", func(r Result) string { return r.APIVersion }},
	{"cpu_model", func(r Result) string { return r.CPUModel }},
	{"precision", func(r Result) string { return r.Precision }},
	{"b", func(r Result) string { return strconv.Itoa(r.B) }},
	{"n", func(r Result) string { return strconv.Itoa(r.N) }},
	{"dim", func(r Result) string { return strconv.Itoa(r.Dim) }},
	{"heads", func(r Result) string { return strconv.Itoa(r.Heads) }},
	{"dim_head", func(r Result) string { return strconv.Itoa(r.DimHead) }},
	{"m", func(r Result) string { return strconv.Itoa(r.M) }},
	{"latent_self_attend", func(r Result) string { return strconv.FormatBool(r.SelfAtt) }},
	{"iters", func(r Result) string { return strconv.Itoa(r.Iters) }},
	{"reps", func(r Result) string { return strconv.Itoa(r.Reps) }},
	{"passes", func(r Result) string { return strconv.Itoa(r.Passes) }},
	{"ms_mean", func(r Result) string { return num(r.MsMean) }},
	{"ms_stddev", func(r Result) string { return num(r.MsStddev) }},
	{"ms_median", func(r Result) string { return num(r.MsMedian) }},
	{"ms_min", func(r Result) string { return num(r.MsMin) }},
	{"ms_max", func(r Result) string { return num(r.MsMax) }},
	{"first_pass_ms", func(r Result) string { return num(r.FirstPassMs) }},
	{"gflops", func(r Result) string { return num(r.GFLOPs) }},
	{"peak_gflops", func(r Result) string { return optNum(r.PeakGFLOPs) }},
	{"peak_fp16_gflops", func(r Result) string { return optNum(r.PeakFP16GFLOPs) }},
	{"matmul_gflops", func(r Result) string { return optNum(r.MatmulGFLOPs) }},
	{"peak_pct", func(r Result) string { return optNum(r.PeakPct) }},
	{"device_mem_bytes", func(r Result) string { return strconv.FormatInt(r.DeviceMemBytes, 10) }},
	{"kernels", func(r Result) string { return KernelList(r.Kernels) }},
	{"isab_version", func(r Result) string { return r.ISABVersion }},
	{"commit", func(r Result) string { return r.Commit }},
	{"dirty", func(r Result) string {
		if r.Dirty == nil {
			return ""
		}
		return strconv.FormatBool(*r.Dirty)
	}},
	{"go_version", func(r Result) string { return r.GoVersion }},
	{"os", func(r Result) string { return r.OS }},
	{"arch", func(r Result) string { return r.Arch }},
	{"timestamp", func(r Result) string { return r.Timestamp }},
	// Added after the others, so that readers of the earlier columns by
	// position keep working.
	{"peak_coop_gflops", func(r Result) string { return optNum(r.PeakCoopGFLOPs) }},
}

// CSVHeader is the header row of -o csv: JSON keys of a record.
func CSVHeader() []string {
	h := make([]string, len(csvColumns))
	for i, c := range csvColumns {
		h[i] = c.key
	}
	return h
}

func csvRow(r Result) []string {
	row := make([]string, len(csvColumns))
	for i, c := range csvColumns {
		row[i] = c.get(r)
	}
	return row
}

// KernelList writes a kernels map as "step=kernel;..." in step order.
func KernelList(k map[string]string) string {
	steps := make([]string, 0, len(k))
	for s := range k {
		steps = append(steps, s)
	}
	slices.SortFunc(steps, compareSteps)
	parts := make([]string, len(steps))
	for i, s := range steps {
		parts[i] = s + "=" + k[s]
	}
	return strings.Join(parts, ";")
}

// stepOrder is the order of the forward pass's steps (isab's labels);
// other names sort after them, alphabetically.
var stepOrder = []string{"convert", "q1", "kv1", "attn1", "out1", "kv2", "q2", "attn2", "out2"}

func compareSteps(a, b string) int {
	ia, ib := slices.Index(stepOrder, a), slices.Index(stepOrder, b)
	if ia < 0 {
		ia = len(stepOrder)
	}
	if ib < 0 {
		ib = len(stepOrder)
	}
	if ia != ib {
		return ia - ib
	}
	return strings.Compare(a, b)
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func optNum(v *float64) string {
	if v == nil {
		return ""
	}
	return num(*v)
}

// mdHeader are the columns of -o md.
var mdHeader = []string{"device", "precision", "b,n,dim,heads,m", "passes", "mean ms", "± sd ms", "median ms", "min ms", "max ms", "GFLOP/s", "% peak", "mem MiB"}

// mdRule is the alignment row: text left, numbers right.
func mdRule() string {
	var b strings.Builder
	for i := range mdHeader {
		if i < 3 {
			b.WriteString(" --- |")
		} else {
			b.WriteString(" ---: |")
		}
	}
	return b.String()
}

func mdRow(r Result) []string {
	pct := "-"
	if r.PeakPct != nil {
		pct = fmt.Sprintf("%.0f", *r.PeakPct)
	}
	return []string{
		mdCell(fmt.Sprintf("%d: %s", r.DeviceIndex, r.Device)), r.Precision, r.Shape().String(), strconv.Itoa(r.Passes),
		fmt.Sprintf("%.3f", r.MsMean), fmt.Sprintf("%.3f", r.MsStddev), fmt.Sprintf("%.3f", r.MsMedian),
		fmt.Sprintf("%.3f", r.MsMin), fmt.Sprintf("%.3f", r.MsMax), fmt.Sprintf("%.1f", r.GFLOPs), pct,
		fmt.Sprintf("%.1f", float64(r.DeviceMemBytes)/(1<<20)),
	}
}

// mdCell keeps a cell on one line and escapes the column separator.
func mdCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, `\`, `\\`)
	return strings.ReplaceAll(s, "|", `\|`)
}
