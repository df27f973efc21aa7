package sio

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// halfFrameServer speaks just enough WebSocket by hand to do what no library
// server does: it completes the handshake (EIO 3 or 4, announcing a short
// heartbeat), then writes the header of a 1000-byte text frame and only 10
// bytes of it. With die it then closes the TCP connection (a peer that dies
// holding a frame); without, it goes silent and keeps the connection open.
// It writes the half frame once connected is closed (the client's Dial
// returned).
func halfFrameServer(t *testing.T, eio int, die bool, connected <-chan struct{}) string {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
		writeText(rw, `0{"sid":"half","upgrades":[],"pingInterval":100,"pingTimeout":200,"maxPayload":1000000}`)
		if eio == 4 {
			for { // the client's namespace CONNECT
				msg, err := readClientText(rw.Reader)
				if err != nil {
					return
				}
				if strings.HasPrefix(msg, "40") {
					break
				}
			}
			writeText(rw, `40{"sid":"nsp"}`)
		} else {
			writeText(rw, "40")
		}
		// Half a frame: a text frame of 1000 bytes, 10 of them sent, once
		// the client has its connect.
		select {
		case <-connected:
		case <-r.Context().Done():
			return
		}
		_, _ = rw.Write([]byte{0x81, 126, 0x03, 0xe8})
		_, _ = rw.WriteString(`42["half",`)
		_ = rw.Flush()
		if die {
			return
		}
		_, _ = io.Copy(io.Discard, rw) // silent until the client hangs up
	}))
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
	})
	return hs.URL
}

// writeText writes one unmasked text frame (payload < 64 KiB) and flushes.
func writeText(w *bufio.ReadWriter, s string) {
	if len(s) < 126 {
		_, _ = w.Write([]byte{0x81, byte(len(s))})
	} else {
		_, _ = w.Write([]byte{0x81, 126, byte(len(s) >> 8), byte(len(s))})
	}
	_, _ = w.WriteString(s)
	_ = w.Flush()
}

// readClientText reads one masked frame from the client and returns its
// payload.
func readClientText(r *bufio.Reader) (string, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		return "", errors.New("frame too large for this test server")
	}
	var mask [4]byte
	if h[1]&0x80 != 0 {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return "", err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return "", err
	}
	for i := range p {
		p[i] ^= mask[i%4]
	}
	return string(p), nil
}

// A peer that dies or goes silent in the middle of a frame ends the
// connection with an error naming why, within the heartbeat, and nothing
// else: the owner reconnects.
func TestHalfFrameNotFatal(t *testing.T) {
	for _, tc := range []struct {
		name string
		eio  int
		die  bool
		want error
	}{
		{"eio3 peer dies", 3, true, ErrTransport},
		{"eio3 peer silent", 3, false, ErrPingTimeout},
		{"eio4 peer dies", 4, true, ErrTransport},
		{"eio4 peer silent", 4, false, ErrPingTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			connected := make(chan struct{})
			url := halfFrameServer(t, tc.eio, tc.die, connected)
			c, err := Dial(t.Context(), Options{URL: url, EIO: tc.eio, ConnectTimeout: 3 * time.Second})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			close(connected)
			defer c.Close()
			waitDone(t, c)
			if err := c.Err(); !errors.Is(err, tc.want) {
				t.Fatalf("Err = %v, want %v", err, tc.want)
			}
			if _, ok := <-c.Events(); ok {
				t.Fatal("an event from half a frame")
			}
		})
	}
}
