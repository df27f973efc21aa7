// Command connectord bridges customers on SMS to agents in contact-center
// products. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/connectord/connectord/channels/slack"
	"github.com/connectord/connectord/channels/sms"
	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/cention"
	"github.com/connectord/connectord/vendors/cobrowser"
	"github.com/connectord/connectord/vendors/customerchannel"
	"github.com/connectord/connectord/vendors/whoson"
	"github.com/connectord/connectord/vendors/xima"
)

// version is set at build time with -ldflags "-X main.version=..." (a
// release); empty, the module version the Go tool recorded is used. A
// variable because -X sets only those.
var version = ""

// registry is the one place that knows every adapter: a new one is one line here.
func registry() connector.Registry {
	return connector.Registry{
		Channels: []connector.ChannelKind{
			sms.Kind(),
			slack.Kind(),
		},
		Vendors: []connector.VendorKind{
			whoson.Kind(),
			customerchannel.Kind(),
			cobrowser.Kind(),
			xima.Kind(),
			cention.Kind(),
		},
		Build: buildInfo(),
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "run"
	switch {
	case len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help"):
		cmd = "help" // not run's flags: the list of commands
	case len(args) > 0 && args[0] != "" && args[0][0] != '-':
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch cmd {
	case "run":
		err = cmdRun(ctx, args, stderr)
	case "check-config":
		err = cmdCheck(ctx, args, stdout, stderr)
	case "version":
		err = cmdVersion(args, stdout, stderr)
	case "status", "conversations", "conversation", "end", "retry":
		err = cmdOperator(ctx, cmd, args, stdout, stderr)
	case "demo":
		err = cmdDemo(ctx, args, stdin, stdout, stderr)
	case "bench":
		err = cmdBench(ctx, args, stdout, stderr)
	case "help":
		usage(stdout)
	default:
		fmt.Fprintf(stderr, "connectord: unknown command %q\n", cmd)
		usage(stderr)
		return 2
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		if !errors.Is(err, errReported) {
			fmt.Fprintln(stderr, "connectord:", err)
		}
		return 1
	}
	return 0
}

// errReported means the command already printed what went wrong.
var errReported = errors.New("reported")

type usageError struct{ error }

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: connectord [command] [flags]

commands:
  run           run the daemon (the default)       -config FILE
  check-config  validate a configuration, exit 0/1 -config FILE [-connect: also reach the database]
  demo          a whole conversation against built-in fakes, no accounts needed
                (-channel sms or -channel slack)
  bench         measure this binary against built-in fakes (see BENCHMARKS.md; -h for flags)
  version       print the version, VCS revision and time, Go version [-json]

operator commands (talk to the running daemon on http.admin_listen; -json for scripts):
  status                          health, conversations by state, outbox, stuck count
  conversations [flags]           list conversations (-state, -stuck, -channel, -vendor,
                                  -older-than, -newer-than, -limit, -before; -h for all)
  conversation ID                 one conversation with its messages and their delivery
  end ID                          end a conversation; the customer gets a notice
  retry MSGID                     send a failed message again

-config defaults to $CONNECTORD_CONFIG, else /etc/connectord/config.toml.
`)
}

// configFlag parses -config for run and check-config.
func configFlag(name string, args []string, stderr io.Writer) (string, error) {
	return configFlags(name, args, stderr, nil)
}

// configFlags is configFlag for a command with more flags, which more
// defines on its flag set.
func configFlags(name string, args []string, stderr io.Writer, more func(fs *flag.FlagSet)) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	if more != nil {
		more(fs)
	}
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfigPath(), "configuration file (TOML)")
	if err := fs.Parse(args); err != nil {
		return "", usageError{err}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v\n", fs.Args())
		return "", usageError{errors.New("unexpected arguments")}
	}
	return *path, nil
}
