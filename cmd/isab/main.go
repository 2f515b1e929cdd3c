// Command isab runs the Induced Set Attention Block (ISAB) of the Set
// Transformer on any Vulkan device.
//
//	isab devices                  list Vulkan devices and what they support
//	isab run --weights W --input IN --output OUT [flags]
//	isab demo                     run the isab-pytorch README example and check it
//	isab bench [flags]            time the forward pass
//	isab cluster --eval           evaluate the clustering example
//
// Run "isab COMMAND --help" for a command's flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"devices", "list Vulkan devices and what they support", runDevices},
		{"run", "run an ISAB block on inputs from a safetensors file", runRun},
		{"demo", "run the isab-pytorch README example on the best device and check it", runDemo},
		{"bench", "time the forward pass for given shapes", runBench},
		{"view", "show a point set, the predicted mixture and attention in a window", runView},
		{"cluster", "evaluate the Set Transformer clustering example on its benchmark", runCluster},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: isab COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'isab COMMAND --help' for a command's flags. ISAB_DEVICE selects a device")
	fmt.Fprintln(w, "(index or name substring) when --device is not given.")
}

// errUsage marks errors already explained by a flag set's usage text.
var errUsage = errors.New("usage")

func main() {
	os.Exit(mainErr(os.Args[1:], os.Stdout, os.Stderr))
}

func mainErr(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	if name == "-h" || name == "--help" || name == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == name {
			err := c.run(args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			default:
				fmt.Fprintf(stderr, "isab %s: %s\n", name, oneLine(err.Error()))
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "isab: unknown command %q\n\n", name)
	usage(stderr)
	return 2
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// newFlags makes a flag set whose errors return instead of exiting.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("isab "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: isab %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags and rejects stray positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}
