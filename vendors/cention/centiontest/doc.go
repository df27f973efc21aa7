// Package centiontest is a fake Cention chat server (the client side of
// Cention Contact Center's chat: a plain WebSocket carrying a JSON envelope,
// plus a few HTTP calls) with a scriptable agent, in the style of
// net/http/httptest: NewServer (or Start) listens on 127.0.0.1, URL gives
// the base_url, and accessors report what the server received.
//
// The README beside this file describes the wire as the fake speaks it,
// what comes from Cention's documents and public SDK, and what the fake
// chose where they are silent (a repeated umid, the end of a chat, resume).
package centiontest
