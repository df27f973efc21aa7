package main

// End-to-end tests of the CoBrowser vendor: the real binary against the fake
// CoBrowser REST API and a real ejabberd (cobrowsertest), with the fake
// Twilio and the fake Slack, over XMPP on a WebSocket and on TCP.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/vendors/cobrowser/cobrowsertest"
)

const cbConfig = e2eHeader + e2eRetry + e2eSMS + e2eSlack + `
[vendors.cobrowser.web]
api_url = %q
api_token = "${E2E_COBROWSER_TOKEN}"
campaign_id = %q
%s
reconnect_initial = "100ms"
reconnect_max = "500ms"

[[routes]]
channel = "sms.main"
vendor = "cobrowser.web"

[[routes]]
channel = "slack.support"
vendor = "cobrowser.web"
`

type cbWorld struct {
	*slackWorld
	ej    *cobrowsertest.Ejabberd
	api   *cobrowsertest.Server
	agent *cobrowsertest.Agent
}

// newCBWorld builds the world with XMPP over transport: "ws" or "tcp".
func newCBWorld(t *testing.T, transport string) *cbWorld {
	t.Helper()
	cobrowsertest.NeedEjabberd(t)
	sw := newSlackWorld(t, echoOperator(), true)
	ej := cobrowsertest.StartEjabberd(t)
	api := cobrowsertest.NewServer(t, cobrowsertest.Config{Ejabberd: ej})
	xmpp := fmt.Sprintf("xmpp_websocket_url = %q", ej.WSURL)
	if transport == "tcp" {
		xmpp = fmt.Sprintf("xmpp_address = %q\nca_file = %q\ntls_server_name = %q", ej.TCPAddr, ej.CAFile, ej.Domain)
	}
	text := fmt.Sprintf(cbConfig, filepath.Join(sw.dir, "state"), sw.addr, "http://"+sw.addr,
		sw.twilio.AccountSID(), companyNumber, sw.twilio.URL(),
		sw.slack.AppToken, slackSupport, sw.slack.APIURL(), api.URL(), api.CampaignID(), xmpp)
	if err := os.WriteFile(sw.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	sw.env = append(sw.env, "E2E_COBROWSER_TOKEN="+api.Token())
	w := &cbWorld{slackWorld: sw, ej: ej, api: api, agent: api.Agent(t)}
	w.echo(w.agent)
	return w
}

// echo makes agent answer every customer line with "echo: " and the line,
// until its stream ends; context lines of a reopened chat are not answered.
func (w *cbWorld) echo(agent *cobrowsertest.Agent) {
	ctx, cancel := context.WithCancel(context.Background())
	w.t.Cleanup(cancel)
	go func() {
		for n := 1; ; n++ {
			ms, err := agent.WaitMessage(ctx, n)
			if err != nil || agent.Ended() != nil {
				return
			}
			m := ms[n-1]
			if strings.HasPrefix(m.Body, "[connectord]") {
				continue
			}
			if err := agent.Say(m.From, "echo: "+m.Body); err != nil && ctx.Err() == nil {
				w.t.Logf("agent could not answer %q: %v", m.Body, err)
			}
		}
	}()
}

// visitor returns the full JID the agent last heard the customer line from.
func (w *cbWorld) visitor(line string) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := w.agent.WaitStanza(ctx, func(s cobrowsertest.Stanza) bool { return s.Kind == "message" && s.Body == line })
	if err != nil {
		w.t.Fatalf("the agent never got %q: %v", line, err)
	}
	return m.From
}

func bothTransports(t *testing.T, f func(t *testing.T, transport string)) {
	for _, tr := range []string{"ws", "tcp"} {
		t.Run(tr, func(t *testing.T) { f(t, tr) })
	}
}

func TestCoBrowserSMSAndSlack(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		w := newCBWorld(t, transport)
		w.start()
		w.sms("hello from my phone")
		w.smsTo("echo: hello from my phone")
		root := w.say("", "hello from slack")
		w.waitThread(root.TS, "echo: hello from slack")
		if n := len(w.api.Sessions()); n != 2 {
			t.Errorf("%d chat sessions, want one per customer", n)
		}
	})
}

// No availability: the customer is told; a later message, once an agent is
// available, starts the chat.
func TestCoBrowserNoAvailabilityThenAvailability(t *testing.T) {
	w := newCBWorld(t, "ws")
	w.api.SetAvailable(0)
	w.start()
	w.sms("anyone there?")
	w.smsTo("no agent is available")
	w.api.SetAvailable("∞")
	w.sms("now?")
	w.smsTo("echo: now?")
}

// The agent's closed ends the chat; the customer's next message starts a
// new chat session. A transfer's internal text never reaches the customer,
// and a 5,000-character agent line arrives whole.
func TestCoBrowserCloseTransferAndLongLine(t *testing.T) {
	w := newCBWorld(t, "ws")
	w.start()
	w.sms("hello")
	w.smsTo("echo: hello")
	visitor := w.visitor("hello")
	if err := w.agent.Forward(visitor, "internal: VIP customer, be nice"); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("0123456789", 500)
	if err := w.agent.Say(visitor, long); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(w.customerText(), long) {
		if time.Now().After(deadline) {
			t.Fatalf("the 5,000-character line did not arrive whole; the customer got %d characters", len(w.customerText()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := w.agent.Close(visitor); err != nil {
		t.Fatal(err)
	}
	w.smsTo("The agent has ended the chat")
	w.sms("one more thing")
	w.smsTo("echo: one more thing")
	if n := len(w.api.Sessions()); n != 2 {
		t.Errorf("%d chat sessions, want a new one after the agent closed the first", n)
	}
	if strings.Contains(w.customerText(), "VIP customer") {
		t.Errorf("the transfer's internal text reached the customer")
	}
}

// customerText is every SMS body sent to the customer, joined.
func (w *cbWorld) customerText() string {
	var b strings.Builder
	for _, s := range w.twilio.Sent() {
		if s.To == customerNumber {
			b.WriteString(s.Body)
		}
	}
	return b.String()
}

// SIGKILL after acknowledged webhooks, then a restart: every line reaches the
// agent, and the chat goes on.
func TestCoBrowserKillLosesNothing(t *testing.T) {
	w := newCBWorld(t, "ws")
	w.start()
	want := []string{"one", "two", "three", "four", "five"}
	for _, text := range want {
		w.sms(text)
	}
	w.proc.cmd.Process.Kill()
	<-w.proc.done
	w.start()
	w.smsTo("echo: five")
	w.sms("six")
	w.smsTo("echo: six")
	for _, line := range append(want, "six") {
		if n := countBody(w.twilio.Sent(), "echo: "+line); n < 1 {
			t.Errorf("%q never reached the agent", line)
		}
	}
	for _, m := range w.twilio.Sent() {
		if strings.Contains(m.Body, "ended") || strings.Contains(m.Body, "could not keep") {
			t.Errorf("customer told %q", m.Body)
		}
	}
}

// ejabberd restarted mid-conversation: the conversation goes on.
func TestCoBrowserEjabberdRestart(t *testing.T) {
	w := newCBWorld(t, "tcp")
	w.start()
	w.sms("before")
	w.smsTo("echo: before")
	w.ej.Restart(w.t)
	w.agent = w.api.Agent(w.t) // the agent's page logs in again
	w.echo(w.agent)
	w.sms("after")
	w.smsTo("echo: after")
	for _, m := range w.twilio.Sent() {
		if strings.Contains(m.Body, "ended") || strings.Contains(m.Body, "could not keep") {
			t.Errorf("customer told %q", m.Body)
		}
	}
}
