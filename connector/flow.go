package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// attempt makes one try at moving m; nil means done (sent, or settled).
func (r *Router) attempt(ctx context.Context, c *Conversation, m *Message) error {
	if m.Direction == ToCustomer {
		return r.toCustomer(ctx, c, m)
	}
	v, ok := r.vendors[c.Vendor]
	if !ok {
		return Permanent(fmt.Errorf("vendor %s is not configured", c.Vendor))
	}
	if done, err := r.carry(ctx, v, c, m); done || err != nil {
		return err
	}
	if m.Kind == KindEnd {
		if err := v.End(ctx, c, m.Text); err != nil {
			return err
		}
		return r.markSent(ctx, c, m, "")
	}
	if c.Open() {
		var err error
		if c, err = r.ensureOpen(ctx, v, c); err != nil {
			return err
		}
	}
	if !c.Open() && !sendsAfterEnd(c, m) {
		return r.markFailed(ctx, m, "conversation ended: "+c.EndReason)
	}
	if err := r.sendContext(ctx, v, c); err != nil {
		return err
	}
	if m.Kind == KindContext { // sent just now, or one an earlier reopening left
		return r.markFailed(ctx, m, "superseded")
	}
	m = r.resolve(ctx, c, m)
	if c.LeaveMessageAfter != 0 {
		return r.leaveMessage(ctx, v, c, m)
	}
	if err := v.Send(ctx, c, m); err != nil {
		return err
	}
	return r.markSent(ctx, c, m, "")
}

// ensureOpen opens c at its vendor when it has no chat there: a pending
// conversation, one whose vendor lost the chat, or one that moved on without
// a stored session (a process that died before storing it: that chat went
// with the process). A pending conversation whose vendor had no agent but
// takes a left message stays pending: opening it again would start a second
// chat.
func (r *Router) ensureOpen(ctx context.Context, v Vendor, c *Conversation) (*Conversation, error) {
	if (c.State != StatePending && len(c.Session) > 0) || c.LeaveMessageAfter != 0 {
		return c, nil
	}
	if c.State == StatePending {
		if err := r.admitOpen(ctx, c); err != nil {
			return nil, err
		}
	}
	c, err := r.open(ctx, v, c)
	if err != nil {
		return nil, err
	}
	r.forgetBusy(c.ID)
	return c, nil
}

// resolve names the references in a customer line for the agent (Resolver);
// the stored message keeps the text as it came.
func (r *Router) resolve(ctx context.Context, c *Conversation, m *Message) *Message {
	rs, ok := r.channels[c.Channel].(Resolver)
	if !ok || m.Text == "" {
		return m
	}
	out := *m
	out.Text = rs.Resolve(ctx, m.Text)
	return &out
}

func (r *Router) toCustomer(ctx context.Context, c *Conversation, m *Message) error {
	ch, ok := r.channels[c.Channel]
	if !ok {
		return Permanent(fmt.Errorf("channel %s is not configured", c.Channel))
	}
	if err := r.pace(ctx, c); err != nil {
		return err
	}
	remote, err := ch.Send(ctx, c.Customer, m)
	if err != nil {
		return err
	}
	return r.markSent(ctx, c, m, remote)
}

// markSent records a send the remote side accepted. The send is never
// repeated because its record failed: the record alone is retried, until the
// Router's context ends (a stop's drain included); only then does the
// message stay stored for the next process, whose channel looks it up
// (where it can) before sending again.
func (r *Router) markSent(ctx context.Context, c *Conversation, m *Message, remote string) error {
	err := r.persist(ctx, "sent message", func(ctx context.Context) error { return r.store.MarkSent(ctx, m.ID, remote) })
	if err != nil {
		return fmt.Errorf("%w: mark sent: %w", errStopping, err)
	}
	r.sent.add(m.ID)
	adapter := r.adapterOf(c, m)
	r.metrics.MessagesOut.WithLabelValues(adapter).Inc()
	if !m.CreatedAt.IsZero() {
		r.metrics.Relay.WithLabelValues(adapter).Observe(time.Since(m.CreatedAt).Seconds())
	}
	return nil
}

func (r *Router) markFailed(ctx context.Context, m *Message, reason string) error {
	if err := r.store.MarkFailed(ctx, m.ID, reason); err != nil {
		return fmt.Errorf("mark failed: %w", err)
	}
	return nil
}

// open starts the conversation at its vendor and records the session; it
// returns the conversation as it stands afterwards. A vendor chat is opened
// once: when the record fails, only the record is retried; when it cannot
// be made before the Router stops, the orphan chat is ended at the vendor
// so that no operator joins a chat nobody will read.
func (r *Router) open(ctx context.Context, v Vendor, c *Conversation) (*Conversation, error) {
	session, err := v.Open(ctx, c)
	if err != nil {
		return nil, err
	}
	if len(session) == 0 {
		return nil, Permanent(fmt.Errorf("vendor %s opened the conversation without a session", v.Name()))
	}
	var opened *Conversation
	err = r.persist(ctx, "opened session", func(ctx context.Context) (err error) {
		opened, err = r.recordOpened(ctx, c, session)
		return err
	})
	if err != nil {
		r.quitOrphan(v, c, session)
		return nil, fmt.Errorf("%w: record opened session: %w", errStopping, err)
	}
	r.setCarried(c.ID, true)
	return opened, nil
}

func (r *Router) recordOpened(ctx context.Context, c *Conversation, session json.RawMessage) (*Conversation, error) {
	mu := r.convLock(c.ID)
	mu.Lock()
	defer mu.Unlock()
	now, err := r.store.Conversation(ctx, c.ID)
	if errors.Is(err, ErrNotFound) {
		return nil, Permanent(err)
	}
	if err != nil {
		return nil, err
	}
	ch := Change{ConversationID: c.ID, Session: session, RequireOpen: true}
	if now.State == StatePending && now.LeaveMessageAfter == 0 {
		ch.State = StateQueued
		ch.Messages = r.notice(now, "queued", NoticeData{})
	}
	res, err := r.store.Apply(ctx, ch)
	if err != nil {
		return nil, err
	}
	r.convLog(now).Info("conversation opened at vendor")
	r.enqueueAll(res.Conversation, res.Added)
	return res.Conversation, nil
}

// quitOrphan ends, best effort, a vendor chat whose session could not be
// stored: the next start opens a new one for the conversation.
func (r *Router) quitOrphan(v Vendor, c *Conversation, session json.RawMessage) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.runCtx), 5*time.Second)
	defer cancel()
	orphan := *c
	orphan.Session = session
	if err := v.End(ctx, &orphan, "connectord could not record the chat"); err != nil {
		r.convLog(c).Warn("could not end a vendor chat whose session was not stored", zap.Error(err))
	}
}

// leaveMessage handles a customer message once no agent was available.
func (r *Router) leaveMessage(ctx context.Context, v Vendor, c *Conversation, m *Message) error {
	if m.ID <= c.LeaveMessageAfter {
		return r.markFailed(ctx, m, "no agent available")
	}
	lv, ok := v.(MessageLeaver)
	if !ok {
		return r.markFailed(ctx, m, "no agent available")
	}
	// The message left is every line the customer wrote since the prompt,
	// not only the first: the conversation ends once it is left, and lines
	// moved on to a next one would meet the same prompt.
	lines, err := r.waitingSince(ctx, c)
	if err != nil {
		return err
	}
	left := *m
	left.Text, left.Attachments = "", nil
	for i, l := range lines {
		if i > 0 {
			left.Text += "\n"
		}
		left.Text += r.resolve(ctx, c, l).Text
		left.Attachments = append(left.Attachments, l.Attachments...)
	}
	if err := lv.LeaveMessage(ctx, c, &left); err != nil {
		return err
	}
	for _, l := range lines {
		if err := r.markSent(ctx, c, l, ""); err != nil {
			return err
		}
	}
	return r.endWith(ctx, c, ending{reason: "message left", notice: "message_left", data: NoticeData{Reason: "message left"}})
}

// waitingSince returns c's customer lines still waiting that came after
// the leave-message prompt, in order.
func (r *Router) waitingSince(ctx context.Context, c *Conversation) ([]*Message, error) {
	ms, err := r.store.Messages(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("read lines to leave: %w", err)
	}
	var out []*Message
	for _, m := range ms {
		if m.Direction == ToAgent && m.Kind == KindText && m.State.Pending() && m.ID > c.LeaveMessageAfter {
			out = append(out, m)
		}
	}
	return out, nil
}

// giveUp settles a message that cannot be delivered and ends its conversation.
func (r *Router) giveUp(ctx context.Context, c *Conversation, m *Message, cause error) {
	r.metrics.Failures.WithLabelValues(r.adapterOf(c, m)).Inc()
	reason := RedactError(cause) // stored as the failure and end reason
	log := r.log.With(zap.Int64("conversation", m.ConversationID), zap.Int64("message", m.ID))
	log.Error("delivery failed permanently", zap.Error(cause))
	if err := r.markFailed(ctx, m, reason); err != nil {
		log.Error("record failure", zap.Error(err))
	}
	// The attempt may have moved the conversation on (opened it, say): decide
	// on its state now, not on the one read before the attempt.
	if now, err := r.store.Conversation(ctx, m.ConversationID); err == nil {
		c = now
	}
	if c == nil || !c.Open() {
		return
	}
	var err error
	switch {
	case m.Direction == ToCustomer:
		// The customer cannot be reached: tell the agent side, not the customer.
		err = r.endWith(ctx, c, ending{reason: "customer unreachable: " + reason, tellVendor: true})
	case m.Kind == KindEnd:
		return
	case c.State == StatePending:
		// The vendor refuses this customer: no agent can take their lines.
		err = r.endWith(ctx, c, ending{reason: "failed: " + reason, notice: "ended_failed",
			data: NoticeData{Reason: reasonOpenFailed}, lines: failLines})
	default:
		err = r.endWith(ctx, c, ending{reason: "failed: " + reason, notice: "delivery_failed",
			data: NoticeData{Reason: reasonSendFailed}, tellVendor: true})
	}
	if err != nil {
		log.Error("end conversation after failure", zap.Error(err))
	}
}

// end ends a conversation from our side, with a notice (by key; "" for none)
// and, when tellVendor, a KindEnd for the vendor; waiting lines move on.
func (r *Router) end(ctx context.Context, c *Conversation, reason, notice string, tellVendor bool) error {
	return r.endWith(ctx, c, ending{reason: reason, notice: notice, data: NoticeData{Reason: reason}, tellVendor: tellVendor})
}

func (r *Router) enqueueAll(c *Conversation, ms []*Message) {
	for _, m := range ms {
		r.enqueue(c, m)
	}
}

// resume continues a stored vendor session after a start.
func (r *Router) resume(ctx context.Context, id int64) {
	for attempt := 0; ; attempt++ {
		c, err := r.store.Conversation(ctx, id)
		if err != nil || !c.Open() || r.ownedElsewhere(c) {
			return
		}
		rs, ok := r.vendors[c.Vendor].(Resumer)
		if !ok || r.isCarried(id) {
			return
		}
		if err = rs.Resume(ctx, c); err == nil {
			r.setCarried(id, true)
			r.convLog(c).Info("vendor session resumed")
			return
		}
		if errors.Is(err, ErrChatLost) {
			if err = r.lost(ctx, id, c.Session, RedactError(err)); err == nil {
				return
			}
		}
		if IsPermanent(err) {
			err = r.endWith(ctx, c, ending{reason: "failed: " + RedactError(err), notice: "ended_failed",
				data: NoticeData{Reason: reasonLost}, lines: failLines})
			if err != nil {
				r.convLog(c).Error("end unresumable conversation", zap.Error(err))
			}
			return
		}
		delay := r.backoff(attempt, err)
		r.convLog(c).Warn("resume failed, will retry", zap.Duration("in", delay), zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-r.stopCh:
			return
		case <-after(delay):
		}
	}
}

// notice renders a customer notice as messages for the conversation's channel.
func (r *Router) notice(c *Conversation, key string, d NoticeData) []*Message {
	text, err := r.settings().notices.render(key, d)
	if err != nil {
		r.convLog(c).Error("render notice", zap.Error(err))
		return nil
	}
	if _, marks := r.channels[c.Channel].(NoticeMarker); text == "" && !marks {
		return nil
	}
	return r.split(c, &Message{Direction: ToCustomer, Kind: KindNotice, Text: text, Notice: key})
}

// split renders m for the channel (Renderer) and applies the channel's
// length limit (Splitter): each part is its own message.
func (r *Router) split(c *Conversation, m *Message) []*Message {
	if rd, ok := r.channels[c.Channel].(Renderer); ok && (m.Format == FormatHTML || m.Format == FormatMarkdown) {
		m.Text, m.Format = rd.Render(m.Text, m.Format)
	}
	sp, ok := r.channels[c.Channel].(Splitter)
	if !ok || (m.Format != FormatPlain && m.Format != FormatNative) {
		return []*Message{m}
	}
	parts := sp.Split(m.Text)
	if len(parts) <= 1 {
		return []*Message{m}
	}
	out := make([]*Message, len(parts))
	for i, p := range parts {
		part := *m
		part.Text = p
		if m.SourceID != "" {
			part.SourceID = m.SourceID + "#" + strconv.Itoa(i+1)
		}
		if i < len(parts)-1 {
			part.Attachments = nil
		}
		out[i] = &part
	}
	return out
}

// The reasons a customer may read in a notice ({{.Reason}} in ended_failed
// and delivery_failed). They are fixed: an error's own text names hosts,
// ids and vendor messages ("Access Denied") that are for the log only.
const (
	reasonOpenFailed = "the agent system could not be reached"
	reasonSendFailed = "the agent system did not accept it"
	reasonLost       = "the agent system closed the chat"
)
