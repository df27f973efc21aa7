package cobrowser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"mellium.im/xmpp/jid"

	"github.com/connectord/connectord/connector"
)

// sessionState is the vendor session the core stores with the conversation:
// all a restarted daemon needs to log the chat in again. It holds the
// chat's XMPP password: CoBrowser made the account for this one chat, and
// the store is the daemon's private state.
type sessionState struct {
	ChatSession string `json:"chat_session,omitempty"` // the chatsession id
	Credentials string `json:"credentials,omitempty"`  // the xmppcredentials id
	User        string `json:"user,omitempty"`
	Password    string `json:"password,omitempty"`
	Domain      string `json:"domain,omitempty"`
	Resource    string `json:"resource,omitempty"`
	AgentJID    string `json:"agent_jid,omitempty"`
	Agent       string `json:"agent,omitempty"` // the name the customer is told
	// NoAgent: no chat was started (no availability, inactive campaign, a
	// blocked customer); nothing to resume or end.
	NoAgent bool   `json:"no_agent,omitempty"`
	Why     string `json:"why,omitempty"`
	// Survey is the survey put to the customer after the agent closed the
	// chat, while its answer is awaited.
	Survey *pendingSurvey `json:"survey,omitempty"`
}

func (st sessionState) marshal() json.RawMessage {
	b, _ := json.Marshal(st) // strings and bools cannot fail
	return b
}

// maxSession bounds a stored session read back.
const maxSession = 16 << 10

func parseSession(raw json.RawMessage) (sessionState, error) {
	var st sessionState
	if len(raw) == 0 {
		return st, errors.New("no cobrowser session stored")
	}
	if len(raw) > maxSession {
		return st, fmt.Errorf("stored cobrowser session over %d bytes", maxSession)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("stored cobrowser session: %w", err)
	}
	return st, nil
}

// errDone ends a chat's supervision for a reason already dealt with (the
// chat is over). It is returned Permanent so that Supervise stops.
var errDone = errors.New("cobrowser chat stream no longer needed")

// session is one conversation's chat: its stream, reconnected under
// connector.Supervise, and the goroutine that turns stanzas into events,
// one at a time and in order.
type session struct {
	v      *Vendor
	id     int64
	log    *zap.Logger
	state  sessionState // fixed once the session runs
	block  string       // the customer's key in the block list
	status connector.Status

	pings atomic.Int64 // server pings answered, for tests

	done chan struct{} // closed when run returned (or never ran)
	lost chan struct{} // closed once the chat is known gone

	in *inbox // stanzas read, waiting for their events

	mu      sync.Mutex
	cancel  context.CancelFunc
	st      *stream
	ready   chan struct{} // closed while st is set
	ending  bool
	halting bool           // a handler said the chat is over: the run ends
	sent    map[int64]bool // customer lines confirmed in this process

	// Owned by the dispatcher (one at a time, see inbox).
	agent    string
	typing   bool
	away     bool        // the agent's absence was told
	awayWait *time.Timer // pending: the agent went unavailable
	awayGen  uint64      // numbers awayWait, so that a stale end is ignored
}

func (v *Vendor) newSession(c *connector.Conversation, st sessionState) *session {
	return &session{v: v, id: c.ID, log: connector.LightWith(v.log, zap.Int64("conversation", c.ID)), state: st,
		block: blockKey(c), in: newInbox(), done: make(chan struct{}), lost: make(chan struct{}), ready: make(chan struct{}),
		sent: map[int64]bool{}, agent: st.Agent}
}

func blockKey(c *connector.Conversation) string { return c.Channel + "\x00" + c.Customer }

func (s *session) login() (login, error) { return loginOf(s.state) }

// setStream installs the live stream (nil: down).
func (s *session) setStream(st *stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == nil {
		if s.st != nil {
			s.ready = make(chan struct{})
		}
	} else if s.st == nil {
		close(s.ready)
	}
	s.st = st
}

// waitReady waits for a live stream, within ctx.
func (s *session) waitReady(ctx context.Context) (*stream, error) {
	for {
		s.mu.Lock()
		st, ready, ending := s.st, s.ready, s.ending
		s.mu.Unlock()
		if st != nil {
			return st, nil
		}
		if ending {
			return nil, errors.New("the cobrowser chat is closing")
		}
		select {
		case <-ready:
		case <-s.lost:
			return nil, s.lostError()
		case <-s.done:
			return nil, connector.Permanent(errors.New("the cobrowser chat is over"))
		case <-ctx.Done():
			return nil, fmt.Errorf("the cobrowser chat's stream is still reconnecting: %w", ctx.Err())
		}
	}
}

func (s *session) lostError() error {
	return fmt.Errorf("cobrowser chat session %s: %w", s.state.ChatSession, connector.ErrChatLost)
}

func (s *session) isLost() bool {
	select {
	case <-s.lost:
		return true
	default:
		return false
	}
}

// connect logs the chat in and sends the document's presence sequence: our
// own presence, subscribe to the agent, then available with show=chat.
// Every login does it, so that a stream that came back is in the chat
// again; a second subscribe to a contact already subscribed changes
// nothing at the server.
func (s *session) connect(ctx context.Context, announce bool) (*stream, error) {
	l, err := s.login()
	if err != nil {
		return nil, connector.Permanent(err)
	}
	st, err := s.v.dial(ctx, l, s.log)
	if err != nil {
		return nil, err
	}
	if !announce {
		return st, nil
	}
	agent := s.state.AgentJID
	for _, b := range [][]byte{
		presenceStanza(st.nextID(), "", ""),
		presenceStanza(st.nextID(), agent, "subscribe"),
		availableStanza(st.nextID(), agent),
	} {
		if err := st.write(b); err != nil {
			st.close()
			return nil, err
		}
	}
	return st, nil
}

// start runs the session on first, the stream Open or Resume made; false
// when the vendor is stopping (first is then closed).
func (s *session) start(first *stream) bool {
	// Made here, not in the goroutine: stop may cancel before it runs.
	ctx, cancel := s.v.lifetime()
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	s.setStream(first)
	// cancel once run returns: a finished chat keeps no hook on the vendor.
	if !s.v.group.Go(func(context.Context) { defer cancel(); s.run(ctx, first) }) {
		cancel()
		s.setStream(nil)
		first.close()
		close(s.done)
		return false
	}
	return true
}

// settle waits until the server has taken the presence sequence (its answer
// to a ping written after it), so that the chat is visible to the agent
// when Open or Resume returns. A stream that fails here reconnects on its
// own: the chat started all the same.
func (s *session) settle(ctx context.Context, st *stream) {
	if err := st.confirm(ctx, s.v.cfg.SendTimeout); err != nil {
		s.log.Info("the XMPP server did not confirm the presence sequence", zap.Error(err))
	}
}

// stop ends the run goroutine and waits for it.
func (s *session) stop() {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	<-s.done
}

// run serves the chat until it is over or ctx ends: first on the stream it
// was started with, then, each time the stream drops, on a new login with
// the stored credentials, at the pace of the reconnect policy, until the
// server refuses them (the chat is gone: EventLost).
func (s *session) run(ctx context.Context, first *stream) {
	defer close(s.done)
	defer s.v.forget(s)
	defer s.stopAway() // after the inbox closed: no dispatcher runs then
	defer s.in.idle(true)
	s.in.open(ctx)
	err := connector.Supervise(ctx, s.v.cfg.reconnect(), &s.status, s.log, func(ctx context.Context, up func()) error {
		st := first
		first = nil
		if st == nil {
			var err error
			if st, err = s.connect(ctx, true); err != nil {
				if errors.Is(err, errRefused) {
					return connector.Permanent(err)
				}
				return err
			}
			s.log.Info("cobrowser chat stream back")
		}
		up()
		return s.serve(ctx, st)
	})
	s.over(ctx, err)
}

// over deals with supervision having stopped for good: a chat whose
// credentials are refused is gone (EventLost: the core opens a new one).
func (s *session) over(ctx context.Context, err error) {
	if err == nil || errors.Is(err, errDone) {
		return
	}
	s.v.forget(s)
	close(s.lost)
	s.log.Warn("cobrowser chat gone; the conversation gets a new one", zap.String("error", connector.RedactError(err)))
	s.emit(ctx, connector.Event{Type: connector.EventLost, Reason: connector.RedactError(err)})
}

// serve reads st on the chat's one long-lived goroutine until it drops (an
// error: Supervise reconnects) or the chat is over (errDone). The reader
// only reads: our pings' answers settle at once, the server's requests are
// answered on a short-lived goroutine, everything else goes to the inbox,
// whose dispatcher turns it into events in order. The vendor's keepalive
// pings the stream.
func (s *session) serve(ctx context.Context, st *stream) error {
	s.setStream(st)
	defer s.setStream(nil)
	stop := context.AfterFunc(ctx, st.close) // unblocks the reader
	defer stop()
	defer st.close()
	if !s.v.pinger.Add(st) { // the vendor is stopping
		return connector.Permanent(errDone)
	}
	defer s.v.pinger.Remove(st)
	err := st.read(func(x inbound) bool { return s.route(ctx, st, x) })
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// What was read is handled before the stream counts as dropped.
	s.in.idle(false)
	if s.isEnding() || s.halted() {
		return connector.Permanent(errDone)
	}
	if err == nil {
		err = errors.New("stream reader stopped")
	}
	return fmt.Errorf("cobrowser chat stream dropped: %w", connector.Redacted(err))
}

// maxIQs bounds the server's requests being answered at once on a stream.
const maxIQs = 16

// route runs on the reading goroutine and never writes: our pings' answers
// settle at once, iq requests are answered on a goroutine of their own (a
// slow sink never delays them), everything else is queued in order.
func (s *session) route(ctx context.Context, st *stream, x inbound) bool {
	if x.Kind != "iq" {
		return s.push(ctx, st, x)
	}
	if (x.Type == "result" || x.Type == "error") && st.answered(x) {
		return true
	}
	if x.Type != "get" && x.Type != "set" {
		return true
	}
	if st.iqs.Add(1) > maxIQs {
		st.iqs.Add(-1)
		s.log.Warn("xmpp: too many iq requests at once; one left unanswered")
		return true
	}
	if !s.v.group.Go(func(context.Context) { defer st.iqs.Add(-1); s.answerIQ(st, x) }) {
		st.iqs.Add(-1)
	}
	return true
}

// answerIQ answers a ping of the server (CoBrowser pings every 10 s and
// drops a visitor that does not answer) and refuses other requests.
func (s *session) answerIQ(st *stream, x inbound) {
	b := iqErrorStanza(x.ID, x.From)
	if x.Ping {
		b = iqResultStanza(x.ID, x.From)
	}
	if st.write(b) == nil && x.Ping {
		s.pings.Add(1)
	}
}

// halt ends the chat's run after a handler said it is over: the stream is
// closed, which ends the reader, and serve returns errDone.
func (s *session) halt(st *stream) {
	s.mu.Lock()
	s.halting = true
	s.mu.Unlock()
	st.close()
}

func (s *session) halted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.halting
}

// handle turns one stanza into events; false once the chat is over.
func (s *session) handle(ctx context.Context, st *stream, x inbound) bool {
	if s.isEnding() {
		return true
	}
	switch x.Kind {
	case "presence":
		return s.presence(ctx, st, x)
	case "message":
		return s.message(ctx, st, x)
	}
	return true
}

// fromSelf reports whether a stanza comes from our own account (the
// server's echo of our presence); those are not the agent's. The agent's
// JID is not used as a filter: CoBrowser's stanzas may come from another.
func (s *session) fromSelf(st *stream, from string) bool {
	if from == "" {
		return false
	}
	j, err := jid.Parse(from)
	return err == nil && j.Bare().Equal(st.self)
}

func (s *session) presence(ctx context.Context, st *stream, x inbound) bool {
	if s.fromSelf(st, x.From) {
		return true
	}
	switch x.Type {
	case "subscribe":
		s.subscribed(st, x.From)
	case "unavailable":
		s.agentUnavailable()
	case "":
		return s.agentAvailable(ctx)
	case "error":
		s.log.Info("xmpp presence error", zap.String("from", x.From))
	}
	return true
}

// subscribed answers the agent's subscribe as the document does: subscribed,
// then the active chat state. It goes to whoever asked and, when that is
// not the agent JID CoBrowser gave, to that too.
func (s *session) subscribed(st *stream, from string) {
	to := []string{s.state.AgentJID}
	if j, err := jid.Parse(from); err == nil && j.Bare().String() != s.state.AgentJID {
		to = append([]string{j.Bare().String()}, to...)
	}
	for _, t := range to {
		if err := st.write(presenceStanza(st.nextID(), t, "subscribed")); err != nil {
			return // the reader sees the stream closed
		}
	}
	_ = st.write(chatStateStanza(st.nextID(), s.state.AgentJID, stateActive))
}

// message relays what the agent's side sends: a transfer (never its body),
// blocked, closed, text, typing.
func (s *session) message(ctx context.Context, st *stream, x inbound) bool {
	if x.Type == "error" || s.fromSelf(st, x.From) {
		if x.Type == "error" {
			s.log.Info("xmpp message error", zap.String("from", x.From), zap.String("id", x.ID))
		}
		return true
	}
	if x.Internal {
		return s.transferred(ctx, x)
	}
	if x.has(stateBlocked) {
		return s.blocked(ctx, st)
	}
	if text, format := agentText(x); text != "" {
		if x.Nick != "" {
			s.agent = x.Nick
		}
		s.typing = false
		if !s.emit(ctx, connector.Event{Type: connector.EventText, Text: text, Format: format,
			Agent: s.agent, SourceID: lineSourceID(x)}) {
			return false
		}
	}
	if x.has(stateClosed) {
		return s.closedByAgent(ctx, st)
	}
	return s.chatState(ctx, x)
}

// chatState relays the agent's typing: composing is on; paused, active,
// inactive and gone turn it off if it was on.
func (s *session) chatState(ctx context.Context, x inbound) bool {
	switch {
	case x.has(stateComposing) && !s.typing:
		s.typing = true
	case s.typing && (x.has(statePaused) || x.has(stateActive) || x.has(stateInactive) || x.has(stateGone)):
		s.typing = false
	default:
		return true
	}
	return s.emit(ctx, connector.Event{Type: connector.EventTyping, Typing: s.typing})
}

func (s *session) transferred(ctx context.Context, x inbound) bool {
	name := x.ForwardFirst
	if name == "" {
		name = x.ForwardNick
	}
	if name == "" {
		s.log.Info("cobrowser internal message without a new agent; not relayed")
		return true
	}
	s.agent = name
	s.log.Info("cobrowser chat transferred", zap.String("agent", name))
	return s.emit(ctx, connector.Event{Type: connector.EventTransferred, Agent: name, SourceID: lineSourceID(x)})
}

// closedByAgent answers the agent's closed with ours, as CoBrowser's
// reporting needs, ends the stream and the conversation.
func (s *session) closedByAgent(ctx context.Context, st *stream) bool {
	s.finishStream(st)
	if s.v.cfg.Survey && s.askSurvey(ctx) {
		s.log.Info("cobrowser chat closed by the agent; survey asked")
		return false
	}
	s.log.Info("cobrowser chat closed by the agent")
	s.emit(ctx, connector.Event{Type: connector.EventEnded, Reason: "agent"})
	return false
}

// blocked: the agent blocked the customer. The chat ends as for closed, the
// customer is told, and for block_duration a new chat from the same
// customer is refused without asking CoBrowser.
func (s *session) blocked(ctx context.Context, st *stream) bool {
	s.finishStream(st)
	if d := s.v.cfg.BlockDuration; d > 0 {
		now := s.v.now()
		s.v.blocks.add(s.block, now.Add(d), now)
	}
	s.log.Info("cobrowser chat: the agent blocked the customer", zap.Duration("for", s.v.cfg.BlockDuration))
	// The blocked notice is the end notice: the core's "write again" end
	// text would contradict it.
	s.emit(ctx, connector.Event{Type: connector.EventEnded, Reason: "blocked", Text: s.v.cfg.BlockedNotice})
	return false
}

// finishStream sends closed, waits (briefly) for the server to take it, and
// ends the stream: skipping closed breaks CoBrowser's reporting.
func (s *session) finishStream(st *stream) {
	s.mu.Lock()
	s.ending = true
	s.mu.Unlock()
	if err := st.write(chatStateStanza(st.nextID(), s.state.AgentJID, stateClosed)); err == nil {
		ctx, unbind := s.v.lifetime()
		ctx, cancel := context.WithTimeout(ctx, s.v.cfg.SendTimeout)
		if err := st.confirm(ctx, s.v.cfg.SendTimeout); err != nil {
			s.log.Info("closed sent; the server did not confirm it", zap.Error(err))
		}
		cancel()
		unbind()
	}
	st.hangUp()
}

func (s *session) isEnding() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ending
}

// ---- agent presence, debounced --------------------------------------------

// An agent's page refresh sends unavailable then available within a
// second; only an absence that lasts presence_debounce is told, and its end
// only when it was told.

func (s *session) agentUnavailable() {
	if s.awayWait == nil && !s.away {
		s.awayGen++
		gen := s.awayGen
		s.awayWait = time.AfterFunc(s.v.cfg.PresenceDebounce, func() { s.pushAway(gen) })
	}
}

// awayDue is the end of the debounce numbered gen: told unless the agent
// came back meanwhile.
func (s *session) awayDue(ctx context.Context, gen uint64) {
	if s.awayWait != nil && gen == s.awayGen {
		s.agentAway(ctx)
	}
}

func (s *session) agentAvailable(ctx context.Context) bool {
	if s.awayWait != nil {
		s.stopAway()
		return true
	}
	if !s.away {
		return true
	}
	s.away = false
	if t := s.v.cfg.AgentBackNotice; t != "" {
		return s.emit(ctx, connector.Event{Type: connector.EventNotice, Text: t})
	}
	return true
}

func (s *session) agentAway(ctx context.Context) {
	s.awayWait = nil
	s.away = true
	if t := s.v.cfg.AgentAwayNotice; t != "" {
		s.emit(ctx, connector.Event{Type: connector.EventNotice, Text: t})
	}
}

func (s *session) stopAway() {
	if s.awayWait != nil {
		s.awayWait.Stop()
		s.awayWait = nil
	}
}

// emit commits e through the sink. False means e was not stored (ctx ended,
// or the sink refused it for good: logged) and the chat's reader stops.
func (s *session) emit(ctx context.Context, e connector.Event) bool {
	e.ConversationID = s.id
	err := s.v.deliver(ctx, e)
	if err != nil && ctx.Err() == nil {
		s.log.Error("cobrowser event not stored; the chat's stream is dropped", zap.Error(err))
	}
	return err == nil
}

// agentText is the text of an agent line and its format: the XHTML-IM body
// when CoBrowser sends one, else the body, HTML when it holds HTML tags.
func agentText(x inbound) (string, connector.Format) {
	if strings.TrimSpace(x.HTML) != "" {
		return x.HTML, connector.FormatHTML
	}
	if strings.TrimSpace(x.Body) == "" {
		return "", connector.FormatPlain
	}
	if looksHTML(x.Body) {
		return x.Body, connector.FormatHTML
	}
	return x.Body, connector.FormatPlain
}

// lineSourceID is the agent line's id for the core's de-duplication:
// CoBrowser's uid attribute, else the stanza id; "" when it has neither.
func lineSourceID(x inbound) string {
	switch {
	case x.UID != "":
		return "uid:" + x.UID
	case x.ID != "":
		return "id:" + x.ID
	}
	return ""
}
