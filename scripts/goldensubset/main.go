// Command goldensubset copies the golden fixtures (cases.json and each
// case's .weights, .input and .expected files) from one folder to another,
// leaving out the cases named with -skip, for the GPU bundle (make
// gpu-bundle), which must stay within the device tool's carry limit.
//
//	go run ./scripts/goldensubset -skip isab_readme_small ../shared/golden .gpu/golden
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	skip := flag.String("skip", "", "comma-separated case names to leave out")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: goldensubset [-skip a,b] FROM TO")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), strings.Split(*skip, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "goldensubset:", err)
		os.Exit(1)
	}
}

func run(from, to string, skip []string) error {
	data, err := os.ReadFile(filepath.Join(from, "cases.json"))
	if err != nil {
		return err
	}
	var cases []map[string]any
	if err := json.Unmarshal(data, &cases); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(from, "cases.json"), err)
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	var kept []map[string]any
	for _, c := range cases {
		name, _ := c["name"].(string)
		if name == "" || slices.Contains(skip, name) {
			continue
		}
		for _, suffix := range []string{".weights.safetensors", ".input.safetensors", ".expected.safetensors"} {
			if err := copyFile(filepath.Join(from, name+suffix), filepath.Join(to, name+suffix)); err != nil {
				return err
			}
		}
		kept = append(kept, c)
	}
	out, err := json.MarshalIndent(kept, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(to, "cases.json"), append(out, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("goldensubset: %d of %d cases in %s\n", len(kept), len(cases), to)
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return out.Close()
}
