package smstest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

const (
	ours     = "+15551230000"
	ours2    = "+15551230001"
	customer = "+15557654321"
	msid     = "MG0123456789abcdef0123456789abcdef"
)

func TestOptOutPairs(t *testing.T) {
	type create struct{ from, msid string }
	tests := []struct {
		name    string
		service string // Config.MessagingServiceSID
		texts   []string
		set     func(*Server)
		create  create
		blocked bool
	}{
		{"STOP blocks the number written to", "", []string{"STOP"}, nil, create{from: ours}, true},
		{"STOP leaves another number", "", []string{"STOP"}, nil, create{from: ours2}, false},
		{"STOP then START", "", []string{"stop", " Start "}, nil, create{from: ours}, false},
		{"STOP PLEASE is no keyword", "", []string{"STOP PLEASE"}, nil, create{from: ours}, false},
		{"REVOKE blocks", "", []string{"revoke"}, nil, create{from: ours}, true},
		{"in a service STOP blocks the service", msid, []string{"STOP"}, nil, create{msid: msid}, true},
		{"in a service STOP blocks its other numbers", msid, []string{"STOP"}, nil, create{from: ours2}, true},
		{"in a service STOP then UNSTOP", msid, []string{"STOP", "UNSTOP"}, nil, create{msid: msid}, false},
		{"SetOptOut blocks every sender", "", nil, func(s *Server) { s.SetOptOut(customer, true) }, create{from: ours2}, true},
		{"SetOptOutFrom a pair", "", nil, func(s *Server) { s.SetOptOutFrom(ours, customer, true) }, create{from: ours}, true},
		{"SetOptOutFrom another pair", "", nil, func(s *Server) { s.SetOptOutFrom(ours, customer, true) }, create{from: ours2}, false},
		{"SetOptOutFrom a service", "", nil, func(s *Server) { s.SetOptOutFrom(msid, customer, true) }, create{msid: msid}, true},
		{"SetOptOut false keeps a keyword's pair", "", []string{"STOP"}, func(s *Server) { s.SetOptOut(customer, false) }, create{from: ours}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, Config{StatusDelay: time.Hour, MessagingServiceSID: tt.service})
			hook := newHook(t).srv.URL
			for _, text := range tt.texts {
				if _, _, err := s.Inbound(t.Context(), hook, customer, ours, text); err != nil {
					t.Fatal(err)
				}
			}
			if tt.set != nil {
				tt.set(s)
			}
			p := (&openapi.CreateMessageParams{}).SetTo(customer).SetBody("hi")
			if tt.create.from != "" {
				p.SetFrom(tt.create.from)
			}
			if tt.create.msid != "" {
				p.SetMessagingServiceSid(tt.create.msid)
			}
			_, err := apiFor(t, s).CreateMessage(p)
			if got := err != nil && restError(t, err).Code == 21610; got != tt.blocked || !tt.blocked && err != nil {
				t.Errorf("create: %v; want blocked %v", err, tt.blocked)
			}
			sender := tt.create.from + tt.create.msid
			if got := s.OptedOut(sender, customer); got != tt.blocked {
				t.Errorf("OptedOut(%s) = %v, want %v", sender, got, tt.blocked)
			}
		})
	}
}

func TestKeywordReplies(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		texts      []string // the last one is checked
		reply      string   // "" for none
		optOutType string
	}{
		{"off: STOP has no reply", Config{}, []string{"STOP"}, "", ""},
		{"STOP", Config{KeywordReplies: true}, []string{"STOP"}, replyOptOut, ""},
		{"START", Config{KeywordReplies: true}, []string{"START"}, replyOptIn, ""},
		{"HELP", Config{KeywordReplies: true}, []string{"help"}, replyHelp, ""},
		{"INFO", Config{KeywordReplies: true}, []string{"INFO"}, replyHelp, ""},
		{"HELP when opted out has no reply", Config{KeywordReplies: true}, []string{"STOP", "HELP"}, "", ""},
		{"plain text has no reply", Config{KeywordReplies: true}, []string{"stop it"}, "", ""},
		{"Advanced Opt-Out STOP", Config{KeywordReplies: true, MessagingServiceSID: msid}, []string{"STOP"}, replyOptOut, "STOP"},
		{"Advanced Opt-Out HELP when opted out", Config{KeywordReplies: true, MessagingServiceSID: msid}, []string{"STOP", "HELP"}, "", "HELP"},
		{"service without replies: no OptOutType", Config{MessagingServiceSID: msid}, []string{"STOP"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.StatusDelay = time.Hour
			s := start(t, tt.cfg)
			h := newHook(t)
			before := 0
			for i, text := range tt.texts {
				before = len(s.Sent())
				if _, status, err := s.Inbound(t.Context(), h.srv.URL, customer, ours, text); err != nil || status != 200 {
					t.Fatalf("Inbound = %d, %v", status, err)
				}
				h.wait(t, i+1)
			}
			reqs := h.wait(t, len(tt.texts))
			last := reqs[len(reqs)-1].form
			if got := last.Get("OptOutType"); got != tt.optOutType || last.Has("OptOutType") != (tt.optOutType != "") {
				t.Errorf("OptOutType = %q (present %v), want %q", got, last.Has("OptOutType"), tt.optOutType)
			}
			var want []Sent
			if tt.reply != "" {
				want = []Sent{{
					AccountSID: s.AccountSID(), From: ours, To: customer, MessagingServiceSID: tt.cfg.MessagingServiceSID,
					Body: tt.reply, Status: "queued", AutoReply: true,
				}}
			}
			got := s.Sent()[before:]
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Sent{}, "SID", "Created"), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("replies to the last text (-want +got):\n%s", diff)
			}
			if tt.reply == "" {
				return
			}
			listed, err := apiFor(t, s).ListMessage((&openapi.ListMessageParams{}).SetTo(customer))
			if err != nil || len(listed) == 0 || *listed[0].Direction != "outbound-reply" || *listed[0].Body != tt.reply {
				t.Errorf("list To customer = %v, %v; want the reply first, direction outbound-reply", listed, err)
			}
		})
	}
}
