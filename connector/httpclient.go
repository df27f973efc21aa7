package connector

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"time"
)

// Connection pools of the adapters' HTTP clients.
//
// The Router runs one lane per conversation, so an adapter's REST client
// sees as many requests at once as there are busy conversations. Go's
// default transport keeps only 2 idle connections per host: a burst of 200
// requests opens 200 connections and closes 198 of them when it ends, and
// the next burst pays every TCP and TLS handshake again. A pool sized for
// the adapter's concurrency keeps its connections instead, and a burst
// beyond it waits for a free connection rather than opening more.

const (
	// DefaultConnections is an adapter's http_connections when the block
	// does not set it.
	DefaultConnections = 32
	// MaxConnections bounds http_connections: more connections to one host
	// than this is a misconfiguration (and a file-descriptor risk), not a
	// pool.
	MaxConnections = 1024
	// ConnectionsKey is the configuration key every adapter sizes its REST
	// pool with.
	ConnectionsKey = "http_connections"
)

// Defaults of NewTransport, those of http.DefaultTransport.
const (
	defaultDialTimeout      = 30 * time.Second
	defaultHandshakeTimeout = 10 * time.Second
	idleConnTimeout         = 90 * time.Second
	// minIdleConns is the transport-wide idle bound of a small pool:
	// http.DefaultTransport's, so that a client talking to a few hosts (a
	// redirect to a CDN, SQS in several regions) keeps theirs too.
	minIdleConns = 100
)

// TransportOptions describe an adapter's HTTP transport. The zero value is
// http.DefaultTransport with a pool of DefaultConnections per host.
type TransportOptions struct {
	// Connections is the pool per host: at most this many connections are
	// open to one host, and as many are kept idle for the next requests. A
	// request beyond it waits for a connection (within its context). 0
	// means DefaultConnections.
	Connections int
	// TLS is the client's TLS configuration, cloned; nil is Go's default
	// (the system's roots).
	TLS *tls.Config
	// DialTimeout bounds a TCP connect; 0 means 30s.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds a TLS handshake; 0 means 10s.
	TLSHandshakeTimeout time.Duration
}

// NewTransport returns a transport like http.DefaultTransport (proxy from
// the environment, HTTP/2 attempted, idle connections closed after 90s) with
// o's TLS settings, timeouts and a pool of o.Connections per host (see
// SizePool). Each call returns a new pool: clients that must not wait for
// each other's connections get their own.
func NewTransport(o TransportOptions) *http.Transport {
	dial, handshake := o.DialTimeout, o.TLSHandshakeTimeout
	if dial <= 0 {
		dial = defaultDialTimeout
	}
	if handshake <= 0 {
		handshake = defaultHandshakeTimeout
	}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   handshake,
		ExpectContinueTimeout: time.Second,
	}
	if o.TLS != nil {
		t.TLSClientConfig = o.TLS.Clone()
	}
	return SizePool(t, o.Connections)
}

// SizePool sets t's pool to n connections per host (0: DefaultConnections):
// at most n open (MaxConnsPerHost), n kept idle (MaxIdleConnsPerHost), at
// least as many idle in all (MaxIdleConns), each idle one closed after 90s.
// It returns t. It leaves the dialler alone, so that a transport built
// elsewhere (netguard's, whose dialler refuses internal addresses) takes
// the same pool.
func SizePool(t *http.Transport, n int) *http.Transport {
	if n <= 0 {
		n = DefaultConnections
	}
	t.MaxConnsPerHost = n
	t.MaxIdleConnsPerHost = n
	t.MaxIdleConns = max(minIdleConns, n)
	t.IdleConnTimeout = idleConnTimeout
	return t
}

// CheckConnections reports, at ConnectionsKey, a pool size outside
// 1..MaxConnections.
func CheckConnections(bad BadFunc, n int) {
	if n < 1 || n > MaxConnections {
		bad(ConnectionsKey, "must be 1 to %d connections per host, not %d", MaxConnections, n)
	}
}

// maxDrain bounds what DrainClose reads: an error page or the rest of a
// JSON answer. Past it, closing the connection is cheaper than reading on.
const maxDrain = 64 << 10

// DrainClose reads what is left of an answer's body, up to 64 KiB, and
// closes it. The transport reuses a connection only once its answer was
// read to the end; a body closed unread closes the connection with it.
// Call it (usually deferred) instead of body.Close when the answer's rest
// is not needed.
func DrainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrain))
	_ = body.Close()
}

// DrainOnClose wraps rt so that closing an answer's body reads what is left
// of it first, as DrainClose does: for clients whose library decodes an
// answer and closes it without reading to the end (slack-go leaves the end
// of a large JSON answer, costing the connection every time). An upgraded
// connection's body (101 Switching Protocols, a WebSocket) is left as it
// is. The wrapper passes CloseIdleConnections on to rt.
func DrainOnClose(rt http.RoundTripper) http.RoundTripper { return drainingTransport{rt} }

type drainingTransport struct{ rt http.RoundTripper }

func (d drainingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := d.rt.RoundTrip(req)
	if err != nil || resp.StatusCode == http.StatusSwitchingProtocols || resp.Body == nil || resp.Body == http.NoBody {
		return resp, err
	}
	if _, rw := resp.Body.(io.Writer); !rw {
		resp.Body = drainingBody{resp.Body}
	}
	return resp, nil
}

func (d drainingTransport) CloseIdleConnections() {
	if c, ok := d.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

type drainingBody struct{ io.ReadCloser }

func (b drainingBody) Close() error {
	_, _ = io.Copy(io.Discard, io.LimitReader(b.ReadCloser, maxDrain))
	return b.ReadCloser.Close()
}
