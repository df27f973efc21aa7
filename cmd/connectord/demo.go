package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"html"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/connectord/connectord/channels/sms/smstest"
	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

// The demo's cast: one SMS customer, one company number, one operator.
const (
	demoCustomer = "+15557654321"
	demoNumber   = "+15551230000"
)

// demoConfig is an ordinary configuration: the demo runs the real daemon,
// only the far ends (Twilio, WhosOn) are the in-process fakes.
const demoConfig = `
[daemon]
state_dir = %q
shutdown_timeout = "5s"

[log]
level = %q
format = "console"

[http]
listen = %q
public_url = %q

[channels.sms.demo]
account_sid = %q
auth_token = %q
from = %q
api_url = %q

[vendors.whoson.demo]
url = %q
domain = "www.example.com"
auth_string = "test-auth"
api_key = "demo"
queue_notice_interval = "5s"

[[routes]]
channel = "sms.demo"
vendor = "whoson.demo"
`

// cmdDemo runs a whole conversation in one process: the lines typed on stdin
// arrive as SMS from a customer, a scripted WhosOn operator answers, and what
// the fake Twilio is asked to send back is printed.
func cmdDemo(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "show the daemon's own log")
	settle := fs.Duration("settle", 3*time.Second, "after the input ends, wait this long for the last replies")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	out := &syncWriter{w: stdout}

	twilio, err := smstest.New(smstest.Config{})
	if err != nil {
		return fmt.Errorf("fake twilio: %w", err)
	}
	defer twilio.Close()
	twilio.OnSent(func(s smstest.Sent) { out.printf("  agent -> you (SMS %s): %s\n", s.SID[:8], s.Body) })

	whoson, err := whosontest.New(whosontest.Config{Operator: demoOperator()})
	if err != nil {
		return fmt.Errorf("fake whoson: %w", err)
	}
	defer whoson.Close()

	dir, err := os.MkdirTemp("", "connectord-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	level := "error"
	if *verbose {
		level = "info"
	}
	text := fmt.Sprintf(demoConfig, dir, level, ln.Addr().String(), base,
		twilio.AccountSID(), twilio.AuthToken(), demoNumber, twilio.URL(), whoson.URL())
	cfg, err := connector.ParseConfig([]byte(text), connector.Expander{Getenv: os.LookupEnv})
	if err != nil {
		ln.Close()
		return fmt.Errorf("demo config: %w", err)
	}
	log, err := newLogger(cfg.Log, "demo")
	if err != nil {
		ln.Close()
		return err
	}
	defer log.Sync() //nolint:errcheck // best effort at exit

	dctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- serve(dctx, cfg, log, ln) }()

	out.printf("connectord demo: you are the SMS customer %s writing to %s.\n", demoCustomer, demoNumber)
	out.printf("A scripted WhosOn operator answers. Type a line and press Enter; Ctrl-D ends.\n\n")
	if err := converse(dctx, stdin, out, twilio, base+"/sms/demo"); err != nil {
		stop()
		<-done
		return err
	}
	waitQuiet(dctx, twilio, *settle)
	stop()
	return <-done
}

// converse posts every stdin line as an inbound SMS, signed as Twilio signs it.
func converse(ctx context.Context, stdin io.Reader, out *syncWriter, twilio *smstest.Server, webhook string) error {
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			if strings.TrimSpace(line) == "" {
				continue
			}
			_, status, err := twilio.Inbound(ctx, webhook, demoCustomer, demoNumber, line)
			if err != nil {
				return fmt.Errorf("post inbound SMS: %w", err)
			}
			out.printf("  you -> agent (webhook answered %d): %s\n", status, line)
		}
	}
}

// waitQuiet returns once the fake Twilio has been asked to send nothing new for
// the settle period (or ctx ends), so piped input still sees its answers.
func waitQuiet(ctx context.Context, twilio *smstest.Server, settle time.Duration) {
	last := len(twilio.Sent())
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(settle):
		}
		n := len(twilio.Sent())
		if n == last {
			return
		}
		last = n
	}
}

// demoOperator answers a few keywords and acknowledges everything else.
func demoOperator() whosontest.Operator {
	return whosontest.Operator{
		Name:      "Alice",
		JoinDelay: 500 * time.Millisecond,
		Greeting:  "Hi, I'm <b>Alice</b>. How can I help you today?",
		Reply: func(text string) string {
			t := strings.ToLower(text)
			switch {
			case strings.Contains(t, "hours") || strings.Contains(t, "open"):
				return "We are open 9am&ndash;5pm, Monday to Friday."
			case strings.Contains(t, "price") || strings.Contains(t, "cost"):
				return "Our plans start at $10 a month. See <a href=\"https://example.com/pricing\">pricing</a>."
			case strings.Contains(t, "bye") || strings.Contains(t, "thanks"):
				return "You're welcome. Have a nice day!"
			default:
				return "Thanks, I got: &quot;" + html.EscapeString(text) + "&quot;. Ask me about our hours or prices."
			}
		},
	}
}

// syncWriter serialises output from the stdin loop and the fake's callbacks.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format, args...)
}
