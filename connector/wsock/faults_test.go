package wsock_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector/wsock"
	"github.com/connectord/connectord/connector/wsock/wsocktest"
)

// rawServer answers the handshake and then writes raw to the socket.
func rawServer(t *testing.T, write func(nc net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		if wsocktest.Upgrade(nc) == nil {
			write(nc)
		}
	}()
	return "ws://" + ln.Addr().String() + "/"
}

func dial(t *testing.T, url string, readLimit int64) *wsock.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := wsock.NewDialer(nil, 5*time.Second).DialContext(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	var bufs wsock.Buffers
	c := wsock.New(ws, zap.NewNop(), &bufs, readLimit)
	t.Cleanup(c.Close)
	return c
}

// A peer that dies in the middle of a frame, or that announces a frame over
// the read limit, ends the read with an error instead of holding it; a ping
// waiting then returns too.
func TestPeerFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(nc net.Conn)
	}{
		{"dies mid-frame", func(nc net.Conn) {
			nc.Write([]byte{0x81, 126, 0x03, 0xe8}) // a 1,000-byte text frame
			nc.Write(make([]byte, 10))              // of which 10 bytes come
		}},
		{"frame over the limit", func(nc net.Conn) {
			nc.Write([]byte{0x81, 127, 0, 0, 0, 1, 0, 0, 0, 0}) // 4 GiB announced
			io.Copy(io.Discard, nc)                             // and the socket kept open
		}},
		{"accepts then drops", func(nc net.Conn) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, rawServer(t, tc.write), 1<<20)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if b, err := c.Next(ctx); err == nil {
				t.Fatalf("read a %d-byte frame, want an error", b.Len())
			}
			if ctx.Err() != nil {
				t.Fatal("the read ended only with the test's deadline")
			}
			select {
			case <-c.ReadEnded():
			default:
				t.Error("ReadEnded open after the read failed")
			}
			if err := c.Ping(ctx); err == nil || ctx.Err() != nil {
				t.Errorf("ping on a dead socket: %v (test deadline passed: %v)", err, ctx.Err() != nil)
			}
		})
	}
}
