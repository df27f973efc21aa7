package main

// End-to-end tests of the Customer Channel vendor: the real binary against
// the reference Node socket.io servers (both generations), the fake Twilio
// and the fake Slack.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectord/connectord/channels/slack/slacktest"
	"github.com/connectord/connectord/vendors/customerchannel/customerchanneltest"
)

const ccConfig = e2eHeader + e2eRetry + e2eSMS + e2eSlack + `fetch_allow = ["127.0.0.0/8"] # the simulator serves transcripts on loopback

[vendors.customerchannel.hub]
url = %q
eio = %d
connector_id = %q
connector_name = "connectord connector"
deliver_via = %q
reconnect_max = "500ms"

[[routes]]
channel = "sms.main"
vendor = "customerchannel.hub"

[[routes]]
channel = "slack.support"
vendor = "customerchannel.hub"
`

type ccWorld struct {
	*slackWorld
	sim *customerchanneltest.Server
}

func newCCWorld(t *testing.T, eio int) *ccWorld { return newCCWorldVia(t, eio, "sms.main") }

// newCCWorldVia registers the connector for the kind of deliverVia, where
// server-started messages go.
func newCCWorldVia(t *testing.T, eio int, deliverVia string) *ccWorld {
	t.Helper()
	sw := newSlackWorld(t, echoOperator(), true)
	sim := customerchanneltest.StartTest(t, eio)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sim.AutoAgent(ctx, customerchanneltest.AutoAgent{Name: "Dee", Echo: true, Whisper: true}); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(ccConfig, filepath.Join(sw.dir, "state"), sw.addr, "http://"+sw.addr,
		sw.twilio.AccountSID(), companyNumber, sw.twilio.URL(),
		sw.slack.AppToken, slackSupport, sw.slack.APIURL(), sim.URL, eio,
		strings.Split(deliverVia, ".")[0], deliverVia)
	if err := os.WriteFile(sw.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return &ccWorld{slackWorld: sw, sim: sim}
}

func bothGenerations(t *testing.T, f func(t *testing.T, eio int)) {
	for _, eio := range []int{3, 4} {
		t.Run(fmt.Sprintf("eio%d", eio), func(t *testing.T) { f(t, eio) })
	}
}

func TestCustomerChannelSMSAndSlack(t *testing.T) {
	bothGenerations(t, func(t *testing.T, eio int) {
		w := newCCWorld(t, eio)
		w.start()
		w.sms("hello from my phone")
		w.smsTo("echo: hello from my phone")
		root := w.say("", "hello from slack")
		w.waitThread(root.TS, "echo: hello from slack")
		for _, s := range w.twilio.Sent() {
			if s.Body == "whisper: hello from my phone" {
				t.Errorf("a whisper reached the customer: %+v", s)
			}
		}
	})
}

func TestCustomerChannelCampaignOnce(t *testing.T) {
	bothGenerations(t, func(t *testing.T, eio int) {
		w := newCCWorld(t, eio)
		w.start()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := w.sim.WaitFor(ctx, func(st customerchanneltest.State) bool { return len(st.Connectors) > 0 }); err != nil {
			t.Fatal("connectord never registered as a connector")
		}
		for range 2 { // the same message id twice: delivered once
			if _, err := w.sim.Campaign(ctx, customerNumber, "Our sale starts today", "camp-1", "sms"); err != nil {
				t.Fatal(err)
			}
		}
		w.smsTo("Our sale starts today")
		w.sms("tell me more")
		w.smsTo("echo: tell me more")
		if n := countBody(w.twilio.Sent(), "Our sale starts today"); n != 1 {
			t.Errorf("campaign SMS sent %d times, want once", n)
		}
	})
}

func TestCustomerChannelSocketDropLosesNothing(t *testing.T) {
	bothGenerations(t, func(t *testing.T, eio int) {
		w := newCCWorld(t, eio)
		w.start()
		w.sms("one")
		w.smsTo("echo: one")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := w.sim.Drop(ctx, "close"); err != nil {
			t.Fatal(err)
		}
		w.sms("two")
		w.sms("three")
		w.smsTo("echo: three")
		time.Sleep(500 * time.Millisecond) // a late duplicate would show up now
		for _, line := range []string{"echo: one", "echo: two", "echo: three"} {
			if n := countBody(w.twilio.Sent(), line); n != 1 {
				t.Errorf("%q sent %d times, want once", line, n)
			}
		}
		st, err := w.sim.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var said []string
		for _, c := range st.Conversations {
			for _, m := range c.Messages {
				if m.From.ID == c.CustomerParticipantID {
					said = append(said, m.Text)
				}
			}
		}
		if fmt.Sprint(said) != "[one two three]" {
			t.Errorf("the agent side got %q, want each line once in order", said)
		}
	})
}

// The daemon drains and exits 0 on SIGTERM with a live Socket.IO
// connection of either generation (no library may take the signal from it).
func TestCustomerChannelSigtermDrains(t *testing.T) {
	bothGenerations(t, func(t *testing.T, eio int) {
		w := newCCWorld(t, eio)
		w.start()
		w.sms("hello")
		w.smsTo("echo: hello")
		code, took := w.signal(syscall.SIGTERM, 10*time.Second)
		if code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
		if !strings.Contains(w.proc.log.String(), "draining") {
			t.Errorf("no drain in the log")
		}
		t.Logf("SIGTERM to exit: %s", took)
	})
}

// With deliver_via on Slack, the server's message for a Slack user id goes
// to the app's DM with them, once; their answer there reaches an agent.
func TestCustomerChannelCampaignToSlackDM(t *testing.T) {
	w := newCCWorldVia(t, 4, "slack.support")
	w.slack.AddChannel(slacktest.Channel{ID: "D0ANN00001", IM: true, User: slackAnn})
	w.start()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.sim.WaitFor(ctx, func(st customerchanneltest.State) bool { return len(st.Connectors) > 0 }); err != nil {
		t.Fatal("connectord never registered as a connector")
	}
	for range 2 {
		if _, err := w.sim.Campaign(ctx, slackAnn, "Your order has shipped", "camp-7", "slack"); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.slack.WaitFor(ctx, func() bool { return len(w.slack.History("D0ANN00001")) == 1 }); err != nil {
		t.Fatalf("DM history = %+v", w.slack.History("D0ANN00001"))
	}
	w.slack.Post(slacktest.Post{Channel: "D0ANN00001", User: slackAnn, Text: "where is it now?"})
	if err := w.slack.WaitFor(ctx, func() bool {
		for _, m := range w.slack.History("D0ANN00001") {
			if m.Text == "echo: where is it now?" {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatalf("no answer in the DM: %q", texts(w.slack.History("D0ANN00001")))
	}
	time.Sleep(300 * time.Millisecond)
	n := 0
	for _, m := range w.slack.History("D0ANN00001") {
		if m.Text == "Your order has shipped" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("campaign posted %d times in the DM, want once", n)
	}
}

// transcript = "pdf": after the chat ends, the server's PDF transcript (404
// while the chat is live) is uploaded to the customer's Slack thread.
func TestCustomerChannelTranscriptToSlackThread(t *testing.T) {
	w := newCCWorld(t, 4)
	w.setTranscript("pdf")
	w.start()
	root := w.say("", "hello")
	w.waitThread(root.TS, "echo: hello")
	w.say(root.TS, "end chat")
	replies := w.waitThread(root.TS, "You ended the chat", "Transcript of your chat")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := w.slack.WaitFor(ctx, func() bool {
		for _, m := range w.slack.Replies(slackSupport, root.TS) {
			for _, f := range m.Files {
				if f.Name == "transcript.pdf" && strings.HasPrefix(string(f.Content), "%PDF-") {
					return true
				}
			}
		}
		return false
	})
	if err != nil {
		t.Errorf("no transcript.pdf in the thread: %q", texts(replies))
	}
}

// setTranscript turns transcripts on in the daemon's configuration.
func (w *ccWorld) setTranscript(kind string) {
	w.t.Helper()
	cfg, err := os.ReadFile(w.cfgPath)
	if err != nil {
		w.t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), `reconnect_max = "500ms"`,
		"reconnect_max = \"500ms\"\ntranscript = \""+kind+"\"\ntranscript_wait = \"10s\"", 1))
	if err := os.WriteFile(w.cfgPath, cfg, 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// transcript = "email": the server is asked to email it when the customer's
// email is known (here the Slack user's, from users.info).
func TestCustomerChannelTranscriptByEmail(t *testing.T) {
	w := newCCWorld(t, 3)
	w.setTranscript("email")
	w.start()
	root := w.say("", "hello from slack")
	w.waitThread(root.TS, "echo: hello from slack")
	w.say(root.TS, "end chat")
	w.waitThread(root.TS, "You ended the chat")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var slackConv string
	err := w.sim.WaitFor(ctx, func(st customerchanneltest.State) bool {
		for _, c := range st.Conversations {
			if c.Channel == "slack" {
				slackConv = c.ID
			}
		}
		for _, tr := range st.Transcripts {
			if tr.ConversationID == slackConv && tr.Type == "email" && tr.Status == 200 {
				return true
			}
		}
		return false
	})
	if err != nil {
		st, _ := w.sim.State(ctx)
		t.Fatalf("no emailed transcript for the Slack conversation: %+v", st.Transcripts)
	}
}
