package isab

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/isab-vk/isab-vk/internal/testutil"
	"github.com/isab-vk/isab-vk/vk"
)

// soakIters is the number of forward passes of each goroutine of
// BenchmarkSoak; raise it for a longer soak:
//
//	go test -run '^$' -bench Soak -benchtime 1x ./isab/ -soak.iters=5000
var soakIters = flag.Int("soak.iters", 200, "forward passes per goroutine in BenchmarkSoak")

// soakWorkers is the number of goroutines of BenchmarkSoak.
const soakWorkers = 8

// soakShapes are BenchmarkSoak's inputs (two of each shape).
var soakShapes = []concShape{{2, 7, true}, {1, 33, false}, {2, 33, true}, {1, 257, true}, {2, 257, false}}

// soakStats is what BenchmarkSoak samples before and after the soak.
type soakStats struct {
	objs, bytes int64  // live device objects and bytes of device buffers
	heapObjs    uint64 // Go heap objects after a garbage collection
	rssKB       int64  // resident set size in kB; -1 when unknown
}

// readSoakStats samples dev's live objects, the Go heap and the RSS.
func readSoakStats(b *testing.B, dev *vk.Device) soakStats {
	b.Helper()
	var s soakStats
	s.objs, s.bytes = dev.LiveObjects()
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.heapObjs = ms.HeapObjects
	var err error
	if s.rssKB, err = vmRSS(); err != nil {
		b.Logf("RSS not reported: %v", err)
		s.rssKB = -1
	}
	return s
}

// vmRSS reads the process's resident set size, in kB, from the VmRSS line
// of /proc/self/status (Linux).
func vmRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/self/status has no VmRSS line")
}

// report reports s with b.ReportMetric, its units ending in suffix.
func (s soakStats) report(b *testing.B, suffix string) {
	b.ReportMetric(float64(s.objs), "live-objs-"+suffix)
	b.ReportMetric(float64(s.bytes), "live-bytes-"+suffix)
	b.ReportMetric(float64(s.heapObjs), "heap-objs-"+suffix)
	b.ReportMetric(float64(s.rssKB), "rss-kB-"+suffix)
}

// BenchmarkSoak is a soak, not a speed benchmark: after a serial run of
// each of its inputs (n = 7, 33, 257, batch 1 and 2, with and without
// masks), 8 goroutines each make -soak.iters forward passes on one model,
// cycling through ForwardHost, Forward on shared device tensors, and
// Prepare/Run/Close, and check every out and latents against the serial
// run bit for bit, freeing each output. It fails on any error or
// difference, or when the device holds more objects or bytes after the
// soak than before. It reports forwards/s and, before and after, the live
// device objects and bytes, the Go heap objects and the RSS.
func BenchmarkSoak(b *testing.B) {
	dev := testutil.Device(b)
	cfg := Config{Dim: 32, Heads: 4, DimHead: 8, NumLatents: 8, LatentSelfAttend: true}
	m, err := New(dev, cfg, RandomWeights(cfg, 41))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	f := newConcFixture(b, m, nil, soakShapes, 42)
	passes := []concPass{{"host", hostPass}, {"device", devicePass}, {"plan", planPass(1)}}
	before := readSoakStats(b, dev)
	forwards := 0
	start := time.Now()
	for b.Loop() {
		for g, err := range runConcurrently(soakWorkers, concWorker(f, passes, *soakIters)) {
			if err != nil {
				b.Errorf("goroutine %d: %v", g, err)
			}
		}
		forwards += soakWorkers * *soakIters
	}
	elapsed := time.Since(start)
	after := readSoakStats(b, dev)
	b.ReportMetric(float64(forwards)/elapsed.Seconds(), "forwards/s")
	before.report(b, "before")
	after.report(b, "after")
	if after.objs != before.objs || after.bytes != before.bytes {
		b.Errorf("the soak left device objects behind: %d -> %d objects, %d -> %d bytes", before.objs, after.objs, before.bytes, after.bytes)
	}
}
