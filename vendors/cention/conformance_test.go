package cention

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/connectortest"
	"github.com/connectord/connectord/vendors/cention/centiontest"
)

// TestConformance runs the core's vendor suite against the fake server,
// reached through a TCP proxy that plays the server going away (Down: every
// connection cut and new ones refused) and coming back (Up).
func TestConformance(t *testing.T) {
	srv := centiontest.NewServer(t, centiontest.Config{})
	px := newProxy(t, srv.URL())
	chat := func(t *testing.T, c *connector.Conversation) centiontest.Chat {
		st, err := parseSession(c.Session)
		if err != nil {
			t.Fatal(err)
		}
		ch, ok := srv.Chat(st.Token)
		if !ok {
			t.Fatalf("the fake has no chat for conversation %d", c.ID)
		}
		return ch
	}
	connectortest.TestVendor(t, connectortest.VendorFixture{
		Start: func(t *testing.T, sink connector.EventSink) connector.Vendor {
			keys := baseKeys(px.url)
			keys["health_interval"] = `"50ms"`
			v, err := Build(connector.VendorEnv{Instance: instance(keys), Logger: zap.NewNop(), Sink: sink})
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			return v
		},
		Join: func(t *testing.T, c *connector.Conversation, agent string) {
			if err := srv.Join(chat(t, c).Token, agent); err != nil {
				t.Fatal(err)
			}
		},
		Say: func(t *testing.T, c *connector.Conversation, text string) {
			if err := srv.Say(chat(t, c).Token, text); err != nil {
				t.Fatal(err)
			}
		},
		EndByAgent: func(t *testing.T, c *connector.Conversation) {
			if err := srv.EndByEvent(chat(t, c).Token); err != nil {
				t.Fatal(err)
			}
		},
		Lines: func(t *testing.T, c *connector.Conversation) []string { return lineTexts(chat(t, c).Lines) },
		Ended: func(t *testing.T, c *connector.Conversation) bool { return chat(t, c).Ended },
		Down:  func(*testing.T) { px.setDown(true) },
		Up:    func(*testing.T) { px.setDown(false) },
	})
}

// proxy forwards TCP connections on 127.0.0.1 to the fake; while down it
// cuts every connection and closes new ones at once.
type proxy struct {
	ln     net.Listener
	target string
	url    string // the fake's base URL with the proxy's address

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, base string) *proxy {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: u.Host, conns: map[net.Conn]struct{}{}}
	u.Host = ln.Addr().String()
	p.url = u.String()
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.setDown(true)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(in) {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil || !p.track(out) {
			in.Close()
			if out != nil {
				out.Close()
			}
			continue
		}
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

// track registers c unless the proxy is down.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	var cut []net.Conn
	if down {
		for c := range p.conns {
			cut = append(cut, c)
		}
	}
	p.mu.Unlock()
	for _, c := range cut {
		c.Close()
	}
}
