package cobrowser

import (
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/connectord/connectord/connector"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// The stanzas of CoBrowser's document, as its examples show them.
const (
	docRegular = `<message xmlns="jabber:client" from="bc1234@jaxlecho.localhost" to="anonymous.64be335b901133024ca85c437138128f@localhost"
 uid="abab238a-67cc-4ee2-934b-1d0f3cc0e678" type="chat" agent_id="ICdmJjkdFc/hiYoSoZKq1fZaokdZpCSfx64zDXNNWpw=">
<body>hello</body>
<active xmlns="http://jabber.org/protocol/chatstates"/>
<nick xmlns="http://jabber.org/protocol/nick">agent3</nick>
</message>`
	docComposing = `<message xmlns="jabber:client" from="bc1234@jaxlecho.localhost" to="anonymous.64be@localhost"
 uid="77fd5a5e-0559-4c4e-81bb-84fc66d965eb" type="chat">
<composing xmlns="http://jabber.org/protocol/chatstates"/>
<nick xmlns="http://jabber.org/protocol/nick">agent3</nick>
</message>`
	docClosed = `<message xmlns="jabber:client" from="bc1234@jaxlecho.localhost" to="anonymous.64be@localhost"
 uid="16a05507-8827-42bd-83c5-d7d632f384e3" type="chat">
<closed xmlns="http://jabber.org/protocol/chatstates"/>
<nick xmlns="http://jabber.org/protocol/nick">agent3</nick>
</message>`
	docTransfer = `<message xmlns="jabber:client" from="bc1234@jaxlecho.localhost" to="anonymous.64be@localhost"
 uid="52a42448-431c-4394-b661-1fd343f4bb22" type="chat">
<body>visitor_forward_message</body>
<nick xmlns="http://jabber.org/protocol/nick">agent3</nick>
<internal xmlns="http://cobrowser.io/protocol/chatsession#forward">
<chat_forwarding>visitor_forward_message</chat_forwarding>
<agent>
<nickname>agent3</nickname>
<firstname>Pedro</firstname>
</agent>
</internal>
</message>`
	docBlocked = `<message xmlns="jabber:client" from="bc1234@jaxlecho.localhost" to="anonymous.4d85@localhost"
 uid="05e4e8a9-7944-4b0a-8383-7af71254b6fc" type="chat">
<blocked xmlns="http://jabber.org/protocol/chatstates"/>
<nick xmlns="http://jabber.org/protocol/nick">agent1</nick>
</message>`
)

func TestParseStanza(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want inbound
	}{
		{"regular", docRegular, inbound{Kind: "message", From: "bc1234@jaxlecho.localhost",
			To: "anonymous.64be335b901133024ca85c437138128f@localhost", Type: "chat",
			UID: "abab238a-67cc-4ee2-934b-1d0f3cc0e678", Body: "hello", Nick: "agent3", States: []string{"active"}}},
		{"composing", docComposing, inbound{Kind: "message", From: "bc1234@jaxlecho.localhost", To: "anonymous.64be@localhost",
			Type: "chat", UID: "77fd5a5e-0559-4c4e-81bb-84fc66d965eb", Nick: "agent3", States: []string{"composing"}}},
		{"closed", docClosed, inbound{Kind: "message", From: "bc1234@jaxlecho.localhost", To: "anonymous.64be@localhost",
			Type: "chat", UID: "16a05507-8827-42bd-83c5-d7d632f384e3", Nick: "agent3", States: []string{"closed"}}},
		{"transfer: body never kept", docTransfer, inbound{Kind: "message", From: "bc1234@jaxlecho.localhost",
			To: "anonymous.64be@localhost", Type: "chat", UID: "52a42448-431c-4394-b661-1fd343f4bb22", Nick: "agent3",
			Internal: true, ForwardedText: "visitor_forward_message", ForwardNick: "agent3", ForwardFirst: "Pedro"}},
		{"blocked", docBlocked, inbound{Kind: "message", From: "bc1234@jaxlecho.localhost", To: "anonymous.4d85@localhost",
			Type: "chat", UID: "05e4e8a9-7944-4b0a-8383-7af71254b6fc", Nick: "agent1", States: []string{"blocked"}}},
		{"body spaces kept, markup in body", `<message xmlns="jabber:client"><body>  a &lt;b&gt; <x>c</x> </body></message>`,
			inbound{Kind: "message", Body: "  a <b> c "}},
		{"xhtml-im", `<message xmlns="jabber:client" id="m1"><body>hi there</body><html xmlns="http://jabber.org/protocol/xhtml-im">` +
			`<body xmlns="http://www.w3.org/1999/xhtml"><p>hi <a href="https://x.test/?a=1&amp;b=2">there</a></p></body></html></message>`,
			inbound{Kind: "message", ID: "m1", Body: "hi there", HTML: `<p>hi <a href="https://x.test/?a=1&amp;b=2">there</a></p>`}},
		{"subscribe", `<presence xmlns="jabber:client" from="agent@internal.xmpp.test/x" type="subscribe"/>`,
			inbound{Kind: "presence", From: "agent@internal.xmpp.test/x", Type: "subscribe"}},
		{"available, status attribute", `<presence xmlns="jabber:client" from="a@b" status="available"><show>chat</show></presence>`,
			inbound{Kind: "presence", From: "a@b", Status: "available", Show: "chat"}},
		{"status child wins", `<presence xmlns="jabber:client" status="x"><status> away </status></presence>`,
			inbound{Kind: "presence", Status: "away"}},
		{"ping", `<iq xmlns="jabber:client" from="xmpp.test" id="p1" type="get"><ping xmlns="urn:xmpp:ping"/></iq>`,
			inbound{Kind: "iq", From: "xmpp.test", ID: "p1", Type: "get", Ping: true}},
		{"ping set is no ping", `<iq xmlns="jabber:client" id="p1" type="set"><ping xmlns="urn:xmpp:ping"/></iq>`,
			inbound{Kind: "iq", ID: "p1", Type: "set"}},
		{"other iq", `<iq xmlns="jabber:client" id="v" type="get"><query xmlns="jabber:iq:version"/></iq>`,
			inbound{Kind: "iq", ID: "v", Type: "get"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStanza([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseStanzaRefuses(t *testing.T) {
	for _, in := range []string{
		`<features xmlns="http://etherx.jabber.org/streams"/>`,
		`<message xmlns="jabber:server"/>`,
		`<foo xmlns="jabber:client"/>`,
		``,
		`<message xmlns="jabber:client"><body>`,
	} {
		if _, err := parseStanza([]byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

// Bounds: a huge body is cut, a deep element is read to its end and
// ignored below maxNesting.
func TestParseStanzaBounds(t *testing.T) {
	big := `<message xmlns="jabber:client"><body>` + strings.Repeat("x", 2*maxBody) + `</body></message>`
	in, err := parseStanza([]byte(big))
	if err != nil || len(in.Body) != maxBody {
		t.Errorf("body of %d bytes, %v; want cut to %d", len(in.Body), err, maxBody)
	}
	deep := `<message xmlns="jabber:client">` + strings.Repeat("<x>", 200) + strings.Repeat("</x>", 200) +
		`<body>after</body></message>`
	in, err = parseStanza([]byte(deep))
	if err != nil || in.Body != "after" {
		t.Errorf("deep: %+v, %v", in, err)
	}
}

func TestAgentText(t *testing.T) {
	for _, tc := range []struct {
		in     inbound
		text   string
		format connector.Format
	}{
		{inbound{Body: "a < b and c > d"}, "a < b and c > d", connector.FormatPlain},
		{inbound{Body: "see <a href=\"https://x.test\">this</a>"}, "see <a href=\"https://x.test\">this</a>", connector.FormatHTML},
		{inbound{Body: "line<br>two"}, "line<br>two", connector.FormatHTML},
		{inbound{Body: "plain", HTML: "<b>rich</b>"}, "<b>rich</b>", connector.FormatHTML},
		{inbound{Body: "  "}, "", connector.FormatPlain},
	} {
		text, format := agentText(tc.in)
		if text != tc.text || format != tc.format {
			t.Errorf("%+v: %q %q, want %q %q", tc.in, text, format, tc.text, tc.format)
		}
	}
}

// TestStanzaGolden holds what we send to testdata/golden; every stanza must
// also parse as XML, whole.
func TestStanzaGolden(t *testing.T) {
	for name, b := range map[string][]byte{
		"presence":       presenceStanza("cd-1", "", ""),
		"subscribe":      presenceStanza("cd-2", "agent@internal.xmpp.test", "subscribe"),
		"available":      availableStanza("cd-3", "agent@internal.xmpp.test"),
		"subscribed":     presenceStanza("cd-4", "agent@internal.xmpp.test", "subscribed"),
		"active":         chatStateStanza("cd-5", "agent@internal.xmpp.test", stateActive),
		"closed":         chatStateStanza("cd-6", "agent@internal.xmpp.test", stateClosed),
		"line":           chatStanza("connectord-42", "agent@internal.xmpp.test", "Hi & <you> \"there\"\x01\xff"),
		"ping":           pingStanza("cd-7", "xmpp.test"),
		"ping-result":    iqResultStanza("p1", "xmpp.test"),
		"iq-unsupported": iqErrorStanza("v1", "xmpp.test"),
	} {
		t.Run(name, func(t *testing.T) {
			d := xml.NewDecoder(strings.NewReader(string(b)))
			for {
				if _, err := d.Token(); err != nil {
					if err.Error() != "EOF" {
						t.Fatalf("not well-formed: %v\n%s", err, b)
					}
					break
				}
			}
			path := filepath.Join("testdata", "golden", name+".xml")
			if *update {
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(want) != string(b) {
				t.Errorf("got\n%s\nwant\n%s", b, want)
			}
		})
	}
}
