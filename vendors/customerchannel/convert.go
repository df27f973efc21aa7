package customerchannel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// handle turns one server event, read on connection in.gen, into agent
// events (or a vendor-started message), on its chat's worker. A join's
// answer is replayed, and then its chat's history counts as read for that
// connection (confirm.go).
func (v *Vendor) handle(ctx context.Context, in inbound) {
	switch {
	case in.msg != nil:
		v.arrived(ctx, in.msg, true, in.gen)
	case in.info != nil:
		v.present(ctx, in.chat, in.info)
		v.replay(ctx, in.chat, in.info, in.gen)
		v.historyRead(in.chat, in.gen)
	}
}

// arrived handles a messageArrived (live) or a line of a join's history,
// read on connection gen.
func (v *Vendor) arrived(ctx context.Context, m *message, live bool, gen uint64) {
	v.mu.Lock()
	l, ok := v.live[m.ConversationID]
	var me string
	if ok {
		me = l.s.ParticipantID
	}
	v.mu.Unlock()
	if !ok {
		v.unsolicited(ctx, m)
		return
	}
	if m.From.ID != "" && m.From.ID == me {
		v.ownLine(m.ConversationID, m, live, gen) // confirms a line we sent
		return
	}
	switch m.Type {
	case typeChat:
		if m.Tag == "whisper" {
			return // agents' notes to each other
		}
		v.event(ctx, connector.Event{ConversationID: l.conv, Type: connector.EventText, Agent: m.From.Name,
			Text: m.Text, SourceID: m.ID, Attachments: attachmentsOf(m.Attachments)})
	case typeActivity:
		v.activity(ctx, l, me, m)
	default:
		v.log.Debug("message of unknown type ignored", zap.String("type", m.Type))
	}
}

// activity maps an ActivityMessage. An agent's participantLeft ends the
// conversation only if nobody joins within leave_grace: a transfer is a
// leave followed by a join.
func (v *Vendor) activity(ctx context.Context, l *live, me string, m *message) {
	e := connector.Event{ConversationID: l.conv}
	switch m.ActivityType {
	case actTyping:
		e.Type, e.Typing = connector.EventTyping, m.typingOn()
	case actParticipantJoined, actParticipantAdded:
		p := m.infoParticipant()
		if p.ID == me || p.ID == "" && p.Name == "" {
			return
		}
		v.agentIn(ctx, l, p)
		return
	case actParticipantLeft, actParticipantRemoved:
		p := m.infoParticipant()
		v.mu.Lock()
		if p.ID == me || l.agent == "" || p.Name != l.agent {
			v.mu.Unlock()
			return
		}
		conv := l.conv
		l.leave = time.AfterFunc(v.cfg.LeaveGrace, func() {
			v.event(context.WithoutCancel(ctx), connector.Event{ConversationID: conv, Type: connector.EventEnded, Reason: "agent"})
			v.ended(m.ConversationID)
		})
		v.mu.Unlock()
		return
	case actEnd:
		defer v.ended(m.ConversationID) // after the end is stored
		e.Type, e.Reason = connector.EventEnded, "agent"
	case actNoAgent:
		v.untrack(m.ConversationID)
		e.Type = connector.EventNoAgent
	case actGreetings, actHandOff:
		return
	default:
		v.log.Debug("activity of unknown type ignored", zap.String("activity", m.ActivityType))
		return
	}
	v.event(ctx, e)
}

// agentIn records that agent p is in chat l: the first agent is a join,
// another one a transfer, the same one nothing. It cancels an end pending
// after a leave (a transfer is a leave and a join).
func (v *Vendor) agentIn(ctx context.Context, l *live, p participant) {
	v.mu.Lock()
	if l.leave != nil {
		l.leave.Stop()
		l.leave = nil
	}
	first, same := l.agent == "", l.agent == p.Name
	l.agent = p.Name
	v.mu.Unlock()
	e := connector.Event{ConversationID: l.conv, Agent: p.Name}
	switch {
	case first:
		e.Type = connector.EventJoined
	case same:
		return
	default:
		e.Type = connector.EventTransferred
	}
	v.event(ctx, e)
}

// present reads who is in the chat from a join's answer: an agent who
// joined before our join reached the server (or while we were away) sent
// no participantJoined we could see. An agent other than the one we know
// is a join (or a transfer); the same one, or none, changes nothing.
func (v *Vendor) present(ctx context.Context, chat string, info *conversationInfo) {
	p, ok := info.agent()
	if !ok {
		return
	}
	v.mu.Lock()
	l, live := v.live[chat]
	known := live && (p.ID == l.s.ParticipantID || p.Name == l.agent)
	v.mu.Unlock()
	if live && !known {
		v.agentIn(ctx, l, p)
	}
}

// replay relays the agent lines of a join's history that were not relayed
// yet: the core drops those whose id it has. Lines without an id cannot be
// told apart and are not replayed.
func (v *Vendor) replay(ctx context.Context, chat string, info *conversationInfo, gen uint64) {
	for i := range info.Messages {
		m := &info.Messages[i]
		if m.Type != typeChat || m.ID == "" {
			continue
		}
		if m.ConversationID == "" {
			m.ConversationID = chat
		}
		v.arrived(ctx, m, false, gen)
	}
}

// unsolicited handles a message for a conversation we do not carry: a
// ChatMessage with a refId is the server's own message for that customer
// (a campaign), delivered through deliver_via.
func (v *Vendor) unsolicited(ctx context.Context, m *message) {
	if m.Type != typeChat || m.RefID == "" || m.Tag == "whisper" {
		v.log.Debug("message for an unknown conversation ignored", zap.String("conversation", m.ConversationID))
		return
	}
	if v.outbound == nil || v.cfg.DeliverVia == "" {
		v.log.Warn("server-started message dropped: deliver_via is not set", zap.String("conversation", m.ConversationID))
		return
	}
	id := m.ID
	if id == "" { // no id: the same conversation, recipient and text is the same message
		h := sha256.Sum256([]byte(m.ConversationID + "\x00" + m.RefID + "\x00" + m.Text))
		id = "h:" + hex.EncodeToString(h[:12])
	}
	err := v.outbound.Outbound(ctx, connector.Outbound{Vendor: v.name, Channel: v.cfg.DeliverVia, Customer: m.RefID,
		Text: m.Text, Attachments: attachmentsOf(m.Attachments), SourceID: id})
	switch {
	case err == nil:
	case connector.IsPermanent(err):
		v.log.Error("server-started message can never be stored; skipped", zap.String("ref_id", m.RefID), zap.Error(err))
	default: // the core retries a refusing store until ctx is done: we are stopping
		v.log.Warn("server-started message not stored: stopping", zap.String("ref_id", m.RefID), zap.Error(err))
	}
}

// event commits e. The core retries a store that refuses for a moment and
// blocks until e is committed, so an error means either that ctx is done
// (we are stopping: e is not stored, and an agent line comes again in the
// next connection's history replay, de-duplicated by its id) or that e can
// never be stored (Permanent: skipped).
func (v *Vendor) event(ctx context.Context, e connector.Event) {
	err := v.sink.Event(ctx, e)
	switch {
	case err == nil:
	case connector.IsPermanent(err):
		v.log.Error("agent event can never be stored; skipped", zap.String("event", string(e.Type)), zap.Error(err))
	default:
		v.log.Info("agent event not stored: stopping; an agent line is offered again by the next connection's history replay",
			zap.String("event", string(e.Type)), zap.Error(err))
	}
}

func attachmentsOf(as []attachment) []connector.Attachment {
	var out []connector.Attachment
	for _, a := range as {
		if a.ContentURL != "" {
			out = append(out, connector.Attachment{URL: a.ContentURL, Name: a.Name, ContentType: a.Type})
		}
	}
	return out
}
