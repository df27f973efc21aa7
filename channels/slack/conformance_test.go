package slack

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/connectord/connectord/channels/slack/slacktest"
	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/connectortest"
)

// Conformance timings. A refused Socket Mode envelope is taken for unacked
// after refusalGrace with no ack; the fake's ack timeout and retry delay are
// well beyond it, so the redelivery comes after the suite has had time to
// make the sink take messages again, as Slack's would.
const (
	refusalGrace    = 200 * time.Millisecond
	confAckTimeout  = time.Second
	confRetryDelay  = 300 * time.Millisecond
	outcomeDeadline = 10 * time.Second
)

// TestConformance runs the core's channel suite against the fake Slack, in
// both intake modes. The customer is a thread in a watched channel.
func TestConformance(t *testing.T) {
	t.Run("SocketMode", func(t *testing.T) { newConformance(t, true).run(t) })
	t.Run("EventsAPI", func(t *testing.T) { newConformance(t, false).run(t) })
}

// conformance is one intake mode's fixture: a fake Slack, the web server
// the core would run, and the channel instance the running clause uses.
type conformance struct {
	socket bool
	fake   *slacktest.Server
	web    *httptest.Server
	root   string // the customer's thread
	seq    atomic.Int64
	cur    atomic.Pointer[confInstance]
}

// confInstance is the channel one clause started.
type confInstance struct {
	name   string // the instance's name, new per clause (see start)
	routes *http.ServeMux
	events string // its events route
	sink   *watchedSink
}

func newConformance(t *testing.T, socket bool) *conformance {
	fake := slacktest.NewServer()
	t.Cleanup(fake.Close)
	fake.SetAckTimeout(confAckTimeout)
	fake.SetRetryDelay(confRetryDelay)
	fake.AddUser(slacktest.User{ID: ann, Name: "ann", RealName: "Ann Lee", DisplayName: "Ann", Email: "ann@example.com"})
	fake.AddChannel(slacktest.Channel{ID: chSupport, Name: "support"})
	// The thread's first message was taken before the suite runs.
	root := fake.Post(slacktest.Post{Channel: chSupport, User: ann, Text: "my printer is on fire", Silent: true})
	c := &conformance{socket: socket, fake: fake, root: root.TS}
	// One events URL for every clause: an echo of an earlier clause's post,
	// retried late, reaches the running channel, which ignores it.
	c.web = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inst := c.cur.Load()
		if inst == nil {
			http.NotFound(w, r)
			return
		}
		if r.URL.Path == "/events" {
			r.URL.Path = inst.events
		}
		inst.routes.ServeHTTP(w, r)
	}))
	t.Cleanup(c.web.Close)
	if !socket {
		fake.SetEventsURL(c.web.URL + "/events")
	}
	return c
}

func (c *conformance) run(t *testing.T) {
	connectortest.TestChannel(t, connectortest.ChannelFixture{
		Start:    c.start,
		Customer: chSupport + "/" + c.root,
		Write:    c.write,
		Received: c.received,
		Ignore: []goleak.Option{
			// Keep-alive connections between the fake, the web server and the channel.
			goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
			goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
			// Slack's side: the fake's redelivery of an envelope the
			// stopped channel left unacked (the echo of its last post, say)
			// and the events it is delivering. Slack keeps those; a
			// goroutine of the channel's own is still counted.
			goleak.IgnoreAnyFunction("github.com/connectord/connectord/channels/slack/slacktest.(*Server).goLocked.func1"),
			goleak.IgnoreAnyFunction("github.com/connectord/connectord/channels/slack/slacktest.(*Server).enqueueLocked.func1"),
		},
	})
}

// start builds a channel under a new instance name. The suite numbers its
// messages from 1 in every clause, while the thread keeps what earlier
// clauses posted; in the daemon message ids are unique, and a post is
// recognised by its metadata (instance name and message id), so a new name
// keeps a clause from finding an earlier clause's post of "its" message.
func (c *conformance) start(t *testing.T, sink connector.ChannelSink, progress connector.SendProgress) connector.Channel {
	t.Helper()
	name := fmt.Sprintf("conf%d", c.seq.Add(1))
	cfg := map[string]any{
		"bot_token": c.fake.BotToken, "signing_secret": c.fake.SigningSecret, "channels": []string{chSupport},
		"api_url": c.fake.APIURL(), "post_interval": "0s", "request_timeout": "2s",
	}
	if c.socket {
		cfg["app_token"] = c.fake.AppToken
	}
	inst := connector.NewInstance("channels.slack."+name, "slack", name, func(v any) error {
		b, err := toml.Marshal(cfg)
		if err != nil {
			return err
		}
		_, err = toml.Decode(string(b), v)
		return err
	})
	watched := &watchedSink{ChannelSink: sink}
	ch, err := New(connector.ChannelEnv{Instance: inst, Logger: zaptest.NewLogger(t), Sink: watched,
		PublicURL: c.web.URL, Progress: progress})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	routes := http.NewServeMux()
	for pattern, h := range ch.Routes() {
		routes.Handle(pattern, h)
	}
	c.cur.Store(&confInstance{name: ch.Name(), routes: routes, events: "/slack/" + name + "/events", sink: watched})
	if err := ch.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	// The suite stops the channel after a clause, but not after a clause
	// that failed with Fatal; a second Stop does nothing.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ch.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	if !eventually(func() bool { return ch.Health().Ready }) {
		t.Fatalf("the channel is not ready: %s", ch.Health().Detail)
	}
	return ch
}

// write has the customer reply in the thread. acked is the outcome of the
// event's first delivery; again is Slack's next retry of the same event: the
// fake's own redelivery after a missing ack or a non-2xx answer, or, when
// the channel did acknowledge, a redelivery asked for (as when Slack missed
// the ack or the answer).
func (c *conformance) write(t *testing.T, text string) (bool, func() bool) {
	t.Helper()
	sink := c.cur.Load().sink
	m := c.fake.Post(slacktest.Post{Channel: chSupport, User: ann, ThreadTS: c.root, Text: text})
	source := sourceID(chSupport, m.TS)
	attempt := 0
	acked := c.outcome(t, m.EventID, attempt, sink, source, outcomeMark{})
	again := func() bool {
		t.Helper()
		mark := outcomeMark{acks: c.acks(m.EventID), refusals: sink.refusals(source)}
		if acked {
			if err := c.fake.Redeliver(m.EventID); err != nil {
				t.Fatal(err)
			}
		}
		attempt++
		acked = c.outcome(t, m.EventID, attempt, sink, source, mark)
		return acked
	}
	return acked, again
}

// outcomeMark is where the counts stood before a delivery.
type outcomeMark struct{ acks, refusals int }

// outcome waits for the outcome of attempt n (0 the first delivery) of event
// id and reports whether the channel acknowledged it. Over the Events API
// that is the attempt's 2xx answer. In Socket Mode a refusal is silence: the
// delivery is acked when the event has an ack more than at mark, and not
// when the sink refused it and no ack followed within refusalGrace (a
// permanent refusal is refused, then acked).
func (c *conformance) outcome(t *testing.T, id string, n int, sink *watchedSink, source string, mark outcomeMark) bool {
	t.Helper()
	if !c.socket {
		var got slacktest.Delivery
		if !eventually(func() bool {
			for _, d := range c.fake.Deliveries() {
				if d.EventID == id && d.Attempt == n {
					got = d
					return true
				}
			}
			return false
		}) {
			t.Fatalf("delivery %d of event %s never made", n, id)
		}
		return got.Status >= 200 && got.Status < 300
	}
	var refusedAt time.Time
	for deadline := time.Now().Add(outcomeDeadline); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if c.acks(id) > mark.acks {
			return true
		}
		if sink.refusals(source) > mark.refusals {
			if refusedAt.IsZero() {
				refusedAt = time.Now()
			} else if time.Since(refusedAt) > refusalGrace {
				return false
			}
		}
	}
	t.Fatalf("delivery %d of event %s neither acked nor refused", n, id)
	return false
}

// acks counts the acks the fake recorded for event id.
func (c *conformance) acks(id string) int {
	k := 0
	for _, a := range c.fake.Acks() {
		if a.EventID == id {
			k++
		}
	}
	return k
}

// received is what the running instance posted in the thread, in order.
func (c *conformance) received(*testing.T) []string {
	name := c.cur.Load().name
	var out []string
	for _, m := range c.fake.Replies(chSupport, c.root) {
		if m.Metadata != nil && m.Metadata.EventType == metadataType && m.Metadata.EventPayload["channel"] == name {
			out = append(out, m.Text)
		}
	}
	return out
}

// watchedSink is the suite's sink, counting the messages it refused.
type watchedSink struct {
	connector.ChannelSink
	mu      sync.Mutex
	refused map[string]int // by source id
}

func (s *watchedSink) Receive(ctx context.Context, in connector.Inbound) error {
	err := s.ChannelSink.Receive(ctx, in)
	if err != nil {
		s.mu.Lock()
		if s.refused == nil {
			s.refused = map[string]int{}
		}
		s.refused[in.SourceID]++
		s.mu.Unlock()
	}
	return err
}

func (s *watchedSink) refusals(source string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused[source]
}

// eventually polls cond for up to outcomeDeadline.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(outcomeDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
