package sio

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// The decoders of both clients: pure functions of one received text
// frame, so that they can be fuzzed on their own. Every output is a part of
// the input or a bounded text: nothing a server sends is amplified.

// frame is one received Engine.IO text frame, decoded.
type frame struct {
	engine  byte      // Engine.IO packet type '0'..'6'; 0 for an empty frame
	payload string    // what follows the Engine.IO type
	sio     sioPacket // for a message ('4') whose Socket.IO packet parsed
	sioOK   bool
	event   Event // for an event packet whose JSON is ["name", args...]
	eventOK bool
}

// decodeFrame decodes an Engine.IO frame and, for a message, the Socket.IO
// packet it carries and the event in it. It never fails: what it cannot read
// is left unset for the caller to skip.
func decodeFrame(s string) frame {
	var f frame
	if s == "" {
		return f
	}
	f.engine, f.payload = s[0], s[1:]
	if f.engine != '4' {
		return f
	}
	f.sio, f.sioOK = parseSIOPacket(f.payload)
	if f.sioOK && f.sio.typ == '2' {
		f.event, f.eventOK = decodeEvent(f.sio.data)
	}
	return f
}

// openPacket is the payload of the server's open packet (EIO3 and EIO4;
// maxPayload is EIO4's).
type openPacket struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"` // ms
	PingTimeout  int64    `json:"pingTimeout"`  // ms
	MaxPayload   int64    `json:"maxPayload"`   // bytes; 0 = not announced
}

// parseOpen reads the open packet's JSON.
func parseOpen(payload string) (openPacket, error) {
	var op openPacket
	if err := json.Unmarshal([]byte(payload), &op); err != nil {
		return op, fmt.Errorf("bad open packet %s: %v", clip("0"+payload, 80), err)
	}
	return op, nil
}

// maxHeartbeat caps what a server may announce: a larger interval would let a
// dead connection go unnoticed for as long (and overflow a Duration).
const maxHeartbeat = 10 * time.Minute

// interval is the announced ping interval, def when none.
func (op openPacket) interval(def time.Duration) time.Duration {
	return heartbeat(op.PingInterval, def)
}

// timeout is the announced ping timeout, def when none.
func (op openPacket) timeout(def time.Duration) time.Duration {
	return heartbeat(op.PingTimeout, def)
}

// heartbeat turns an announced number of milliseconds into a duration: the
// default when not positive, at most maxHeartbeat.
func heartbeat(ms int64, def time.Duration) time.Duration {
	switch {
	case ms <= 0:
		return def
	case ms > int64(maxHeartbeat/time.Millisecond):
		return maxHeartbeat
	}
	return time.Duration(ms) * time.Millisecond
}

// parseConnectAnswer reads the data of a Socket.IO 5 CONNECT answer,
// `{"sid":"..."}`, and returns the sid. A Socket.IO 2 server sends the connect
// without data: the error says so.
func parseConnectAnswer(data string) (string, error) {
	if data == "" {
		return "", errors.New("namespace connect answered without a sid (is it a Socket.IO 2 server? use EIO 3)")
	}
	var ans struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(data), &ans); err != nil || ans.SID == "" {
		return "", fmt.Errorf("namespace connect answer without a sid: %s", clip(data, 80))
	}
	return ans.SID, nil
}

// sioPacket is a parsed Socket.IO packet (the part after the Engine.IO type).
type sioPacket struct {
	typ  byte
	nsp  string
	id   string
	data string
}

func (p sioPacket) defaultNSP() bool { return p.nsp == "" || p.nsp == "/" }

// parseSIOPacket splits "<type>[<n>-][/nsp,][id]data". Binary packet types
// ('5', '6') need their "<n>-" attachment count; the attachments themselves
// are never read.
func parseSIOPacket(s string) (sioPacket, bool) {
	var p sioPacket
	if s == "" || s[0] < '0' || s[0] > '6' {
		return p, false
	}
	p.typ, s = s[0], s[1:]
	if p.typ == '5' || p.typ == '6' { // "<n>-" attachment count
		i := strings.IndexByte(s, '-')
		if i < 0 {
			return p, false
		}
		s = s[i+1:]
	}
	if strings.HasPrefix(s, "/") {
		i := strings.IndexByte(s, ',')
		if i < 0 {
			p.nsp, s = s, ""
		} else {
			p.nsp, s = s[:i], s[i+1:]
		}
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	p.id, p.data = s[:i], s[i:]
	return p, true
}

// decodeEvent parses `["name", arg...]`.
func decodeEvent(data string) (Event, bool) {
	var arr []json.RawMessage
	if err := json.Unmarshal([]byte(data), &arr); err != nil || len(arr) == 0 {
		return Event{}, false
	}
	var name string
	if err := json.Unmarshal(arr[0], &name); err != nil {
		return Event{}, false
	}
	return Event{Name: name, Args: arr[1:]}, true
}

// maxErrorText bounds a server's error text in our errors: it ends up in
// logs and health details.
const maxErrorText = 200

// errorText renders an error packet's payload: a JSON string, an object with
// "message", or the raw text; at most maxErrorText bytes (plus "...").
func errorText(data string) string {
	var s string
	if json.Unmarshal([]byte(data), &s) == nil {
		return clip(s, maxErrorText)
	}
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal([]byte(data), &m) == nil && m.Message != "" {
		return clip(m.Message, maxErrorText)
	}
	if data == "" {
		return "(no reason given)"
	}
	return clip(data, maxErrorText)
}

// clip quotes s, cut to at most n bytes of it on a rune boundary with "..."
// appended when cut, so that control characters and invalid UTF-8 from a
// server cannot forge log lines.
func clip(s string, n int) string {
	if len(s) <= n {
		return quoteIfNeeded(s)
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return quoteIfNeeded(s[:cut]) + "..."
}

// quoteIfNeeded returns s as it is when it is printable UTF-8, else quoted.
func quoteIfNeeded(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || r < ' ' || r == 0x7f {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}
