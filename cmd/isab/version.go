package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// unknown stands for build information that the binary does not carry,
// such as the VCS fields of a test binary or of a build outside a checkout.
const unknown = "unknown"

// shortRevision is how many hex digits of the revision the short form keeps.
const shortRevision = 12

// versionInfo describes how this binary was built, from the build
// information that the Go toolchain embeds (runtime/debug.ReadBuildInfo).
// Its JSON keys are those of isab version --json.
type versionInfo struct {
	Module        string   `json:"module"`         // main module path
	Version       string   `json:"version"`        // module version, "(devel)" for a checkout
	Revision      string   `json:"revision"`       // full VCS revision
	RevisionShort string   `json:"revision_short"` // its first 12 digits
	Modified      *bool    `json:"modified"`       // uncommitted changes; null when unknown
	VCSTime       string   `json:"vcs_time"`       // commit time, RFC 3339
	GoVersion     string   `json:"go_version"`
	GOOS          string   `json:"goos"`
	GOARCH        string   `json:"goarch"`
	BuildTags     []string `json:"build_tags"` // -tags, such as nowindow; empty when none
}

// buildVersion returns this binary's versionInfo, with "unknown" for what
// its build information lacks.
func buildVersion() versionInfo {
	bi, _ := debug.ReadBuildInfo()
	return versionFrom(bi)
}

// versionFrom makes a versionInfo from bi, which may be nil.
func versionFrom(bi *debug.BuildInfo) versionInfo {
	v := versionInfo{
		Module: unknown, Version: "(devel)", Revision: unknown, RevisionShort: unknown,
		VCSTime: unknown, GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		BuildTags: []string{},
	}
	if bi == nil {
		return v
	}
	v.Module = orUnknown(bi.Main.Path)
	v.Version = cmp.Or(bi.Main.Version, v.Version)
	v.GoVersion = cmp.Or(bi.GoVersion, v.GoVersion)
	for _, s := range bi.Settings {
		v.apply(s.Key, s.Value)
	}
	return v
}

// apply records one build setting (a key of debug.BuildSetting) in v.
func (v *versionInfo) apply(key, value string) {
	switch key {
	case "vcs.revision":
		v.Revision = orUnknown(value)
		v.RevisionShort = v.Revision
		if len(value) > shortRevision {
			v.RevisionShort = value[:shortRevision]
		}
	case "vcs.time":
		v.VCSTime = orUnknown(value)
	case "vcs.modified":
		if value == "true" || value == "false" {
			m := value == "true"
			v.Modified = &m
		}
	case "GOOS":
		v.GOOS = cmp.Or(value, v.GOOS)
	case "GOARCH":
		v.GOARCH = cmp.Or(value, v.GOARCH)
	case "-tags":
		for _, t := range strings.Split(value, ",") {
			if t = strings.TrimSpace(t); t != "" {
				v.BuildTags = append(v.BuildTags, t)
			}
		}
	}
}

// orUnknown returns s, or "unknown" when it is empty.
func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}

// writeText prints v as the readable block of isab version.
func (v versionInfo) writeText(w io.Writer) error {
	modified, tags, rev := unknown, "none", v.Revision
	if v.Modified != nil {
		modified = fmt.Sprint(*v.Modified)
	}
	if len(v.BuildTags) > 0 {
		tags = strings.Join(v.BuildTags, ",")
	}
	if v.RevisionShort != v.Revision {
		rev = v.RevisionShort + " (" + v.Revision + ")"
	}
	_, err := fmt.Fprintf(w, "isab %s\n  %-11s %s\n  %-11s %s\n  %-11s %s\n  %-11s %s\n  %-11s %s\n  %-11s %s/%s\n  %-11s %s\n",
		v.Version, "module", v.Module, "revision", rev, "modified", modified, "vcs time", v.VCSTime,
		"go", v.GoVersion, "platform", v.GOOS, v.GOARCH, "build tags", tags)
	return err
}

// runVersion is isab version: the build's versionInfo as text or JSON.
func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "[--json]", stderr)
	asJSON := fs.Bool("json", false, "print the same as one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	v := buildVersion()
	if *asJSON {
		return json.NewEncoder(stdout).Encode(v)
	}
	return v.writeText(stdout)
}
