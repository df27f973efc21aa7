package connector_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/sqlite"
)

// adminWorld is a started Daemon with one fake channel and one fake vendor,
// and its admin listener's address.
type adminWorld struct {
	t       *testing.T
	d       *connector.Daemon
	store   connector.Store
	sink    connector.ChannelSink
	channel *fakeChannel
	vendor  *fakeVendor
	toUser  *recorder
	toAgent *recorder
	base    string
	token   string
}

const adminToken = "admin-token-for-tests-0123"

// newAdminWorld starts the daemon; token is http.admin_token ("" for none).
func newAdminWorld(t *testing.T, token string) *adminWorld {
	t.Helper()
	ctx := context.Background()
	w := &adminWorld{t: t, toUser: newRecorder(), toAgent: newRecorder(), token: token}
	w.channel = &fakeChannel{name: "sms.main", rec: w.toUser}
	w.vendor = &fakeVendor{name: "whoson.sales", rec: w.toAgent}
	reg := connector.Registry{
		Channels: []connector.ChannelKind{connector.NewChannelKind("sms", func(env connector.ChannelEnv) (*fakeChannel, error) {
			w.sink = env.Sink
			return w.channel, nil
		}, nil)},
		Vendors: []connector.VendorKind{{Kind: "whoson", Build: func(env connector.VendorEnv) (connector.Vendor, error) {
			w.vendor.sink = env.Sink
			return w.vendor, nil
		}}},
		Build: connector.BuildInfo{Version: "1.2.3-test", Revision: "abc123", GoVersion: "go-test"},
	}
	cfg, err := connector.ParseConfig([]byte(`
[http]
listen = "127.0.0.1:1" # not bound: UseListener gives it a free port
admin_listen = "127.0.0.1:0"
public_url = "http://127.0.0.1"
admin_token = "`+token+`"
[conversation]
retry_initial = "5ms"
retry_max = "50ms"
customer_rate = "0s"
[channels.sms.main]
[vendors.whoson.sales]
[[routes]]
channel = "sms.main"
vendor = "whoson.sales"
`), connector.Expander{})
	if err != nil {
		t.Fatal(err)
	}
	w.store, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	w.d, err = connector.New(cfg, reg, w.store, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.d.UseListener(ln)
	if err := w.d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		w.d.Shutdown(sctx)
		w.store.Close()
	})
	w.base = "http://" + w.d.AdminAddr().String()
	return w
}

// call makes an authorised request to the admin listener and returns the
// status and the body.
func (w *adminWorld) call(method, path string) (int, []byte) {
	w.t.Helper()
	req, err := http.NewRequest(method, w.base+path, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	if w.token != "" {
		req.Header.Set("Authorization", "Bearer "+w.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	return resp.StatusCode, body
}

func (w *adminWorld) receive(customer, sid, text string) {
	w.t.Helper()
	if err := w.sink.Receive(context.Background(), connector.Inbound{Channel: "sms.main", Customer: customer,
		SourceID: sid, Text: text}); err != nil {
		w.t.Fatal(err)
	}
}

// conversationOf returns the newest conversation of customer.
func (w *adminWorld) conversationOf(customer string) *connector.Conversation {
	w.t.Helper()
	cs, err := w.store.ListConversations(context.Background(), connector.ConversationQuery{Limit: 100})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, c := range cs {
		if c.Customer == customer {
			return c
		}
	}
	w.t.Fatalf("no conversation of %s", customer)
	return nil
}

func (w *adminWorld) waitEnded(customer string) *connector.Conversation {
	w.t.Helper()
	var c *connector.Conversation
	waitFor(w.t, customer+"'s conversation to end", func() bool { c = w.conversationOf(customer); return !c.Open() })
	return c
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func listIDs(t *testing.T, body []byte) []int64 {
	t.Helper()
	out := []int64{}
	for _, c := range decode[connector.ConversationList](t, body).Conversations {
		out = append(out, c.ID)
	}
	return out
}

// In TestAdminAPI alice's line is relayed and an operator ends her chat;
// the vendor refuses bob's line (his chat ends, the line fails); the
// channel refuses an agent's line to carol once.
const (
	bob   = "+15550000002"
	carol = "+15550000003"
)

// TestAdminAPI drives every route of the operator API against a running
// daemon, in the order an operator would meet them.
func TestAdminAPI(t *testing.T) {
	w := newAdminWorld(t, adminToken)
	w.vendor.send = func(m *connector.Message) error {
		if m.Text == "refused line" {
			return connector.Permanent(errors.New("the vendor refuses it"))
		}
		return nil
	}
	var refuseOnce atomic.Bool
	refuseOnce.Store(true)
	w.channel.fail = func(m *connector.Message) error {
		if m.Text == "agent line" && refuseOnce.Load() {
			return connector.Permanent(errors.New("the carrier refuses it"))
		}
		return nil
	}
	w.receive(alice, "SM1", "hello")
	w.receive(bob, "SM2", "refused line")
	w.receive(carol, "SM3", "hi")
	w.toAgent.wait(t, 2, 10*time.Second) // hello, hi
	b := w.waitEnded(bob)
	c := w.conversationOf(carol)
	if err := w.vendor.sink.Event(context.Background(), connector.Event{ConversationID: c.ID, Type: connector.EventText,
		Text: "agent line"}); err != nil {
		t.Fatal(err)
	}
	c = w.waitEnded(carol)
	refuseOnce.Store(false) // the carrier takes it when the operator retries
	a := w.conversationOf(alice)
	var failedLine, failedAgentLine, hello int64
	for _, m := range w.messages(b.ID) {
		if m.Text == "refused line" {
			failedLine = m.ID
		}
	}
	for _, m := range w.messages(c.ID) {
		if m.Text == "agent line" {
			failedAgentLine = m.ID
		}
	}
	for _, m := range w.messages(a.ID) {
		if m.Text == "hello" {
			hello = m.ID
		}
	}
	id := func(n int64) string { return strconv.FormatInt(n, 10) }

	for _, tc := range []struct {
		name, method, path string
		want               int
		check              func(t *testing.T, body []byte)
	}{
		{"status", "GET", "/api/v1/status", 200, func(t *testing.T, body []byte) {
			st := decode[connector.StatusReport](t, body)
			if st.Build.Version != "1.2.3-test" || st.Conversations[connector.StateEnded] != 2 || st.Conversations[connector.StateQueued] != 1 {
				t.Errorf("status: build %+v, conversations %v", st.Build, st.Conversations)
			}
			if st.Stuck.Count != 2 || !st.Store.Ready || len(st.Adapters) == 0 {
				t.Errorf("status: stuck %+v, store %+v, adapters %v", st.Stuck, st.Store, st.Adapters)
			}
		}},
		{"every conversation", "GET", "/api/v1/conversations", 200, func(t *testing.T, body []byte) {
			diff(t, "ids", []int64{c.ID, b.ID, a.ID}, listIDs(t, body))
		}},
		{"open ones", "GET", "/api/v1/conversations?state=open", 200, func(t *testing.T, body []byte) {
			diff(t, "ids", []int64{a.ID}, listIDs(t, body))
		}},
		{"ended ones on the channel", "GET", "/api/v1/conversations?state=ended&channel=sms.main&vendor=whoson.sales", 200,
			func(t *testing.T, body []byte) { diff(t, "ids", []int64{c.ID, b.ID}, listIDs(t, body)) }},
		{"stuck ones", "GET", "/api/v1/conversations?stuck=true", 200, func(t *testing.T, body []byte) {
			diff(t, "ids", []int64{c.ID, b.ID}, listIDs(t, body))
		}},
		{"a page", "GET", "/api/v1/conversations?limit=2", 200, func(t *testing.T, body []byte) {
			if l := decode[connector.ConversationList](t, body); len(l.Conversations) != 2 || l.NextBefore != b.ID {
				t.Errorf("page of 2: %+v", l)
			}
		}},
		{"the next page", "GET", "/api/v1/conversations?limit=2&before=" + id(b.ID), 200, func(t *testing.T, body []byte) {
			if l := decode[connector.ConversationList](t, body); len(l.Conversations) != 1 || l.NextBefore != 0 {
				t.Errorf("last page: %+v", l)
			}
		}},
		{"a bad state", "GET", "/api/v1/conversations?state=gone", 400, errorNames("state")},
		{"a limit too high", "GET", "/api/v1/conversations?limit=5000", 400, errorNames("limit")},
		{"an unknown parameter", "GET", "/api/v1/conversations?sate=open", 400, errorNames("sate")},
		{"one conversation", "GET", "/api/v1/conversations/" + id(c.ID), 200, func(t *testing.T, body []byte) {
			d := decode[connector.ConversationDetail](t, body)
			var states []string
			for _, m := range d.Messages {
				states = append(states, string(m.Direction)+" "+m.Text+": "+string(m.State))
			}
			if d.Conversation.ID != c.ID || !strings.Contains(strings.Join(states, "\n"), "to_customer agent line: failed") {
				t.Errorf("conversation %d: %+v\n%s", c.ID, d.Conversation, strings.Join(states, "\n"))
			}
			if strings.Contains(string(body), "session") {
				t.Errorf("the vendor session is shown: %s", body)
			}
		}},
		{"an unknown conversation", "GET", "/api/v1/conversations/99999", 404, errorNames("conversation 99999")},
		{"a bad id", "GET", "/api/v1/conversations/abc", 400, errorNames("id")},
		{"end with GET", "GET", "/api/v1/conversations/" + id(a.ID) + "/end", 405, nil},
		{"end", "POST", "/api/v1/conversations/" + id(a.ID) + "/end", 200, func(t *testing.T, body []byte) {
			d := decode[connector.ConversationDetail](t, body)
			if d.Conversation.State != connector.StateEnded || d.Conversation.EndReason != "operator" {
				t.Errorf("ended conversation: %+v", d.Conversation)
			}
			waitFor(t, "the end notice and the vendor's end", func() bool {
				return hasPrefix(texts(w.toUser.all()), "notice:This chat was closed by our support team") == 1 &&
					hasPrefix(texts(w.toAgent.all()), "end:operator") == 1
			})
		}},
		{"end again", "POST", "/api/v1/conversations/" + id(a.ID) + "/end", 409, errorNames("conversation " + id(a.ID) + " has already ended")},
		{"end an unknown one", "POST", "/api/v1/conversations/99999/end", 404, nil},
		{"retry a sent message", "POST", "/api/v1/messages/" + id(hello) + "/retry", 409, errorNames("message " + id(hello) + " is sent")},
		{"retry a line for an ended chat's agent", "POST", "/api/v1/messages/" + id(failedLine) + "/retry", 409, errorNames("message")},
		{"retry an unknown message", "POST", "/api/v1/messages/99999/retry", 404, nil},
		{"retry", "POST", "/api/v1/messages/" + id(failedAgentLine) + "/retry", 200, func(t *testing.T, body []byte) {
			if m := decode[connector.MessageDetail](t, body).Message; m.State != connector.DeliveryStored {
				t.Errorf("retried message: %+v", m)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := w.call(tc.method, tc.path)
			if code != tc.want {
				t.Fatalf("%s %s: status %d, want %d: %s", tc.method, tc.path, code, tc.want, body)
			}
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}
	waitFor(t, "the retried line to reach the customer", func() bool {
		m, err := w.store.Message(context.Background(), failedAgentLine)
		return err == nil && m.State == connector.DeliverySent && hasPrefix(texts(w.toUser.all()), "text:agent line") == 1
	})
}

func (w *adminWorld) messages(conv int64) []*connector.Message {
	w.t.Helper()
	ms, err := w.store.Messages(context.Background(), conv)
	if err != nil {
		w.t.Fatal(err)
	}
	return ms
}

// errorNames checks that an error body says what went wrong, starting with
// the parameter or the object it names.
func errorNames(start string) func(t *testing.T, body []byte) {
	return func(t *testing.T, body []byte) {
		t.Helper()
		e := decode[map[string]string](t, body)
		if !strings.HasPrefix(e["error"], start) {
			t.Errorf("error %q does not start with %q", e["error"], start)
		}
	}
}

// TestAdminTokenOnDaemon: the running admin listener asks for the token on
// the API and /metrics (which then exports the build), not on /livez.
func TestAdminTokenOnDaemon(t *testing.T) {
	w := newAdminWorld(t, adminToken)
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/livez", "", 200},
		{"/api/v1/status", "", 401},
		{"/metrics", "", 401},
		{"/api/v1/status", adminToken, 200},
		{"/metrics", adminToken, 200},
	} {
		w.token = tc.token
		code, body := w.call("GET", tc.path)
		if code != tc.want {
			t.Errorf("GET %s with token %q: %d, want %d", tc.path, tc.token, code, tc.want)
		}
		if tc.path == "/metrics" && code == 200 &&
			!strings.Contains(string(body), `connectord_build_info{goversion="go-test",revision="abc123",version="1.2.3-test"} 1`) {
			t.Errorf("/metrics has no connectord_build_info for the build:\n%s", body)
		}
	}
}

// A conversation's detail carries its newest 1,000 messages, oldest first,
// and counts the older ones it leaves out: one very long conversation does
// not make an answer of any size.
func TestAdminConversationDetailBounded(t *testing.T) {
	w := newAdminWorld(t, "")
	for i := range 1005 {
		w.receive(alice, "SM"+strconv.Itoa(i), "line "+strconv.Itoa(i))
	}
	c := w.conversationOf(alice)
	all := w.messages(c.ID)
	code, body := w.call("GET", "/api/v1/conversations/"+strconv.FormatInt(c.ID, 10))
	if code != http.StatusOK {
		t.Fatalf("GET the conversation: %d %s", code, body)
	}
	d := decode[connector.ConversationDetail](t, body)
	if len(d.Messages) != 1000 || d.MessagesOmitted != len(all)-1000 {
		t.Fatalf("%d messages and %d omitted of %d", len(d.Messages), d.MessagesOmitted, len(all))
	}
	if first, last := d.Messages[0].ID, d.Messages[999].ID; first != all[len(all)-1000].ID || last != all[len(all)-1].ID {
		t.Errorf("messages %d..%d, want the newest: %d..%d", first, last, all[len(all)-1000].ID, all[len(all)-1].ID)
	}
}
