// Package xima is the Xima Chronicall Web Chat vendor: a chat starts with
// POST /chat/apiqueue (the API key, no captcha), customer lines go out as
// REST posts, and the agent's side comes back on the chat's own AWS SQS
// queue, long-polled with credentials Xima hands out. README.md in this
// folder says what the wire really does and the choices made where Xima's
// document is silent.
package xima

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// Open starts a chat: POST /chat/apiqueue with the API key, the skill and
// the customer's name, email and address, in a cookie jar of its own. It
// returns once Xima queued the chat; the queue's first poll and the
// still-heres start at once. An agent joins later (CHAT_STARTED).
func (v *Vendor) Open(ctx context.Context, c *connector.Conversation) (json.RawMessage, error) {
	ctx, cancel := v.group.Bind(ctx)
	defer cancel()
	v.take(c.ID) // a chat lost or left from an earlier Open: its still-heres stop, it dies at Xima
	j := newJar(nil)
	cs, err := v.api.startChat(ctx, v.request(c), j)
	if err != nil {
		return nil, err
	}
	st := sessionState{Chat: cs.ID, Queue: cs.Queue}
	ch := v.newChat(c.ID, st, j)
	if !v.register(ch, v.keep.next(time.Now())) {
		return nil, errStopped
	}
	ch.log.Info("xima chat queued", zap.String("queue", redactQueue(cs.Queue)))
	return ch.session(""), nil
}

// request is the ClientChatSessionRequest for c. customChatInfo shows the
// agent where the customer writes from.
func (v *Vendor) request(c *connector.Conversation) chatSessionRequest {
	info := []chatInfo{{Name: "Channel", Value: clip(c.Channel, maxName)}}
	if p := phoneOf(c); p != "" {
		info = append(info, chatInfo{Name: "Phone", Value: p})
	}
	if !isPhone(c.Customer) {
		info = append(info, chatInfo{Name: "Customer", Value: clip(c.Customer, maxName)})
	}
	return chatSessionRequest{InstallationID: v.cfg.InstallationID, Email: v.cfg.customerEmail(c),
		Name: v.cfg.customerName(c), Skill: v.cfg.Skill, APIKey: v.cfg.APIKey.Reveal(), CustomChatInfo: info}
}

// Send relays a customer line (KindText) or the context line of a chat
// opened again (KindContext): POST /chat. A line Xima took is recorded in
// the send-progress store, so the core's retry of it (same message id) is
// not posted again; a post whose answer was lost can be, as the API has no
// id to tell. A chat Xima no longer has is ErrChatLost.
func (v *Vendor) Send(ctx context.Context, c *connector.Conversation, m *connector.Message) error {
	ctx, cancel := v.group.Bind(ctx)
	defer cancel()
	if m.Kind != connector.KindText && m.Kind != connector.KindContext {
		return connector.Permanent(fmt.Errorf("xima cannot send a %s message", m.Kind))
	}
	ch, err := v.live(ctx, c)
	if err != nil {
		return err
	}
	chatID, _ := ch.ids()
	if done, err := v.alreadySent(ctx, ch, m.ID, chatID); err != nil || done {
		return err
	}
	if err := v.api.say(ctx, chatID, lineText(m), ch.jar); err != nil {
		return v.sendFailed(ctx, ch, err)
	}
	// Xima took it: a failure to record that must not make the core post it
	// again.
	if err := v.saveSent(ctx, m.ID, chatID); err != nil {
		ch.log.Info("xima line sent; its record not stored", zap.Int64("message", m.ID), zap.Error(err))
	}
	v.saveCookies(ctx, ch)
	return nil
}

// lineText is the text posted for m: its text, then its attachments' URLs
// (the API takes text only).
func lineText(m *connector.Message) string {
	parts := []string{m.Text}
	for _, a := range m.Attachments {
		parts = append(parts, a.URL)
	}
	return strings.TrimSpace(strings.Join(parts, "\n"))
}

// sendFailed maps a failed POST /chat: a client error makes the session
// check decide whether the chat is gone (ErrChatLost) or the line itself
// was refused; anything else is retried. When the chat's poller or
// keepalive stopped it first, they report the loss (EventLost) and this
// Send is retried.
func (v *Vendor) sendFailed(ctx context.Context, ch *chat, err error) error {
	status := statusOf(err)
	if status < 400 || status >= 500 || status == http.StatusTooManyRequests {
		return err
	}
	chatID, _ := ch.ids()
	_, gone, cerr := v.api.checkChat(ctx, chatID, ch.jar)
	switch {
	case cerr != nil:
		return fmt.Errorf("%w (and the session check failed: %v)", stripPermanent(err), connector.RedactError(cerr))
	case !gone:
		return err
	case !v.drop(ch):
		return fmt.Errorf("xima chat %s gone; its loss is reported: %w", chatID, stripPermanent(err))
	}
	ch.log.Info("xima chat gone at a send")
	return fmt.Errorf("xima chat %s: %v: %w", chatID, connector.RedactError(err), connector.ErrChatLost)
}

// stripPermanent makes a Permanent error retried.
func stripPermanent(err error) error {
	var p *connector.PermanentError
	if errors.As(err, &p) {
		return p.Err
	}
	return err
}

// live returns the conversation's running chat, resuming it if needed.
func (v *Vendor) live(ctx context.Context, c *connector.Conversation) (*chat, error) {
	if ch := v.chat(c.ID); ch != nil {
		return ch, nil
	}
	if err := v.Resume(ctx, c); err != nil {
		return nil, err
	}
	if ch := v.chat(c.ID); ch != nil {
		return ch, nil
	}
	return nil, errStopped
}

// End ends the chat because the customer or connectord did: POST /chat/end
// with the chat's cookies. A chat Xima no longer knows (a 4xx) is over
// already: nil.
func (v *Vendor) End(ctx context.Context, c *connector.Conversation, reason string) error {
	ctx, cancel := v.group.Bind(ctx)
	defer cancel()
	var j *jar
	v.mu.Lock()
	delete(v.reported, c.ID)
	v.mu.Unlock()
	if ch := v.take(c.ID); ch != nil {
		j = ch.jar
	} else {
		st, err := parseSession(c.Session)
		if err != nil {
			return nil // no chat was ever started
		}
		j = newJar(st.Cookies)
	}
	err := v.api.end(ctx, j)
	if s := statusOf(err); s >= 400 && s < 500 && s != http.StatusTooManyRequests && s != http.StatusRequestTimeout {
		v.log.Info("xima chat already over at end", zap.Int64("conversation", c.ID), zap.Int("status", s))
		return nil
	}
	if err != nil {
		return stripPermanent(err)
	}
	v.log.Info("xima chat ended", zap.Int64("conversation", c.ID), zap.String("reason", reason))
	return nil
}

// Resume goes on with a stored chat after a restart: GET
// /chat/queue?existingChatSessionId= must find it (204: gone, ErrChatLost),
// then its still-here is sent at once (Xima's 30 s ran while we were down)
// and its queue is read from where it was: messages not deleted come again.
func (v *Vendor) Resume(ctx context.Context, c *connector.Conversation) error {
	if v.chat(c.ID) != nil {
		return nil
	}
	st, err := parseSession(c.Session)
	if err != nil {
		return fmt.Errorf("xima session unusable (%v): %w", err, connector.ErrChatLost)
	}
	if v.reportedLost(c.ID, st.Chat) {
		return fmt.Errorf("xima chat %s: its loss is reported", st.Chat)
	}
	ctx, cancel := v.group.Bind(ctx)
	defer cancel()
	j := newJar(st.Cookies)
	cs, gone, err := v.api.checkChat(ctx, st.Chat, j)
	switch s := statusOf(err); {
	case gone, s == http.StatusNotFound, s == http.StatusGone:
		v.log.Info("xima chat gone while we were away", zap.Int64("conversation", c.ID), zap.String("chat_session", st.Chat))
		return fmt.Errorf("xima chat %s is gone: %w", st.Chat, connector.ErrChatLost)
	case err != nil:
		return stripPermanent(err) // a refused check is not the conversation's end: try again
	}
	moved := cs.Queue != "" && cs.Queue != st.Queue
	if moved {
		st.Queue = cs.Queue
	}
	ch := v.newChat(c.ID, st, j)
	if !v.register(ch, time.Now()) {
		return errStopped
	}
	if moved || j.changed() {
		// Stored under the vendor's lifetime, not the caller's deadline.
		life, stop := v.group.Bind(context.WithoutCancel(ctx))
		v.saveSession(life, ch)
		stop()
	}
	ch.log.Info("xima chat resumed", zap.String("queue", redactQueue(st.Queue)))
	return nil
}

// stillHere is the keepalive's POST /chat/still-here for c. A client error
// asks whether the chat is gone (EventLost).
func (v *Vendor) stillHere(ctx context.Context, c *chat) error {
	chatID, _ := c.ids()
	err := v.api.stillHere(c.ctx, chatID, c.jar)
	if err == nil {
		v.saveCookies(c.ctx, c)
		return nil
	}
	if c.closed() {
		return nil
	}
	c.log.Warn("xima still-here failed", zap.String("error", connector.RedactError(err)))
	if s := statusOf(err); s >= 400 && s < 500 && s != http.StatusTooManyRequests {
		v.checkLost(ctx, c, "still-here refused")
	}
	return err
}

// sendRecord is the send-progress record of a line Xima took: the chat it
// went to. On another chat (the first was lost) the line is posted again:
// its new agent has not seen it.
type sendRecord struct {
	Chat string `json:"chat"`
}

func (v *Vendor) alreadySent(ctx context.Context, ch *chat, id int64, chatID string) (bool, error) {
	if id == 0 {
		return false, nil
	}
	b, err := v.progress.LoadProgress(ctx, id)
	if err != nil {
		return false, fmt.Errorf("load xima send progress: %w", err)
	}
	var r sendRecord
	if len(b) == 0 || len(b) > 1024 || json.Unmarshal(b, &r) != nil {
		return false, nil
	}
	if r.Chat == chatID {
		ch.log.Debug("xima line already taken; not posted again", zap.Int64("message", id))
		return true, nil
	}
	return false, nil
}

func (v *Vendor) saveSent(ctx context.Context, id int64, chatID string) error {
	if id == 0 {
		return nil
	}
	b, _ := json.Marshal(sendRecord{Chat: chatID})
	if err := v.progress.SaveProgress(ctx, id, b); err != nil {
		return fmt.Errorf("save xima send progress: %w", err)
	}
	return nil
}
