package customerchannel

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/sio"
)

// FuzzHandle feeds one server event (messageArrived or conversationInfo, as
// an object or a JSON string holding one) to a vendor carrying conversation
// "c1". Nothing may panic, and what comes out is bounded by what came in: no
// more events than messages could fit in the payload, and no more text.
func FuzzHandle(f *testing.F) {
	f.Add(evArrived, `{"type":"ChatMessage","id":"m1","conversationId":"c1","from":{"id":"a1","name":"Dee"},"text":"hi"}`)
	f.Add(evConversation, `{"conversation":{"id":"c1"},"messages":[{"type":"ChatMessage","id":"m1","text":"a"}]}`)
	f.Add(evArrived, `"{\"type\":\"ActivityMessage\",\"conversationId\":\"c1\",\"activityType\":\"participantJoined\",\"info\":{\"participant\":{\"id\":\"a1\",\"name\":\"Dee\"}}}"`)
	f.Fuzz(func(t *testing.T, name, payload string) {
		rec := &recorder{}
		cfg := defaultConfig()
		cfg.DeliverVia, cfg.LeaveGrace = "sms.main", time.Hour // no timer fires during the test
		v := &Vendor{name: "customerchannel.hub", cfg: cfg, log: zap.NewNop(), sink: rec, outbound: rec, live: map[string]*live{},
			lost: map[string]*lostChat{}, changed: make(chan struct{})}
		track(v, &connector.Conversation{ID: 1, Channel: "sms.main", Customer: "+15550000000"},
			session{ConversationID: "c1", ParticipantID: "me", ParticipantName: "Ann"}, false)
		if in, ok := v.parse(sio.Event{Name: name, Args: []json.RawMessage{json.RawMessage(payload)}}, 1); ok {
			v.handle(context.Background(), in)
		}
		defer v.untrack("c1")

		events, out := rec.all()
		// The smallest message that yields anything, {"type":"ChatMessage"},
		// is 22 bytes; an activity is longer.
		if n := len(events) + len(out); n > len(payload)/20+1 {
			t.Fatalf("%d events and messages from a payload of %d bytes", n, len(payload))
		}
		text := 0
		for _, e := range events {
			text += len(e.Text) + len(e.Agent) + len(e.SourceID) + len(e.Attachments)
		}
		for _, o := range out {
			text += len(o.Text) + len(o.Customer) + len(o.Attachments)
		}
		if text > len(payload) {
			t.Fatalf("%d bytes of text out of a payload of %d", text, len(payload))
		}
	})
}

// FuzzDecodePayload: a payload decodes into a message and a
// conversationInfo (or fails cleanly), and the error text is bounded.
func FuzzDecodePayload(f *testing.F) {
	f.Add(`{"type":"ChatMessage","text":"hi"}`)
	f.Add(`"{\"messages\":[]}"`)
	f.Add(`  "  not json  "  `)
	f.Fuzz(func(t *testing.T, payload string) {
		var m message
		if err := decodePayload(json.RawMessage(payload), &m); err != nil && len(err.Error()) > 300 {
			t.Fatalf("error of %d bytes", len(err.Error()))
		}
		_ = m.infoParticipant()
		_ = m.typingOn()
		if as := attachmentsOf(m.Attachments); len(as) > len(payload)/14 {
			t.Fatalf("%d attachments from %d bytes", len(as), len(payload))
		}
		var info conversationInfo
		if err := decodePayload(json.RawMessage(payload), &info); err == nil && len(info.Messages) > len(payload)/2 {
			t.Fatalf("%d messages from %d bytes", len(info.Messages), len(payload))
		}
	})
}
