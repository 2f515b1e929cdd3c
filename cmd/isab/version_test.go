package main

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionFrom checks the fields taken from full build information.
func TestVersionFrom(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.99.1",
		Main:      debug.Module{Path: "github.com/isab-vk/isab-vk", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "-tags", Value: "nowindow,extra"},
			{Key: "GOOS", Value: "plan9"},
			{Key: "GOARCH", Value: "arm64"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	v := versionFrom(bi)
	if v.Version != "v1.2.3" || v.GoVersion != "go1.99.1" || v.GOOS != "plan9" || v.GOARCH != "arm64" ||
		v.Revision != "0123456789abcdef0123456789abcdef01234567" || v.RevisionShort != "0123456789ab" ||
		v.VCSTime != "2026-01-02T03:04:05Z" || v.Modified == nil || !*v.Modified ||
		strings.Join(v.BuildTags, " ") != "nowindow extra" {
		t.Fatalf("versionFrom: %+v", v)
	}
	var text bytes.Buffer
	if err := v.writeText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"isab v1.2.3\n", "0123456789ab (0123456789abcdef0123456789abcdef01234567)", "modified    true", "plan9/arm64", "nowindow,extra"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
}

// TestVersionMissing checks that absent build information reads "unknown"
// rather than empty or failing.
func TestVersionMissing(t *testing.T) {
	for _, bi := range []*debug.BuildInfo{nil, {}} {
		v := versionFrom(bi)
		if v.Version != "(devel)" || v.Revision != unknown || v.RevisionShort != unknown || v.VCSTime != unknown ||
			v.Module != unknown || v.Modified != nil || v.GOOS != runtime.GOOS || v.GoVersion != runtime.Version() {
			t.Errorf("versionFrom(%v): %+v", bi, v)
		}
		var text bytes.Buffer
		if err := v.writeText(&text); err != nil || !strings.Contains(text.String(), "modified    unknown") || !strings.Contains(text.String(), "build tags  none") {
			t.Errorf("text: %q, %v", text.String(), err)
		}
	}
}

// TestVersionCommand runs isab version, --version and version --json in
// this test binary, whose build information has no VCS fields.
func TestVersionCommand(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		var stdout, stderr bytes.Buffer
		if code := mainErr(context.Background(), args, &stdout, &stderr); code != 0 || stderr.Len() != 0 ||
			!strings.HasPrefix(stdout.String(), "isab ") || !strings.Contains(stdout.String(), "revision") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout.String(), stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := mainErr(context.Background(), []string{"version", "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("version --json: exit %d, %q", code, stderr.String())
	}
	var got map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("version --json: %q: %v", stdout.String(), err)
	}
	for _, key := range []string{"module", "version", "revision", "revision_short", "modified", "vcs_time", "go_version", "goos", "goarch", "build_tags"} {
		if _, ok := got[key]; !ok {
			t.Errorf("version --json lacks %q: %s", key, stdout.String())
		}
	}
	if got["go_version"] != runtime.Version() {
		t.Errorf("go_version %v, want %s", got["go_version"], runtime.Version())
	}
}
