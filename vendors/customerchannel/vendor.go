// Package customerchannel is the Customer Channel vendor (Expertflow Hybrid
// Chat's Customer API): conversations are opened over REST and carried over
// one Socket.IO connection, on which connectord also registers as a
// connector, so that messages the chat server starts itself (campaigns)
// reach customers. See README.md.
package customerchannel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/sio"
)

// Kind is the "customerchannel" vendor kind.
func Kind() connector.VendorKind { return connector.NewVendorKind("customerchannel", New, Defaults) }

// Vendor is one chat server. It is safe for concurrent use.
type Vendor struct {
	name     string
	cfg      Config
	log      *zap.Logger
	sink     connector.EventSink
	outbound connector.OutboundSink
	http     *http.Client
	dial     func(context.Context, sio.Options) (sio.Client, error)

	status connector.Status // the connection's health, kept by Supervise
	quit   chan struct{}    // closed by Stop: ends background work
	wg     sync.WaitGroup   // the connection's goroutine and transcript fetches
	// lanes are the workers that handle the server's events, one ordered
	// lane per chat (workers.go); the connection's goroutine waits for
	// them before it ends.
	lanes *connector.Lanes[string]

	kick chan struct{} // buffered 1: wakes the reader when a join was noted (lost.go)

	mu      sync.Mutex
	client  sio.Client           // nil while disconnected
	gen     uint64               // counts connections: the one client belongs to
	changed chan struct{}        // closed and replaced when a line's state may have moved on
	live    map[string]*live     // by the server's conversationId
	lost    map[string]*lostChat // chats the server no longer has, by conversationId (lost.go)
	joinLog []joinNote           // joins emitted, for the reader to watch
	// blindGen is a connection on which silence after a join proves
	// nothing (an answer named no conversation).
	blindGen uint64
	role     role // the connector role among instances (lead.go)
	started  bool
	stopped  bool
	cancel   context.CancelFunc
}

// live is a conversation the adapter carries.
type live struct {
	conv  int64
	c     connector.Conversation // channel, customer and profile, for the transcript
	s     session
	agent string      // the agent who joined last
	leave *time.Timer // pending end after the agent left (a transfer cancels it)
	// resumed: carried on from a stored session (Resume), not opened by
	// this process; such a chat can be found lost at its first join.
	resumed bool
	// waiters counts the Resume and Send calls waiting on this chat: a
	// verdict that the server lost it goes to them instead of an event.
	waiters int
	// joinGen is the connection the chat was last joined on, answerGen
	// the last one on which the answer to a join was read.
	joinGen, answerGen uint64
	// lines records the customer lines emitted and confirmed: the core
	// retries a Send whose success it did not see, and the server keeps a
	// message it gets twice twice.
	lines lines
}

// session is what the core stores for a conversation.
type session struct {
	ConversationID  string `json:"conversationId"`
	ParticipantID   string `json:"participantId"`
	ParticipantName string `json:"participantName"`
}

var (
	_ connector.Vendor    = (*Vendor)(nil)
	_ connector.Resumer   = (*Vendor)(nil)
	_ connector.Checker   = (*Vendor)(nil)
	_ connector.Deliverer = (*Vendor)(nil)
)

// New builds a vendor from env without connecting.
func New(env connector.VendorEnv) (*Vendor, error) {
	cfg, err := decodeConfig(env.Instance)
	if err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = zap.NewNop()
	}
	// Its own pool rather than env.HTTPClient (Go's default pool, 2 idle
	// connections per host): every busy conversation may open a chat at
	// once. Calls are bounded by request_timeout contexts.
	hc := &http.Client{Transport: connector.NewTransport(connector.TransportOptions{Connections: cfg.HTTPConnections})}
	v := &Vendor{name: env.Instance.FullName(), cfg: cfg, log: log, sink: env.Sink, outbound: env.Outbound,
		http: hc, dial: sio.Dial, live: map[string]*live{}, lost: map[string]*lostChat{}, quit: make(chan struct{}),
		changed: make(chan struct{}), kick: make(chan struct{}, 1), role: role{kick: make(chan struct{}, 1)}}
	v.lanes = v.newLanes()
	return v, nil
}

// DeliverVia names the channel server-started messages go out on, for the
// configuration check.
func (v *Vendor) DeliverVia() (channel, key string) { return v.cfg.DeliverVia, "deliver_via" }

// Name returns the instance name, "customerchannel.hub".
func (v *Vendor) Name() string { return v.name }

// Start connects in the background and keeps the connection: every
// (re)connect registers the connector and rejoins every live conversation.
func (v *Vendor) Start(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.started || v.stopped {
		return errors.New("customerchannel: started twice or after Stop")
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	v.started, v.cancel = true, cancel
	v.wg.Add(1)
	go v.run(runCtx)
	return nil
}

// Stop closes the connection and waits for the loop and the workers (an
// event they had not started is dropped: an agent line comes again in the
// next connection's history); conversations stay live at the server and
// are rejoined by the next start (Resume).
func (v *Vendor) Stop(ctx context.Context) error {
	v.mu.Lock()
	if !v.stopped {
		close(v.quit)
	}
	v.stopped = true
	cancel, client := v.cancel, v.client
	v.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	v.lanes.Close()
	if client != nil {
		client.Close()
	}
	done := make(chan struct{})
	go func() { v.wg.Wait(); close(done) }()
	select {
	case <-done:
		v.http.CloseIdleConnections()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("customerchannel %s: stop: %w", v.name, ctx.Err())
	}
}

// Health is ready while the Socket.IO connection is up, with
// registerConnector sent when this instance leads; otherwise its detail
// says why not (connector.Status, kept by Supervise). Once instances share
// the store (Lead was called), the detail says whether this one is the
// registered connector.
func (v *Vendor) Health() connector.Health {
	h := v.status.Health()
	if !h.Ready {
		return h
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.client == nil { // between connections: up no longer, not yet down
		return connector.Health{Detail: "reconnecting"}
	}
	h.Detail = fmt.Sprintf("connected (eio %d)", v.cfg.EIO) + v.roleDetailLocked()
	return h
}

// Open starts the chat over REST, then joins it on the socket (or, while
// disconnected, on the next connect). A conversation whose chat the server
// lost gets a new chat: its requestId names the lost one, so that a server
// de-duplicating requests does not hand the lost chat back.
func (v *Vendor) Open(ctx context.Context, c *connector.Conversation) (json.RawMessage, error) {
	v.mu.Lock()
	replaces := v.replacedLocked(c.ID)
	v.mu.Unlock()
	r, err := v.initChat(ctx, c, replaces)
	if err != nil {
		return nil, err
	}
	name := r.Participant.Name
	if name == "" {
		name = v.initRequest(c, replaces, time.Now()).FirstName
	}
	s := session{ConversationID: r.ConversationID, ParticipantID: r.Participant.ID, ParticipantName: name}
	raw, _ := json.Marshal(s)
	v.mu.Lock()
	v.forgetLostLocked(c.ID)
	v.trackLocked(c, s, false)
	v.mu.Unlock()
	if err := v.join(ctx, s); err != nil {
		v.log.Info("join after init deferred to the next connect", zap.Error(connector.Redacted(err)))
	}
	return raw, nil
}

// Resume carries a stored session on: it is joined now or on the next
// connect, and Resume returns once the server answered the join (its
// history confirms the lines it already has: the core sends the rest after
// Resume) or did not (an error wrapping connector.ErrChatLost: the server
// no longer has the chat; see lost.go).
func (v *Vendor) Resume(ctx context.Context, c *connector.Conversation) error {
	var s session
	if err := json.Unmarshal(c.Session, &s); err != nil || s.ConversationID == "" {
		return connector.Permanent(fmt.Errorf("stored session unreadable: %s", c.Session))
	}
	v.mu.Lock()
	if err := v.lostErrLocked(s.ConversationID); err != nil {
		v.mu.Unlock()
		return err
	}
	v.trackLocked(c, s, true)
	v.mu.Unlock()
	if err := v.join(ctx, s); err != nil {
		v.log.Info("rejoin deferred to the next connect", zap.Error(connector.Redacted(err)))
	}
	return v.awaitAnswer(ctx, s.ConversationID)
}

// Send relays a customer message (KindText, or the KindContext line that
// starts a chat opened again after a lost one: the same customer line to
// the agent) as a ChatMessage and returns nil once the server confirmed it
// (its echo, or the history a rejoin replays), within send_confirm_timeout;
// otherwise a retryable error, and the core's next Send of the same message
// emits it again only if it is still unconfirmed (see confirm.go). A chat
// the server no longer has is an error wrapping connector.ErrChatLost.
func (v *Vendor) Send(ctx context.Context, c *connector.Conversation, m *connector.Message) error {
	s, err := v.sessionOf(c)
	if err != nil {
		return err
	}
	msg := message{Type: typeChat, ID: idPrefix + strconv.FormatInt(m.ID, 10), ConversationID: s.ConversationID,
		From: participant{ID: s.ParticipantID, Name: s.ParticipantName}, Text: m.Text,
		Timestamp: time.Now().UTC().Format(time.RFC3339)}
	for _, a := range m.Attachments {
		msg.Attachments = append(msg.Attachments, attachment{Type: a.ContentType, Name: a.Name, ContentURL: a.URL})
	}
	if m.ID == 0 { // no id to confirm it by
		return v.emit(ctx, evSend, msg)
	}
	return v.sendLine(ctx, s.ConversationID, m.ID, msg)
}

// End ends the chat at the server; a chat the server already ended is fine.
func (v *Vendor) End(ctx context.Context, c *connector.Conversation, reason string) error {
	var s session
	if err := json.Unmarshal(c.Session, &s); err != nil || s.ConversationID == "" {
		return nil // never opened at the server
	}
	v.mu.Lock()
	_, isLive := v.live[s.ConversationID]
	v.mu.Unlock()
	if !isLive {
		return nil
	}
	if err := v.emit(ctx, evEnd, map[string]string{"conversationId": s.ConversationID}); err != nil {
		return err
	}
	v.ended(s.ConversationID)
	return nil
}

func (v *Vendor) sessionOf(c *connector.Conversation) (session, error) {
	var s session
	if err := json.Unmarshal(c.Session, &s); err != nil || s.ConversationID == "" {
		return s, connector.Permanent(fmt.Errorf("conversation %d has no chat session", c.ID))
	}
	return s, nil
}

// trackLocked carries chat s of conversation c, opened by this process or
// resumed. A resumed chat starts with the agent the core knows, so that
// the rejoin's participants (or a participantJoined) of that agent is not
// a second join. v.mu is held.
func (v *Vendor) trackLocked(c *connector.Conversation, s session, resumed bool) {
	if l, ok := v.live[s.ConversationID]; ok {
		l.conv, l.c, l.s = c.ID, *c, s
		return
	}
	l := &live{conv: c.ID, c: *c, s: s, resumed: resumed}
	if resumed {
		l.agent = c.Agent
	}
	v.live[s.ConversationID] = l
}

func (v *Vendor) untrack(id string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.untrackLocked(id)
	v.changedLocked()
}

func (v *Vendor) untrackLocked(id string) {
	if l, ok := v.live[id]; ok && l.leave != nil {
		l.leave.Stop()
	}
	delete(v.live, id)
}

// join emits joinConversation for s and notes it for the reader, which
// waits for the answer (lost.go).
func (v *Vendor) join(ctx context.Context, s session) error {
	v.mu.Lock()
	client, gen := v.client, v.gen
	v.mu.Unlock()
	if client == nil {
		return errNotConnected
	}
	payload := map[string]string{"conversationId": s.ConversationID, "id": s.ParticipantID, "name": s.ParticipantName}
	if err := client.Emit(ctx, evJoin, payload); err != nil {
		return fmt.Errorf("emit %s: %w", evJoin, connector.Redacted(err))
	}
	v.mu.Lock()
	v.noteJoinLocked(s.ConversationID, gen)
	v.mu.Unlock()
	return nil
}

// errNotConnected is retried by the router: the message waits for the socket.
var errNotConnected = errors.New("customerchannel: not connected to the chat server")

// errStopping ends a wait that Stop cut short.
var errStopping = errors.New("customerchannel: stopping")

func (v *Vendor) emit(ctx context.Context, event string, payload any) error {
	v.mu.Lock()
	client := v.client
	v.mu.Unlock()
	if client == nil {
		return errNotConnected
	}
	if err := client.Emit(ctx, event, payload); err != nil {
		return fmt.Errorf("emit %s: %w", event, connector.Redacted(err))
	}
	return nil
}
