package cobrowsertest

import "testing"

// FuzzParseElement: any WebSocket message either fails to parse or gives a
// tree no larger than the message.
func FuzzParseElement(f *testing.F) {
	for _, seed := range []string{
		`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="xmpp.test" version="1.0"/>`,
		`<message xmlns="jabber:client" from="a@b/c" type="chat" id="1"><body>hi &amp; bye</body><active xmlns="http://jabber.org/protocol/chatstates"/><nick xmlns="http://jabber.org/protocol/nick">agent3</nick></message>`,
		`<message xmlns="jabber:client"><body>visitor_forward_message</body><internal xmlns="http://cobrowser.io/protocol/chatsession#forward"><chat_forwarding>visitor_forward_message</chat_forwarding><agent><nickname>agent3</nickname><firstname>Pedro</firstname></agent></internal></message>`,
		`<stream:features xmlns:stream="http://etherx.jabber.org/streams"><mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><mechanism>PLAIN</mechanism></mechanisms></stream:features>`,
		`<a xmlns:p="urn:long"><p:b/><p:b x="&#x10FFFF;"/><![CDATA[<x>]]></a>`,
		`<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := parseElement(data)
		if err != nil {
			return
		}
		if n.size() > len(data) {
			t.Fatalf("%d bytes decoded from %d: %q", n.size(), len(data), data)
		}
		// Neither may panic. String is for logs: Go's decoder accepts some
		// names XML does not (a local name "0" after a prefix), so its
		// output need not parse again.
		toStanza(n)
		_ = n.String()
	})
}
