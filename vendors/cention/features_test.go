package cention

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/cention/centiontest"
)

// A customer's file is fetched, uploaded with the chat's session and
// secret, announced by add attachment and sent as a file notice with its
// own umid; a retry after the upload does not upload again. A file too big,
// or at an address the guard refuses, goes as its link.
func TestCustomerFiles(t *testing.T) {
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write([]byte(strings.Repeat("p", 2048)))
	}))
	defer files.Close()
	h := newHarness(t, centiontest.Config{}, func(k map[string]string) { k["max_attachment_size"] = "4096" })
	h.v.fetchClient = files.Client() // the guard refuses 127.0.0.1, where this file server is
	c := h.openJoined()
	m := &connector.Message{ID: 30, ConversationID: c.ID, Kind: connector.KindText, Text: "here",
		Attachments: []connector.Attachment{{URL: files.URL + "/photo.png", Name: "photo.png"}, {URL: files.URL + "/big.bin", Size: 9999}}}
	if err := h.v.Send(ctxFor(t), h.current(c), m); err != nil {
		t.Fatal(err)
	}
	if err := h.v.Send(ctxFor(t), h.current(c), m); err != nil { // the core's retry: nothing again
		t.Fatal(err)
	}
	ch := h.chat(c)
	ups := h.srv.Uploads()
	if len(ups) != 1 || ups[0].Name != "photo.png" || ups[0].ContentType != "image/png" || len(ups[0].Data) != 2048 ||
		ups[0].Token != ch.Token || ups[0].Area != 2 {
		t.Fatalf("uploads %+v", ups)
	}
	if len(ch.Attachments) != 1 || ch.Attachments[0].SessionSecret != ch.SessionSecret {
		t.Errorf("add attachment frames %+v", ch.Attachments)
	}
	if len(ch.Lines) != 3 || len(ch.Repeats) != 0 {
		t.Fatalf("lines %+v repeats %+v", ch.Lines, ch.Repeats)
	}
	if ch.Lines[0].Text != "here" || ch.Lines[0].Umid != "connectord-30-1" {
		t.Errorf("text line %+v", ch.Lines[0])
	}
	notice, ok := centiontest.ParseFileNotice(ch.Lines[1].Text)
	if !ok || notice.FileName != "photo.png" || !strings.HasSuffix(notice.FileDownload, "?t="+ch.SessionSecret) ||
		ch.Lines[1].Umid != "connectord-30-2" {
		t.Errorf("file line %+v: %+v %v", ch.Lines[1], notice, ok)
	}
	if ch.Lines[2].Text != files.URL+"/big.bin" {
		t.Errorf("too big a file sent as %q", ch.Lines[2].Text)
	}
	// The link the agent gets works with the chat's secret.
	resp, err := http.Get(h.srv.URL() + notice.FileDownload)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("download of the uploaded file: HTTP %d", resp.StatusCode)
	}

	h.v.fetchClient = h.start().fetchClient // the guard again
	m2 := &connector.Message{ID: 31, ConversationID: c.ID, Kind: connector.KindText,
		Attachments: []connector.Attachment{{URL: files.URL + "/inside.png"}}}
	if err := h.v.Send(ctxFor(t), h.current(c), m2); err != nil {
		t.Fatal(err)
	}
	if got := lineTexts(h.chat(c).Lines); got[len(got)-1] != files.URL+"/inside.png" {
		t.Errorf("a file at a refused address sent as %q", got[len(got)-1])
	}
	if n := len(h.srv.Uploads()); n != 1 {
		t.Errorf("%d uploads", n)
	}
}

// The configured origin is what the server checks: another one is
// refused (403) on the socket and on canchat, and the error says origin.
func TestOriginRefused(t *testing.T) {
	h := newHarness(t, centiontest.Config{Origin: "https://registered.example"}, nil)
	c := h.conv()
	_, err := h.v.Open(ctxFor(t), c)
	if err == nil || !strings.Contains(err.Error(), "origin") {
		t.Fatalf("Open with an unregistered origin: %v", err)
	}
	if rs := h.srv.Refusals(); len(rs) == 0 || rs[0].Origin != centiontest.DefaultOrigin {
		t.Errorf("refusals %+v", rs)
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.v.Health().Ready || !strings.Contains(h.v.Health().Detail, "403") {
		if time.Now().After(deadline) {
			t.Fatalf("health %+v", h.v.Health())
		}
		time.Sleep(20 * time.Millisecond)
	}

	h.keys["origin"] = `"https://registered.example"`
	h.restart()
	h.open(c)
	if st, _ := parseSession(c.Session); st.Token == "" || st.NoAgent {
		t.Errorf("session %s", c.Session)
	}
}

// Health: not started, ready once canchat answers, the chat sockets
// counted, stopped.
func TestHealth(t *testing.T) {
	srv := centiontest.NewServer(t, centiontest.Config{})
	keys := baseKeys(srv.URL())
	v, err := Build(connector.VendorEnv{Instance: instance(keys), Logger: zap.NewNop(), Sink: newSink()})
	if err != nil {
		t.Fatal(err)
	}
	if h := v.Health(); h.Ready || h.Detail != "not started" {
		t.Errorf("before start: %+v", h)
	}
	if err := v.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, v, true)
	c := &connector.Conversation{ID: 1, Channel: "sms.main", Customer: "+15550001111"}
	if _, err := v.Open(ctxFor(t), c); err != nil {
		t.Fatal(err)
	}
	if h := v.Health(); !h.Ready || h.Detail != "1 chats connected" {
		t.Errorf("with a chat: %+v", h)
	}
	srv.SetCanChat(false)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(v.Health().Detail, "closed") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if h := v.Health(); !h.Ready || !strings.Contains(h.Detail, "new chats refused now: the chat is closed") {
		t.Errorf("closed: %+v", h)
	}
	stopVendor(t, v)
	if h := v.Health(); h.Ready || h.Detail != "stopped" {
		t.Errorf("after stop: %+v", h)
	}
}

func waitHealth(t *testing.T, v *Vendor, ready bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for v.Health().Ready != ready {
		if time.Now().After(deadline) {
			t.Fatalf("health %+v, want ready=%v", v.Health(), ready)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WebSocket pings keep an idle chat's socket alive behind a server that
// drops sockets silent for IdleTimeout, and the server's own pings are
// answered.
func TestPingKeepalive(t *testing.T) {
	h := newHarness(t, centiontest.Config{IdleTimeout: 400 * time.Millisecond, PingInterval: 100 * time.Millisecond},
		func(k map[string]string) { k["ping_interval"] = `"100ms"` })
	c := h.openJoined()
	tok := h.token(c)
	deadline := time.Now().Add(10 * time.Second)
	for h.srv.Pings(tok) < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d pings", h.srv.Pings(tok))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ch := h.chat(c); ch.Sockets != 1 {
		t.Errorf("%d sockets: the idle socket was dropped", ch.Sockets)
	}
}

// Another agent taking the chat is a transfer; the lines carry the new name.
func TestTransfer(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, nil)
	c := h.openJoined()
	if err := h.srv.Join(h.token(c), "Bob"); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Say(h.token(c), "Bob here"); err != nil {
		t.Fatal(err)
	}
	e := h.sink.waitText(t, c.ID, "Bob here")
	tr := h.sink.of(c.ID, connector.EventTransferred)
	if len(tr) != 1 || tr[0].Agent != "Bob" || e.Agent != "Bob" {
		t.Errorf("transfer %s", describe(h.sink.all()))
	}
	var st sessionState
	_ = json.Unmarshal(h.sink.session(c.ID), &st)
	if st.Agent != "Bob" {
		t.Errorf("stored agent %q", st.Agent)
	}
}

// The context line of a chat opened again goes as a customer line.
func TestContextLine(t *testing.T) {
	h := newHarness(t, centiontest.Config{}, nil)
	c := h.openJoined()
	m := &connector.Message{ID: 3, ConversationID: c.ID, Kind: connector.KindContext, Text: "Reconnected: Jo on sms.main"}
	if err := h.v.Send(ctxFor(t), h.current(c), m); err != nil {
		t.Fatal(err)
	}
	if got := lineTexts(h.lines(c)); !slices.Equal(got, []string{"Reconnected: Jo on sms.main"}) {
		t.Errorf("lines %q", got)
	}
}

// A file Cention's upload refuses (413 past its size) goes as its link;
// the conversation goes on.
func TestUploadRefused(t *testing.T) {
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", 3000)))
	}))
	defer files.Close()
	h := newHarness(t, centiontest.Config{MaxUpload: 1000}, nil)
	h.v.fetchClient = files.Client()
	c := h.openJoined()
	m := &connector.Message{ID: 40, ConversationID: c.ID, Kind: connector.KindText,
		Attachments: []connector.Attachment{{URL: files.URL + "/big.pdf"}}}
	if err := h.v.Send(ctxFor(t), h.current(c), m); err != nil {
		t.Fatal(err)
	}
	if got := lineTexts(h.lines(c)); !slices.Equal(got, []string{files.URL + "/big.pdf"}) {
		t.Errorf("lines %q", got)
	}
}
