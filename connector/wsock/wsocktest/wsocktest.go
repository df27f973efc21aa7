// Package wsocktest has what the tests of the adapters built on
// connector/wsock share to measure what an idle socket holds.
package wsocktest

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// HeapInUse is the live heap after two collections, in bytes.
func HeapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BareServer accepts WebSocket handshakes on 127.0.0.1 and then only holds
// the sockets, with as little memory of its own per socket as a server can
// have, so that a client's share of the heap shows. It returns host:port;
// the sockets are closed when the test ends.
func BareServer(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	held := make(chan []net.Conn, 1)
	go func() {
		var conns []net.Conn
		defer func() { held <- conns }()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, nc)
			if err := Upgrade(nc); err != nil {
				tb.Errorf("handshake: %v", err)
				return
			}
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		for _, nc := range <-held {
			nc.Close()
		}
	})
	return ln.Addr().String()
}

// Upgrade answers one client handshake on nc (RFC 6455 section 4.2.2), for
// a test server that then writes raw frames.
func Upgrade(nc net.Conn) error {
	req, err := http.ReadRequest(bufio.NewReaderSize(nc, 512))
	if err != nil {
		return err
	}
	sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	_, err = nc.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n"))
	return err
}

// Goroutines counts the goroutines whose stack, as runtime.Stack prints it,
// count reports true for (an adapter's own, say, told apart by its package
// path).
func Goroutines(count func(stack string) bool) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	total := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if count(g) {
			total++
		}
	}
	return total
}
