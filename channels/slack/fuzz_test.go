package slack

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/connectord/connectord/connector/richtext"
)

// fuzzChannel is a channel that is never started: the decoders and the
// link signer need its configuration only.
func fuzzChannel(f *testing.F) *Channel {
	return build(f, map[string]any{"bot_token": "xoxb-fuzz", "signing_secret": "s", "channels": []string{chSupport},
		"api_url": "https://slack.com/api/"}, &fakeSink{}, "https://connectord.example")
}

// FuzzEventsAPIBody: an Events API body (after its signature passed) decodes
// into at most one message whose links to files are either our signed link
// to a Slack file host or the file's own http(s) URL, never longer than the
// bound, and never more than the files the event names.
func FuzzEventsAPIBody(f *testing.F) {
	c := fuzzChannel(f)
	f.Add([]byte(signedFileEvent("1763900000.000100", `{"id":"F1","name":"a.png","url_private":"https://files.slack.com/files-pri/T1-F1/a.png"}`)))
	f.Add([]byte(signedFileEvent("1763900000.000100", `{"id":"F2","is_external":true,"url_private":"https://docs.google.com/d/1"}`)))
	f.Add([]byte(`{"type":"url_verification","challenge":"abc"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, err := decodeCallback(body)
		if err != nil {
			return
		}
		m, err := parseEvent(&cb)
		if err != nil || m == nil {
			return
		}
		if len(m.Text) > len(body) {
			t.Fatalf("text of %d bytes from a %d-byte body", len(m.Text), len(body))
		}
		atts := c.attachments(m.Files)
		if len(atts) > len(m.Files) {
			t.Fatalf("%d attachments from %d files", len(atts), len(m.Files))
		}
		for _, a := range atts {
			checkAttachmentLink(t, c, a.URL, m.Files, len(body))
		}
		if a := m.address(); channelID(a.Channel) && !strings.Contains(a.Root, "/") {
			if back, err := parseAddress(a.String()); err != nil || back != a {
				t.Fatalf("address %q does not read back: %+v, %v", a, back, err)
			}
		}
	})
}

// checkAttachmentLink: a link is ours only for a Slack-hosted file, else the
// file's own http(s) URL; its length is bounded by the body's.
func checkAttachmentLink(t *testing.T, c *Channel, link string, files []slackFile, bodyLen int) {
	t.Helper()
	if len(link) > len(c.publicURL)+4*bodyLen+256 {
		t.Fatalf("link of %d bytes from a %d-byte body", len(link), bodyLen)
	}
	if strings.HasPrefix(link, c.publicURL+c.path+"/files/") {
		u, err := url.Parse(link)
		if err != nil {
			t.Fatalf("our link %q does not parse: %v", link, err)
		}
		raw, err := linkEncoding().DecodeString(u.Query().Get("src"))
		if err != nil || !c.cfg.tokenURL(string(raw)) {
			t.Fatalf("our link %q stands for %q, not a Slack file host", link, raw)
		}
		return
	}
	for _, f := range files {
		if link == f.URLPrivate || link == f.URLPrivateDownload {
			if u, err := url.Parse(link); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
				t.Fatalf("linked %q, not an http(s) URL", link)
			}
			return
		}
	}
	t.Fatalf("link %q is neither ours nor a file's own URL", link)
}

// FuzzSocketEnvelope: a Socket Mode frame decodes without panicking, and
// the lane its event is queued on is named by the event itself (bounded by
// the frame's size).
func FuzzSocketEnvelope(f *testing.F) {
	f.Add([]byte(`{"envelope_id":"e1","type":"events_api","payload":` + signedFileEvent("1763900000.000100", "") + `}`))
	f.Add([]byte(`{"type":"hello","num_connections":1}`))
	f.Add([]byte(`{"type":"disconnect","reason":"refresh_requested"}`))
	f.Add([]byte(`{"envelope_id":"e2","type":"events_api","payload":{"type":"event_callback","event_id":"Ev2","event":{"type":"reaction_added"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := decodeFrame(data)
		if err != nil || env.Type != "events_api" {
			return
		}
		cb, err := decodeCallback(env.Payload)
		if err != nil {
			return
		}
		if key := laneKey(&cb); len(key) > len(data) {
			t.Fatalf("lane key of %d bytes from a %d-byte frame", len(key), len(data))
		}
	})
}

// FuzzFileLink: a link made by the signer verifies through the real route
// and stands for its file; the same link with one byte changed either fails
// or still names exactly the same file, name and source (a different
// spelling of the same URL); a link is never longer than its bound.
func FuzzFileLink(f *testing.F) {
	c := fuzzChannel(f)
	mux := http.NewServeMux()
	type verdict struct {
		id, name, src string
		status        int
	}
	var got verdict
	mux.HandleFunc("GET /slack/test/files/{id}/{name}", func(_ http.ResponseWriter, r *http.Request) {
		src, status := c.links.check(r.PathValue("id"), r.PathValue("name"), r.URL.Query(), time.Now())
		got = verdict{r.PathValue("id"), r.PathValue("name"), src, status}
	})
	f.Add("F0123ABCD", "report.pdf", "https://files.slack.com/files-pri/T1-F0123ABCD/download/report.pdf", 40, byte('x'))
	f.Add("F1", "a b/c?.txt", "https://files.slack.com/files-pri/T1-F1/a", 0, byte('0'))
	f.Add("F2", "ünï.png", "https://slack.com/files-pri/T1-F2/x?y=1", 120, byte('%'))
	f.Fuzz(func(t *testing.T, id, name, src string, at int, b byte) {
		if id == "" || name == "" || strings.ContainsRune(id+name+src, 0) || !utf8.ValidString(id+name) {
			return
		}
		base := "http://connectord.test/slack/test"
		link := c.links.url(base, id, name, src, time.Now())
		if max := len(base) + 3*(len(id)+len(name)) + (len(src)*4+2)/3 + 128; len(link) > max {
			t.Fatalf("link of %d bytes, bound %d", len(link), max)
		}
		serve := func(l string) (verdict, bool) {
			got = verdict{status: -1}
			req, err := http.NewRequest(http.MethodGet, l, nil)
			if err != nil {
				return got, false
			}
			mux.ServeHTTP(httptest.NewRecorder(), req)
			return got, got.status != -1
		}
		v, routed := serve(link)
		if routed && (v.status != 0 || v.src != src || v.id != id || v.name != name) {
			t.Fatalf("own link %q: %+v", link, v)
		}
		if len(link) == 0 {
			return
		}
		i := at % len(link)
		if i < 0 {
			i += len(link)
		}
		mutated := link[:i] + string(b) + link[i+1:]
		if mutated == link {
			return
		}
		if v, ok := serve(mutated); ok && v.status == 0 && (v.src != src || v.id != id || v.name != name) {
			t.Fatalf("mutated link %q verified for %+v", mutated, v)
		}
	})
}

// FuzzParseAddress: a customer address reads back to the same text.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"C0123/1763900000.000100", "D0ANN00001", "U0ANN00001", "C1/2/3", "+15551230000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseAddress(s)
		if err != nil {
			return
		}
		if a.String() != s {
			t.Fatalf("parseAddress(%q) = %+v, which writes %q", s, a, a.String())
		}
	})
}

// FuzzTimestamp: a Slack ts read as a time writes back as a ts of bounded
// length that reads as the same time.
func FuzzTimestamp(f *testing.F) {
	for _, s := range []string{"1763900000.000100", "1.2", "-5.000001", "99999999999.9999999", "x.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		at := tsTime(s)
		if at.IsZero() {
			return
		}
		back := tsOf(at)
		if len(back) > 28 {
			t.Fatalf("tsOf(%v) = %q", at, back)
		}
		if at.Unix() >= 0 && !tsTime(back).Equal(at) {
			t.Fatalf("%q reads as %v; written %q reads as %v", s, at, back, tsTime(back))
		}
	})
}

// FuzzFileHosts: a file_hosts entry that parses is an http(s) origin no
// longer than the entry plus its scheme, and a URL on it gets the token.
func FuzzFileHosts(f *testing.F) {
	for _, s := range []string{"files.slack.com", "http://127.0.0.1:8080", "https://[::1]:443", "files.slack.com/x", "ftp://a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := parseOrigin(s)
		if err != nil {
			return
		}
		if (o.scheme != "http" && o.scheme != "https") || o.host == "" || len(o.host) > len(s)+2 {
			t.Fatalf("parseOrigin(%q) = %+v", s, o)
		}
		cfg := Config{tokenOrigins: []origin{o}}
		if u := o.scheme + "://" + o.host + "/files-pri/x"; !cfg.tokenURL(u) {
			t.Fatalf("%q is not a token URL for its own origin %+v", u, o)
		}
	})
}

// FuzzProgressRecord: a stored send progress record that decodes has a
// Slack ts (or none) and a file count in range, and writes back as a record
// of bounded size that decodes to the same progress.
func FuzzProgressRecord(f *testing.F) {
	for _, s := range []string{`{"ts":"1763900000.000100","files":2}`, `{"unknown":"2026-01-02T03:04:05.123456789Z"}`,
		`{"files":-1}`, `{"ts":"x.1"}`, `null`, `{"ts":"1.2","files":1,"later":true}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeProgress(b)
		if err != nil {
			return
		}
		if (p.TS != "" && !validTS(p.TS)) || p.Files < 0 || p.Files > maxProgressFiles {
			t.Fatalf("decodeProgress(%q) = %+v", b, p)
		}
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("encode %+v: %v", p, err)
		}
		if len(out) > 128 {
			t.Fatalf("%+v encodes as %d bytes", p, len(out))
		}
		back, err := decodeProgress(out)
		if err != nil || back.TS != p.TS || back.Files != p.Files || !back.Unknown.Equal(p.Unknown) {
			t.Fatalf("%q reads back as %+v, %v; want %+v", out, back, err, p)
		}
	})
}

// FuzzStoredText: the stored form of any mrkdwn, named on the way to the
// agent, is what PlainFromMrkdwn makes of it with the same names (so a
// customer's literal "<@U1>" is never named), it is no longer than
// PlainFromMrkdwn's bound, and naming adds at most maxResolved names.
func FuzzStoredText(f *testing.F) {
	for _, s := range []string{"hi <@U1> in <#C1>", "&lt;@U1&gt; <@U1|x> `<@U2>`", "&lt;\u2060#C1&gt;<@U1>",
		"*<@U1>* _<#C1>_ <!here> <https://x.io|&lt;@U1&gt;>", "&lt;<@U1>&gt;", "\ue000<@U1>\ue000",
		strings.Repeat("<@U1>", 60)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		stored := storedText(in)
		if limit := 8*len(in) + 64; len(stored) > limit {
			t.Fatalf("stored %d bytes from %d", len(stored), len(in))
		}
		names := map[string]string{}
		users, channels := richtext.MrkdwnRefs(in)
		for _, id := range append(users, channels...) {
			names[id] = id + strings.Repeat("N", maxNameBytes) // cut to 80 bytes, as by PlainFromMrkdwn
		}
		agent := renderRefs(stored, refNames(stored, names))
		if len(agent) > len(stored)+maxResolved*maxNameBytes {
			t.Fatalf("agent text %d bytes from %d stored", len(agent), len(stored))
		}
		if _, ok := freeMark(in); !ok || strings.Count(stored, "<@")+strings.Count(stored, "<#") > maxResolved {
			return // references stored as plain ids, or more than are named
		}
		plain := richtext.PlainFromMrkdwn(in, names)
		if len(plain) > 8*len(in)+64-maxNameBytes {
			return // PlainFromMrkdwn may have cut its output at its bound
		}
		if agent != plain {
			t.Fatalf("agent text %q, PlainFromMrkdwn %q (stored %q)", agent, plain, stored)
		}
	})
}
