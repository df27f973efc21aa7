package slacktest

import (
	"context"
	"net"
	"slices"
	"sync"
)

// A socket's end can go quiet without closing, as when Slack's side stops
// answering or a TCP connection is half-open: the connection stays
// established, and what the app sends is never read. Every accepted
// connection is a gateConn so that its reads can be held.

// gateConn is an accepted connection whose reads can be held for good:
// bytes the client sends are then never handed to the server's reader, so a
// WebSocket ping from the app gets no pong and its acks are never seen.
type gateConn struct {
	net.Conn
	mu        sync.Mutex
	held      bool
	closed    chan struct{}
	closeOnce sync.Once
}

// gateListener wraps every accepted connection in a gateConn.
type gateListener struct{ net.Listener }

func (l gateListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &gateConn{Conn: c, closed: make(chan struct{})}, nil
}

// gateKey is the request context key of a request's gateConn.
type gateKey struct{}

// connContext puts the connection's gateConn in its requests' context.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if g, ok := c.(*gateConn); ok {
		return context.WithValue(ctx, gateKey{}, g)
	}
	return ctx
}

// hold stops handing reads to the server from now on.
func (c *gateConn) hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = true
}

func (c *gateConn) isHeld() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held
}

// Read reads as usual unless held: then the bytes that arrive are thrown
// away, and only the end of the connection (the client closed it, or the
// server did) comes through.
func (c *gateConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	for n > 0 && err == nil && c.isHeld() {
		n, err = c.Conn.Read(p)
	}
	if err != nil && c.isHeld() {
		return 0, err
	}
	return n, err
}

func (c *gateConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// quiet is how a socket has gone quiet: not at all, silent or deaf.
type quiet int

const (
	talking quiet = iota
	// silent: nothing more is sent (no pings, no envelopes: those queued
	// for it are lost as if written into a dead connection) and nothing
	// more is read (no pong, no ack).
	silent
	// deaf: pings and envelopes still go out, but nothing more is read.
	deaf
)

// SilenceSockets makes every open socket go silent while staying
// connected, as when Slack's end stops answering or the TCP connection is
// half-open: no more pings from the server, no pong to the app's pings, no
// ack read. An envelope handed to a silent socket is lost as if written into
// the void and redelivered after the ack timeout on another socket (new
// envelopes, redeliveries included, go to sockets still talking whenever
// one is open). Sockets opened later talk as usual. A silent socket stays
// open until the app closes it.
func (s *Server) SilenceSockets() { s.quietSockets(silent) }

// DeafenSockets makes every open socket stop reading while it still sends
// pings, and the envelopes already queued for it: the app's pongs and acks
// never arrive, so every envelope sent there is redelivered after the ack
// timeout (on a socket still talking whenever one is open). Sockets opened
// later talk as usual.
func (s *Server) DeafenSockets() { s.quietSockets(deaf) }

func (s *Server) quietSockets(q quiet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, so := range s.sockets {
		so.quiet = q
		if so.gate != nil {
			so.gate.hold()
		}
		signal(so.poke)
		signal(so.wake)
	}
	s.changedLocked()
}

// QuietSockets returns how many open sockets are silent or deaf.
func (s *Server) QuietSockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, so := range s.sockets {
		if so.quiet != talking {
			n++
		}
	}
	return n
}

// Lost returns the event ids of the envelopes lost in silent sockets, in
// the order lost (an event redelivered into one again is there again).
func (s *Server) Lost() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lost)
}
