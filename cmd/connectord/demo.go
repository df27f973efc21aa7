package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/connectord/connectord/channels/slack/slacktest"
	"github.com/connectord/connectord/channels/sms/smstest"
	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

// The demo's cast: one SMS customer, one company number, one operator; in
// Slack, one member writing in one support channel.
const (
	demoCustomer = "+15557654321"
	demoNumber   = "+15551230000"

	demoSlackChannel     = "C0DEMO0001"
	demoSlackChannelName = "support"
	demoSlackUser        = "U0DEMO0001"
	demoSlackUserName    = "Sam"
)

// demoConfig is an ordinary configuration: the demo runs the real daemon,
// only the far ends (Twilio or Slack, WhosOn or the Customer Channel chat
// server) are fakes. The channel's block (demoSMSConfig or demoSlackConfig)
// and the vendor's go in the two %s, their names in the route.
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
admin_listen = "" # the demo serves no metrics
%s%s
[[routes]]
channel = %q
vendor = %q
`

// demoWhosOnConfig is the fake WhosOn's block; its %q is the fake's URL.
const demoWhosOnConfig = `
[vendors.whoson.demo]
url = %q
domain = "www.example.com"
auth_string = "test-auth"
api_key = "demo"
queue_notice_interval = "5s"
`

// demoCustomerChannelConfig is the Customer Channel simulator's block: its
// %q are the simulator's URL and the channel its campaign messages go out
// on. connectord registers there as the "sms" connector.
const demoCustomerChannelConfig = `
[vendors.customerchannel.demo]
url = %q
eio = 4
connector_id = "sms"
connector_name = "connectord demo"
deliver_via = %q
`

// demoSMSConfig sends without pacing: the fake Twilio has no queue, and a
// long answer should not take a real long code's second per segment.
const demoSMSConfig = `
[channels.sms.demo]
account_sid = %q
auth_token = %q
from = %q
api_url = %q
mps = 0.0
`

// demoSlackConfig uses Socket Mode, so that the fake Slack needs no URL of
// the daemon, and posts without pacing.
const demoSlackConfig = `
[channels.slack.demo]
bot_token = %q
app_token = %q
channels = [%q]
api_url = %q
post_interval = "0s"
`

// demoUsage is the demo's -h text, before the flags.
const demoUsage = `usage: connectord demo [-channel sms|slack] [-vendor whoson|customerchannel] [-settle D] [-v]

Runs the real daemon against built-in fakes of Twilio or Slack and of WhosOn,
with a scripted WhosOn operator, Alice: no accounts needed. Each line typed on
stdin is a customer's message; what the customer would see is printed.
Ctrl-D (end of input) or Ctrl-C ends the demo.

  -vendor customerchannel
                  the agent side is the Customer Channel chat server's
                  simulator (Node.js, from the source tree: needs npm ci in
                  vendors/customerchannel/customerchanneltest) with a scripted
                  agent, Dana; connectord registers there as the SMS
                  connector, and the server's campaign SMS to you comes first:
                  answer it to reach Dana (with -channel sms only)

  -channel sms    you text the company's number; Alice's answers are the SMS
                  sent back (the default)
  -channel slack  you are Sam in the Slack channel #support: the first line
                  starts a thread, later lines reply in it, "end chat" ends
                  the conversation (a line after that starts a new one);
                  each line waits for the answers to the previous one

flags:
`

// cmdDemo runs a whole conversation in one process: the lines typed on stdin
// arrive as SMS (or Slack messages) from a customer, a scripted WhosOn
// operator answers, and what the fake Twilio is asked to send back (or what
// the app posts in Slack) is printed.
func cmdDemo(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), demoUsage)
		fs.PrintDefaults()
	}
	channel := fs.String("channel", "sms", "where the customer writes: sms or slack")
	vendor := fs.String("vendor", "whoson", "the agent side: whoson or customerchannel")
	verbose := fs.Bool("v", false, "show the daemon's own log")
	settle := fs.Duration("settle", 3*time.Second, "after the input ends, wait this long for the last replies")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v\n", fs.Args())
		fs.Usage()
		return usageError{fmt.Errorf("unexpected arguments")}
	}
	out := &syncWriter{w: stdout}
	if *channel != "sms" && *channel != "slack" {
		fmt.Fprintf(stderr, "-channel must be sms or slack, not %q\n", *channel)
		fs.Usage()
		return usageError{fmt.Errorf("bad -channel %q", *channel)}
	}
	if bad := demoVendorFlag(*vendor, *channel); bad != "" {
		fmt.Fprintln(stderr, bad)
		fs.Usage()
		return usageError{errors.New(bad)}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	var ch *demoChannel
	if *channel == "slack" {
		ch = slackDemo(out)
	} else {
		ch, err = smsDemo(out, base+"/sms/demo")
	}
	if err != nil {
		ln.Close()
		return err
	}
	defer ch.close()

	v, err := newDemoVendor(ctx, *vendor, ch.name)
	if err != nil {
		ln.Close()
		return err
	}
	defer v.close()

	dir, err := os.MkdirTemp("", "connectord-demo-")
	if err != nil {
		ln.Close()
		return err
	}
	defer os.RemoveAll(dir)

	level := "error"
	if *verbose {
		level = "info"
	}
	text := fmt.Sprintf(demoConfig, dir, level, ln.Addr().String(), base, ch.block, v.block, ch.name, v.name)
	cfg, err := connector.ParseConfig([]byte(text), connector.Expander{Getenv: os.LookupEnv})
	if err != nil {
		ln.Close()
		return fmt.Errorf("demo config: %w", err)
	}
	log, _, err := newLogger(cfg.Log, "demo")
	if err != nil {
		ln.Close()
		return err
	}
	defer log.Sync() //nolint:errcheck // best effort at exit

	dctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- serve(dctx, cfg, log, ln, nil) }()
	var watchers sync.WaitGroup
	if ch.watch != nil {
		watchers.Go(func() { ch.watch(dctx) })
	}
	finish := func() error {
		stop()
		err := <-done
		watchers.Wait()
		return err
	}

	out.printf("%s%sType a line and press Enter; Ctrl-D ends.\n\n", ch.intro, v.intro)
	if v.start != nil {
		if err := v.start(dctx, ch.activity); err != nil {
			finish() //nolint:errcheck // the vendor's error matters more
			return err
		}
	}
	if err := converse(dctx, stdin, ch.say); err != nil {
		finish() //nolint:errcheck // the input's error matters more
		return err
	}
	waitQuiet(dctx, ch.activity, *settle)
	return finish()
}

// demoChannel is the customer's side of the demo: how a typed line reaches
// the daemon, and how much the daemon has shown so far.
type demoChannel struct {
	block    string // the channel's configuration block
	name     string // the channel instance, for the route
	intro    string
	say      func(ctx context.Context, line string) error
	activity func() int                // grows with everything the daemon shows the customer
	watch    func(ctx context.Context) // nil, or runs until ctx ends, printing what say and the fake's callbacks do not
	close    func()
}

// smsDemo is the customer texting the company's number through the fake
// Twilio, whose webhook on the daemon is webhook.
func smsDemo(out *syncWriter, webhook string) (*demoChannel, error) {
	twilio, err := smstest.New(smstest.Config{})
	if err != nil {
		return nil, fmt.Errorf("fake twilio: %w", err)
	}
	twilio.OnSent(func(s smstest.Sent) { out.printf("  agent -> you (SMS %s): %s\n", s.SID[:8], s.Body) })
	return &demoChannel{
		block: fmt.Sprintf(demoSMSConfig, twilio.AccountSID(), twilio.AuthToken(), demoNumber, twilio.URL()),
		name:  "sms.demo",
		intro: fmt.Sprintf("connectord demo: you are the SMS customer %s writing to %s.\n", demoCustomer, demoNumber),
		// Every line is posted as an inbound SMS, signed as Twilio signs it.
		say: func(ctx context.Context, line string) error {
			_, status, err := twilio.Inbound(ctx, webhook, demoCustomer, demoNumber, line)
			if err != nil {
				return fmt.Errorf("post inbound SMS: %w", err)
			}
			out.printf("  you -> agent (webhook answered %d): %s\n", status, line)
			return nil
		},
		activity: func() int { return len(twilio.Sent()) },
		close:    twilio.Close,
	}, nil
}

// slackThread is the Slack side of the demo: Sam's one thread in #support,
// as the fake Slack shows it.
type slackThread struct {
	fake *slacktest.Server
	out  *syncWriter

	mu       sync.Mutex
	root     string    // ts of Sam's first message, the thread's root; "" before it
	activity int       // the app's messages and reaction changes printed
	said     int       // activity when Sam's last line was posted
	changed  time.Time // when activity last grew, or Sam's last line was posted
}

// Sam's lines after the first wait until the daemon has shown something
// since the previous one (at most slackAnswerWait) and then nothing for
// slackQuiet: piped input reads as a conversation, not a burst that ends
// the chat before the operator ever joined. Someone typing hardly waits.
const (
	slackQuiet      = time.Second
	slackAnswerWait = 10 * time.Second
)

// slackDemo is the customer writing in a Slack channel of the fake Slack,
// which the daemon reads over Socket Mode.
func slackDemo(out *syncWriter) *demoChannel {
	fake := slacktest.NewServer()
	fake.AddUser(slacktest.User{ID: demoSlackUser, Name: "sam", RealName: "Sam Taylor",
		DisplayName: demoSlackUserName, Email: "sam@example.com"})
	fake.AddChannel(slacktest.Channel{ID: demoSlackChannel, Name: demoSlackChannelName})
	t := &slackThread{fake: fake, out: out}
	fake.Notify(t.posted)
	return &demoChannel{
		block: fmt.Sprintf(demoSlackConfig, fake.BotToken, fake.AppToken, demoSlackChannel, fake.APIURL()),
		name:  "slack.demo",
		intro: fmt.Sprintf("connectord demo: you are %s (%s) in the Slack channel #%s (%s).\n",
			demoSlackUserName, demoSlackUser, demoSlackChannelName, demoSlackChannel) +
			"Your first line starts a thread, the next ones reply in it; \"end chat\" ends the conversation.\n",
		say: t.say,
		activity: func() int {
			t.mu.Lock()
			defer t.mu.Unlock()
			return t.activity
		},
		watch: t.watchReactions,
		close: fake.Close,
	}
}

// say posts line as Sam: the first at the top of the channel, the others in
// its thread.
func (t *slackThread) say(ctx context.Context, line string) error {
	t.mu.Lock()
	root := t.root
	t.mu.Unlock()
	if root != "" {
		t.awaitAnswer(ctx)
		if ctx.Err() != nil {
			return nil
		}
	}
	m := t.fake.Post(slacktest.Post{Channel: demoSlackChannel, User: demoSlackUser, ThreadTS: root, Text: line})
	t.mu.Lock()
	if root == "" {
		t.root = m.TS
	}
	t.said, t.changed = t.activity, time.Now()
	t.mu.Unlock()
	if root == "" {
		t.out.printf("%s  %s: %s\n", slackRoot(m.TS), demoSlackUserName, indent(line))
		return nil
	}
	t.out.printf("%s  %s: %s\n", slackWhere(demoSlackChannel, root), demoSlackUserName, indent(line))
	return nil
}

// awaitAnswer waits until the daemon has shown something since Sam's last
// line and then been quiet for slackQuiet, or slackAnswerWait passed, or ctx
// ended.
func (t *slackThread) awaitAnswer(ctx context.Context) {
	deadline := time.Now().Add(slackAnswerWait)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		t.mu.Lock()
		answered := t.activity > t.said && time.Since(t.changed) >= slackQuiet
		t.mu.Unlock()
		if answered || time.Now().After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// posted prints a message the app posted, updated or deleted, as Slack shows
// it: agents' lines under the agent's name, the daemon's notices under the
// app's. The typing indicator is left out: whether it shows depends on timing.
func (t *slackThread) posted(m slacktest.Message) {
	if m.Metadata != nil && m.Metadata.EventType == "connectord_typing" {
		return
	}
	who := m.Username
	if who == "" {
		who = "connectord"
	}
	text := indent(m.Text)
	switch {
	case m.Deleted:
		text = "(deleted) " + text
	case m.Edited:
		text = "(edited) " + text
	}
	for _, f := range m.Files {
		text += fmt.Sprintf(" [file %s]", f.Name)
	}
	t.mu.Lock()
	t.activity++
	t.changed = time.Now()
	t.mu.Unlock()
	t.out.printf("%s  %s: %s\n", slackWhere(m.Channel, m.ThreadTS), who, text)
}

// watchReactions prints the reactions on the thread's root whenever they
// change and then stay for reactionSettle, until ctx ends: the daemon swaps
// one for another by a removal and an addition, and the moment between is
// not worth a line. The fake does not announce reactions: this looks after
// every change the fake records.
func (t *slackThread) watchReactions(ctx context.Context) {
	root := func() (string, []string) {
		t.mu.Lock()
		ts := t.root
		t.mu.Unlock()
		if ts == "" {
			return "", nil
		}
		m, _ := t.fake.Message(demoSlackChannel, ts)
		return ts, m.Reactions
	}
	var shown []string
	for {
		var ts string
		var now []string
		err := t.fake.WaitFor(ctx, func() bool {
			ts, now = root()
			return !slices.Equal(now, shown)
		})
		if err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(reactionSettle):
		}
		if _, again := root(); !slices.Equal(again, now) {
			continue
		}
		shown = now
		t.mu.Lock()
		t.activity++
		t.changed = time.Now()
		t.mu.Unlock()
		list := "(none)"
		if len(now) > 0 {
			list = ":" + strings.Join(now, ": :") + ":"
		}
		t.out.printf("%s  reactions: %s\n", slackRoot(ts), list)
	}
}

// reactionSettle is how long the root's reactions must stay to be printed.
const reactionSettle = 150 * time.Millisecond

// slackWhere names a place in Slack: "slack #support" or, in a thread,
// "slack #support thread TS".
func slackWhere(channel, thread string) string {
	where := "slack " + channel
	if channel == demoSlackChannel {
		where = "slack #" + demoSlackChannelName
	}
	if thread != "" {
		where += " thread " + thread
	}
	return where
}

// slackRoot names Sam's first message, the thread's root.
func slackRoot(ts string) string { return slackWhere(demoSlackChannel, "") + " message " + ts }

// indent keeps a message's later lines apart from the demo's own lines.
func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n    ") }

// converse hands every non-blank stdin line to say, until the input or ctx
// ends.
func converse(ctx context.Context, stdin io.Reader, say func(context.Context, string) error) error {
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
			if err := say(ctx, line); err != nil {
				return err
			}
		}
	}
}

// waitQuiet returns once activity has not grown for the settle period (or
// ctx ends), so piped input still sees its answers.
func waitQuiet(ctx context.Context, activity func() int, settle time.Duration) {
	last := activity()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(settle):
		}
		n := activity()
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
