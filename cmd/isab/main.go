// Command isab runs the Induced Set Attention Block (ISAB) of the Set
// Transformer on any Vulkan device.
//
//	isab devices                  list Vulkan devices and what they support
//	isab run --weights W --input IN --output OUT [flags]
//	isab demo                     run the isab-pytorch README example and check it
//	isab bench [flags]            time the forward pass
//	isab view [flags]             show a point set and its attention in a window
//	isab cluster --eval           evaluate the clustering example
//	isab version [--json]         print the build's version, VCS revision and Go version
//
// Run "isab help COMMAND" or "isab COMMAND --help" for a command's flags.
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

	"github.com/isab-vk/isab-vk/vk"
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
		{"convert", "convert a torch.save state_dict (.pt) to safetensors", runConvert},
		{"demo", "run the isab-pytorch README example on the best device and check it", runDemo},
		{"bench", "time the forward pass for given shapes", runBench},
		{"view", "show a point set, the predicted mixture and attention in a window", runView},
		{"cluster", "evaluate the Set Transformer clustering example on its benchmark", runCluster},
		{"version", "print the version, VCS revision and Go version of this build", runVersion},
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
	fmt.Fprintln(w, "Run 'isab help COMMAND' or 'isab COMMAND --help' for a command's flags, and")
	fmt.Fprintln(w, "'isab --version' for the build. ISAB_DEVICE selects a device (index or name")
	fmt.Fprintln(w, "substring) when --device is not given. Exit status: 0 success, 1 failure,")
	fmt.Fprintln(w, "2 bad command line, 130 interrupted.")
}

// usageError is a bad command line: mainErr prints it on one line with a
// pointer to the command's --help, and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a usageError.
func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// helpText is a requested --help: mainErr prints text, the command's usage,
// on stdout and exits 0. It wraps flag.ErrHelp.
type helpText struct{ text string }

// Error says that help was asked for.
func (h *helpText) Error() string { return "help requested" }

// Unwrap lets errors.Is(err, flag.ErrHelp) match.
func (h *helpText) Unwrap() error { return flag.ErrHelp }

// interruptGrace is how long a command has to stop cleanly after the first
// SIGINT or SIGTERM before the process exits anyway: a device that is
// compiling a pipeline or running a long submission cannot be interrupted
// from the host.
const interruptGrace = 3 * time.Second

// exitInterrupted is the exit status after an interrupt (128 + SIGINT).
const exitInterrupted = 130

func main() {
	// Before any device is opened: lavapipe's vector width and shader
	// cache for the kernels as tuned (see vk.UseLavapipeDefaults).
	if err := vk.UseLavapipeDefaults(); err != nil {
		fmt.Fprintf(os.Stderr, "isab: %v\n", err)
		os.Exit(1)
	}
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
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "help":
		return helpFor(ctx, args[1:], stdout, stderr)
	case "-version", "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	if c, ok := lookup(args[0]); ok {
		return runCommand(ctx, c, args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, oneLine(fmt.Sprintf("isab: unknown command %q (run 'isab help' for the commands)", args[0])))
	return 2
}

// lookup returns the command called name.
func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// helpFor answers "isab help [COMMAND]": the top-level usage, or the
// command's own usage (as its --help prints it), on stdout.
func helpFor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (len(args) == 1 && args[0] == "help") {
		usage(stdout)
		return 0
	}
	c, ok := lookup(args[0])
	switch {
	case len(args) > 1:
		fmt.Fprintln(stderr, oneLine(fmt.Sprintf("isab help: want one command, got %d arguments (run 'isab help' for the commands)", len(args))))
		return 2
	case !ok:
		fmt.Fprintln(stderr, oneLine(fmt.Sprintf("isab help: unknown command %q (run 'isab help' for the commands)", args[0])))
		return 2
	}
	return runCommand(ctx, c, []string{"--help"}, stdout, stderr)
}

// runCommand runs c with args and turns its error into mainErr's exit
// status and one line on stderr; requested help goes to stdout.
func runCommand(ctx context.Context, c command, args []string, stdout, stderr io.Writer) int {
	err := c.run(ctx, args, stdout, stderr)
	var ue *usageError
	var ht *helpText
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ht):
		fmt.Fprint(stdout, ht.text)
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, oneLine(fmt.Sprintf("isab %s: %s (run 'isab %s --help' for the flags)", c.name, ue.msg, c.name)))
		return 2
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "isab %s: interrupted\n", c.name)
		return exitInterrupted
	default:
		fmt.Fprintln(stderr, oneLine(fmt.Sprintf("isab %s: %s", c.name, err)))
		return 1
	}
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
// Usage prints the synopsis and the flags to the set's output, stderr.
// parse captures that usage for --help, which mainErr prints on stdout.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("isab "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: isab %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags and rejects stray positional arguments. A bad flag is
// a usageError of one line; --help returns a helpText holding the usage
// (it wraps flag.ErrHelp), which mainErr prints on stdout.
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
		var text strings.Builder
		fs.SetOutput(&text)
		fs.Usage()
		fs.SetOutput(out)
		return &helpText{text.String()}
	}
	if err != nil {
		return &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
