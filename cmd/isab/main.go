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
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
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

// usageError is a bad command line: mainErr prints it on one line with a
// pointer to the command's --help, and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a usageError.
func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// interruptGrace is how long a command has to stop cleanly after the first
// SIGINT or SIGTERM before the process exits anyway: a device that is
// compiling a pipeline or running a long submission cannot be interrupted
// from the host.
const interruptGrace = 3 * time.Second

// exitInterrupted is the exit status after an interrupt (128 + SIGINT).
const exitInterrupted = 130

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		cancel()
		select {
		case <-sigs:
		case <-time.After(interruptGrace):
		}
		fmt.Fprintf(os.Stderr, "isab: %v: stopped without waiting for the device\n", s)
		os.Exit(exitInterrupted)
	}()
	os.Exit(mainErr(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// mainErr runs the command that args name and returns the exit status: 0
// on success or help, 1 when the command fails, 2 on a usage error, 130
// when ctx was cancelled (an interrupt). Every failure prints one line.
func mainErr(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "isab: no command given (run 'isab help' for the commands)")
		return 2
	}
	name := args[0]
	if name == "-h" || name == "--help" || name == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == name {
			err := c.run(ctx, args[1:], stdout, stderr)
			var ue *usageError
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.As(err, &ue):
				fmt.Fprintln(stderr, oneLine(fmt.Sprintf("isab %s: %s (run 'isab %s --help' for the flags)", name, ue.msg, name)))
				return 2
			case ctx.Err() != nil && errors.Is(err, context.Canceled):
				fmt.Fprintf(stderr, "isab %s: interrupted\n", name)
				return exitInterrupted
			default:
				fmt.Fprintln(stderr, oneLine(fmt.Sprintf("isab %s: %s", name, err)))
				return 1
			}
		}
	}
	fmt.Fprintln(stderr, oneLine(fmt.Sprintf("isab: unknown command %q (run 'isab help' for the commands)", name)))
	return 2
}

// maxErrLine is the longest error line mainErr prints, in bytes, not
// counting the newline.
const maxErrLine = 600

// oneLine keeps an error message on one line of at most maxErrLine bytes
// (cut at a rune boundary, with an ellipsis), whatever a file put in it.
func oneLine(s string) string {
	if len(s) > 64*maxErrLine {
		s = s[:64*maxErrLine] // strings.Fields of megabytes is wasted work
	}
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "\uFFFD")), " ")
	if len(s) <= maxErrLine {
		return s
	}
	cut := maxErrLine - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// newFlags makes a flag set whose errors return instead of exiting; its
// Usage prints the synopsis and the flags to stderr (for --help).
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("isab "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: isab %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags and rejects stray positional arguments. A bad flag is
// a usageError of one line; --help prints the usage and returns
// flag.ErrHelp.
func parse(fs *flag.FlagSet, args []string) error {
	out, usage := fs.Output(), fs.Usage
	// The flag package prints its error and the whole usage on a bad flag;
	// keep that quiet and report the error on one line instead.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return err
	}
	if err != nil {
		return &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
