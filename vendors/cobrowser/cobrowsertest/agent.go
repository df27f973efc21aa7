package cobrowsertest

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Stanza is what the Agent received (server pings excepted: the Agent
// answers them itself).
type Stanza struct {
	Kind   string // "message", "presence" or "iq"
	From   string // full JID as delivered
	To     string
	ID     string
	Type   string // the type attribute: "chat", "subscribe", "unavailable", ...
	Body   string // message body
	Show   string // presence <show>
	Status string // presence <status>
	State  string // chat-state child of a message: active, composing, paused, inactive, gone, or CoBrowser's closed, blocked
	Raw    string // the stanza as XML (compact, re-rendered)
}

// Message is a Stanza of kind "message" with a body: a visitor's line.
type Message = Stanza

// Bare is the JID without its resource.
func (s Stanza) Bare() string { return bare(s.From) }

func bare(jid string) string {
	b, _, _ := strings.Cut(jid, "/")
	return b
}

// Agent is the scripted agent: an XMPP client logged in as the agent
// account (TCP, STARTTLS with the test CA). It accepts every visitor's
// subscription the way CoBrowser does (subscribed, then its own subscribe),
// answers pings, records everything it receives, and acts on command:
// Say, Composing, Close, Block, Forward, Flap.
type Agent struct {
	JID       string // bound full JID
	BareJID   string
	Nick      string // sent in <nick xmlns="http://jabber.org/protocol/nick">
	Firstname string

	conn    *xmppConn
	onEvent func(visitor, event string) // the REST fake follows chat sessions through it
	cancel  context.CancelFunc
	done    chan struct{}
	recorder

	mu  sync.Mutex
	seq int
}

// recorder keeps received stanzas and lets callers wait for them.
type recorder struct {
	rmu     sync.Mutex
	changed chan struct{} // closed and replaced at each new stanza and at the end
	stanzas []Stanza
	runErr  error // why the stream ended
}

func newRecorder() recorder { return recorder{changed: make(chan struct{})} }

func (r *recorder) record(s Stanza) {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	r.stanzas = append(r.stanzas, s)
	close(r.changed)
	r.changed = make(chan struct{})
}

// ended records why the stream ended (never nil).
func (r *recorder) ended(err error) {
	if err == nil {
		err = io.EOF
	}
	r.rmu.Lock()
	defer r.rmu.Unlock()
	r.runErr = err
	close(r.changed)
	r.changed = make(chan struct{})
}

func newAgent(ctx context.Context, e *Ejabberd, user, password, nick, firstname string, onEvent func(string, string)) (*Agent, error) {
	conn, err := dial(ctx, login{
		TCPAddr: e.TCPAddr, TLS: e.pki.clientTLS(e.Domain), Domain: e.AgentDomain,
		User: user, Password: password, Resource: "agent-" + randomHex(4),
	})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	a := &Agent{
		JID: conn.JID, BareJID: bare(conn.JID), Nick: nick, Firstname: firstname,
		conn: conn, onEvent: onEvent, cancel: cancel, done: make(chan struct{}),
		recorder: newRecorder(),
	}
	// Initial presence: without it ejabberd does not deliver messages sent
	// to the agent's bare JID ("User session not found").
	if err := conn.Send(`<presence/>`); err != nil {
		conn.Close()
		cancel()
		return nil, err
	}
	replies := make(chan string, 64)
	go a.writer(runCtx, replies)
	go a.run(runCtx, replies)
	return a, nil
}

// run reads until the stream ends. Answers are queued to writer rather than
// written here, so a slow socket never stalls the reader.
func (a *Agent) run(ctx context.Context, replies chan<- string) {
	defer close(a.done)
	err := a.conn.Run(ctx, func(n *node) {
		s := toStanza(n)
		for _, r := range a.react(s) {
			select {
			case replies <- r:
			case <-ctx.Done():
			}
		}
		a.record(s)
	})
	a.ended(err)
}

func (a *Agent) writer(ctx context.Context, replies <-chan string) {
	for {
		select {
		case r := <-replies:
			a.conn.Send(r) // a failed write ends the stream; run reports it
		case <-ctx.Done():
			return
		}
	}
}

// react is CoBrowser's agent side: a visitor's subscribe is approved and
// answered with the agent's own subscribe (which the visitor must answer
// with subscribed and an active chat state).
func (a *Agent) react(s Stanza) []string {
	from := s.Bare()
	if from == "" || from == a.BareJID {
		return nil
	}
	switch {
	case s.Kind == "presence" && s.Type == "subscribe":
		return []string{
			fmt.Sprintf(`<presence to="%s" type="subscribed"/>`, esc(from)),
			fmt.Sprintf(`<presence to="%s" type="subscribe"/>`, esc(from)),
		}
	case s.Kind == "presence" && s.Type == "" && a.onEvent != nil:
		a.onEvent(from, "available")
	case s.Kind == "presence" && s.Type == "unavailable" && a.onEvent != nil:
		a.onEvent(from, "unavailable")
	case s.Kind == "message" && s.State == "closed" && a.onEvent != nil:
		a.onEvent(from, "closed")
	}
	return nil
}

func toStanza(n *node) Stanza {
	s := Stanza{
		Kind: n.XMLName.Local, From: n.attr("from"), To: n.attr("to"),
		ID: n.attr("id"), Type: n.attr("type"), Raw: n.String(),
	}
	if b := n.child(nsClient, "body"); b != nil {
		s.Body = b.Text
	}
	if c := n.child(nsClient, "show"); c != nil {
		s.Show = c.Text
	}
	if c := n.child(nsClient, "status"); c != nil {
		s.Status = c.Text
	}
	for _, c := range n.Nodes {
		if c.XMLName.Space == nsChatStates {
			s.State = c.XMLName.Local
		}
	}
	return s
}

// Stanzas is everything received so far, in order.
func (r *recorder) Stanzas() []Stanza {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	return append([]Stanza(nil), r.stanzas...)
}

// Messages is every line (a message with a body) received so far.
func (r *recorder) Messages() []Message {
	var out []Message
	for _, s := range r.Stanzas() {
		if isLine(s) {
			out = append(out, s)
		}
	}
	return out
}

func isLine(s Stanza) bool { return s.Kind == "message" && s.Body != "" && s.Type != "error" }

// WaitMessage waits until n lines (messages with a body) arrived and
// returns the first n.
func (r *recorder) WaitMessage(ctx context.Context, n int) ([]Message, error) {
	var got []Message
	err := r.wait(ctx, func(all []Stanza) bool {
		got = got[:0]
		for _, s := range all {
			if isLine(s) {
				got = append(got, s)
			}
		}
		return len(got) >= n
	})
	if err != nil {
		return got, fmt.Errorf("waiting for %d lines (%d came): %w", n, len(got), err)
	}
	return got[:n], nil
}

// WaitStanza waits for the first stanza (received before or after the
// call) that match accepts.
func (r *recorder) WaitStanza(ctx context.Context, match func(Stanza) bool) (Stanza, error) {
	var found Stanza
	err := r.wait(ctx, func(all []Stanza) bool {
		for _, s := range all {
			if match(s) {
				found = s
				return true
			}
		}
		return false
	})
	return found, err
}

// WaitState waits for a chat-state message (e.g. "closed", "active",
// "composing") from the peer with this bare JID ("" for any).
func (r *recorder) WaitState(ctx context.Context, from, state string) (Stanza, error) {
	s, err := r.WaitStanza(ctx, func(s Stanza) bool {
		return s.Kind == "message" && s.State == state && (from == "" || s.Bare() == from)
	})
	if err != nil {
		return s, fmt.Errorf("waiting for chat state %q from %q: %w", state, from, err)
	}
	return s, nil
}

// Ended returns why the stream ended, nil while it runs.
func (r *recorder) Ended() error {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	return r.runErr
}

// WaitEnded waits until the stream ended and returns why.
func (r *recorder) WaitEnded(ctx context.Context) error {
	for {
		r.rmu.Lock()
		changed, runErr := r.changed, r.runErr
		r.rmu.Unlock()
		if runErr != nil {
			return runErr
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (r *recorder) wait(ctx context.Context, done func([]Stanza) bool) error {
	for {
		r.rmu.Lock()
		all, changed, runErr := r.stanzas, r.changed, r.runErr
		r.rmu.Unlock()
		if done(all) {
			return nil
		}
		if runErr != nil {
			return fmt.Errorf("the stream ended: %w", runErr)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (a *Agent) nextID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	return fmt.Sprintf("agent-%d-%s", a.seq, randomHex(3))
}

// message sends a chat message to a visitor (a bare or full JID) with the
// agent's nick, as CoBrowser's agent side does; inner is the raw XML of
// the other children.
func (a *Agent) message(to, inner string) error {
	stanza := fmt.Sprintf(`<message type="chat" to="%s" id="%s">%s<nick xmlns="%s">%s</nick></message>`,
		esc(to), a.nextID(), inner, nsNick, esc(a.Nick))
	return a.conn.Send(stanza)
}

// Say sends a line: a body with an active chat state.
func (a *Agent) Say(to, text string) error {
	return a.message(to, fmt.Sprintf(`<body>%s</body><active xmlns="%s"/>`, esc(text), nsChatStates))
}

// Composing sends the composing chat state (on) or paused (off).
func (a *Agent) Composing(to string, on bool) error {
	state := "paused"
	if on {
		state = "composing"
	}
	return a.message(to, fmt.Sprintf(`<%s xmlns="%s"/>`, state, nsChatStates))
}

// Close ends the chat from the agent's side: CoBrowser's <closed/> in the
// chat-states namespace.
func (a *Agent) Close(to string) error {
	if err := a.message(to, fmt.Sprintf(`<closed xmlns="%s"/>`, nsChatStates)); err != nil {
		return err
	}
	if a.onEvent != nil {
		a.onEvent(bare(to), "closed")
	}
	return nil
}

// Block sends CoBrowser's <blocked/> (chat-states namespace).
func (a *Agent) Block(to string) error {
	return a.message(to, fmt.Sprintf(`<blocked xmlns="%s"/>`, nsChatStates))
}

// Forward sends the transfer's internal message with internalText as its
// body and chat_forwarding (the document's is "visitor_forward_message"),
// naming the document's example agent (agent3, Pedro) as the new one.
func (a *Agent) Forward(to, internalText string) error {
	return a.ForwardTo(to, internalText, "agent3", "Pedro")
}

// ForwardTo is Forward naming the new agent.
func (a *Agent) ForwardTo(to, internalText, nickname, firstname string) error {
	return a.message(to, fmt.Sprintf(`<body>%s</body><internal xmlns="%s"><chat_forwarding>%s</chat_forwarding>`+
		`<agent><nickname>%s</nickname><firstname>%s</firstname></agent></internal>`,
		esc(internalText), nsForward, esc(internalText), esc(nickname), esc(firstname)))
}

// Flap sends unavailable then available presence n times, as an agent's
// page refresh does; visitors subscribed to the agent receive each.
func (a *Agent) Flap(n int) error {
	for range n {
		if err := a.conn.Send(`<presence type="unavailable"/>`); err != nil {
			return err
		}
		if err := a.conn.Send(`<presence><status>available</status></presence>`); err != nil {
			return err
		}
	}
	return nil
}

// Send writes a raw stanza, for what the methods above do not cover.
func (a *Agent) Send(stanza string) error { return a.conn.Send(stanza) }

// Logout ends the agent's session (unavailable presence, end of stream).
func (a *Agent) Logout() error {
	a.conn.Send(`<presence type="unavailable"/>`)
	err := a.conn.Close()
	a.cancel()
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
	}
	return err
}
