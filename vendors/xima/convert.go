package xima

import (
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// handle turns one queue message into the core's event and commits it with
// the session. It reports whether the message is done with (stored,
// skipped, or never storable) and may be deleted; false leaves it and the
// rest of its batch in the queue.
func (v *Vendor) handle(c *chat, m message, id string) bool {
	e, end, ok := v.eventOf(c, m, id)
	if !ok {
		c.markSeen(id)
		return true
	}
	var err error
	if e.Type == connector.EventTyping {
		// Typing changes nothing stored: no session, and a repeat is harmless.
		e.ConversationID = c.id
		err = v.deliver(c.ctx, e)
		if err == nil {
			c.markSeen(id)
		}
	} else {
		err = v.commit(c.ctx, c, e, id)
	}
	switch {
	case err == nil:
	case connector.IsPermanent(err):
		// The core will never store it (the conversation is unknown):
		// acknowledged, and the chat has nobody to serve.
		c.log.Error("xima event can never be stored; dropped, chat stopped", zap.String("event", string(e.Type)),
			zap.String("error", connector.RedactError(err)))
		c.markSeen(id)
		v.drop(c)
		return true
	default:
		return false // Stop, or the chat ended meanwhile: the message stays queued
	}
	if end {
		c.log.Info("xima chat ended by the agent's side", zap.String("message_type", m.Type))
		v.drop(c)
	}
	return true
}

// eventOf maps a message to its event; ok false means nothing to store
// (handled here, throttled, or unknown). end says the chat is over.
func (v *Vendor) eventOf(c *chat, m message, id string) (e connector.Event, end, ok bool) {
	switch m.Type {
	case msgEstimatedWait:
		text := v.cfg.waitText(m.Wait)
		if text == "" || !c.waitDue(time.Now(), v.cfg.WaitNoticeInterval) {
			return e, false, false
		}
		return connector.Event{Type: connector.EventQueue, Text: text}, false, true
	case msgChatStarted:
		return connector.Event{Type: connector.EventJoined, Agent: agentName(m.Agent)}, false, true
	case msgTransferred:
		return connector.Event{Type: connector.EventTransferred, Agent: agentName(m.Agent)}, false, true
	case msgText:
		if strings.TrimSpace(m.Text) == "" {
			return e, false, false
		}
		// Xima's messages carry no id: the queue message's id (stable across
		// SQS redeliveries and duplicates) makes one agent line one message.
		return connector.Event{Type: connector.EventText, Text: m.Text, SourceID: id}, false, true
	case msgTyping:
		return connector.Event{Type: connector.EventTyping, Typing: m.Typing}, false, true
	case msgScreenshot:
		v.rejectScreenshot(c)
		return e, false, false
	case msgEnded:
		return connector.Event{Type: connector.EventEnded, Reason: "agent"}, true, true
	case msgForceClose:
		return connector.Event{Type: connector.EventEnded, Reason: "agent disconnected (FORCE_CLOSE)",
			Text: v.cfg.ForceCloseNotice}, true, true
	case msgDown:
		return connector.Event{Type: connector.EventEnded, Reason: "contact center offline (MULTIMEDIA_DOWN)",
			Text: v.cfg.MultimediaDownNotice}, true, true
	}
	c.log.Warn("xima queue message of an unknown type skipped", zap.String("message_type", m.Type))
	return e, false, false
}

func agentName(name string) string {
	if name == "" {
		return "an agent"
	}
	return name
}

// waitDue reports whether a wait notice may be told now (at most one per
// interval), and counts it told.
func (c *chat) waitDue(now time.Time, interval time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.lastWait.IsZero() && now.Sub(c.lastWait) < interval {
		return false
	}
	c.lastWait = now
	return true
}

// rejectScreenshot answers TAKE_SCREENSHOT: the customer writes from a phone
// or Slack, there is no browser window to capture. One try: a failure is
// logged and the agent's request simply goes unanswered.
func (v *Vendor) rejectScreenshot(c *chat) {
	chatID, _ := c.ids()
	if err := v.api.rejectScreenshot(c.ctx, chatID, c.jar); err != nil {
		c.log.Warn("xima screenshot request not answered", zap.String("error", connector.RedactError(err)))
		return
	}
	c.log.Info("xima screenshot request rejected")
}
