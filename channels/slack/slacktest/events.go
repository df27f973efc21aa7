package slacktest

import (
	"encoding/json"
	"fmt"
	"time"
)

// verificationToken is the deprecated "token" field of event payloads.
const verificationToken = "fakeVerificationToken0001"

// event is an event_callback on its way to the app.
type event struct {
	id         string
	channel    string
	body       []byte // the event_callback JSON
	deliveries int    // deliveries on purpose, at least 1

	// Set under s.mu. target is the events URL of the first delivery ("" for
	// Socket Mode), once delivered; last is the highest attempt made or
	// reserved so far.
	delivered bool
	target    string
	last      int
}

// messageEvent is the inner "message" event announcing m. s.mu must be held.
func (s *Server) messageEvent(ch *channel, m *stored) map[string]any {
	ev := s.messageJSON(ch, m, true)
	// Events describe the message as posted: thread summaries come later.
	for _, k := range []string{"reply_count", "reply_users_count", "reply_users", "latest_reply", "is_locked", "subscribed"} {
		delete(ev, k)
	}
	if ev["thread_ts"] == m.TS {
		delete(ev, "thread_ts")
	}
	ev["channel"] = ch.info.ID
	ev["event_ts"] = m.TS
	ev["channel_type"] = channelTypeOf(ch.info)
	return ev
}

// changeEvent is a message_changed or message_deleted event about m, before
// being old. s.mu must be held.
func (s *Server) changeEvent(ch *channel, subtype string, m *stored, old map[string]any) map[string]any {
	ts := s.nextTSLocked()
	ev := map[string]any{
		"type":             "message",
		"subtype":          subtype,
		"hidden":           true,
		"channel":          ch.info.ID,
		"ts":               ts,
		"event_ts":         ts,
		"channel_type":     channelTypeOf(ch.info),
		"previous_message": old,
	}
	if subtype == "message_deleted" {
		ev["deleted_ts"] = m.TS
	} else {
		ev["message"] = s.messageJSON(ch, m, true)
	}
	return ev
}

// emitLocked wraps inner in an event_callback for ch and queues its delivery
// behind the earlier events of ch. It returns the event_id. s.mu must be held.
func (s *Server) emitLocked(ch *channel, inner map[string]any, deliveries int) string {
	id := newEventID()
	now := time.Now()
	cb := map[string]any{
		"token":      verificationToken,
		"team_id":    s.TeamID,
		"api_app_id": s.AppID,
		"event":      inner,
		"type":       "event_callback",
		"event_id":   id,
		"event_time": now.Unix(),
		"authorizations": []map[string]any{{
			"enterprise_id":         nil,
			"team_id":               s.TeamID,
			"user_id":               s.BotUserID,
			"is_bot":                true,
			"is_enterprise_install": false,
		}},
		"is_ext_shared_channel": ch.info.Shared,
		"event_context":         "4-" + randomString(40, upperAlnum),
	}
	body, err := json.Marshal(cb)
	if err != nil {
		// The values are all built here from strings and numbers.
		panic("slacktest: encoding an event: " + err.Error())
	}
	ev := &event{id: id, channel: ch.info.ID, body: body, deliveries: max(deliveries, 1)}
	s.events[id] = ev
	s.enqueueLocked(ch.info.ID, func() { s.deliver(ev) })
	return id
}

// deliver makes the first delivery of ev and leaves the redeliveries to a
// goroutine of their own, so that the next event of the channel need not wait
// for them. The transport is chosen now: the Events API when an events URL is
// set, Socket Mode otherwise.
func (s *Server) deliver(ev *event) {
	s.mu.Lock()
	target := s.eventsURL
	ev.delivered, ev.target = true, target
	s.mu.Unlock()
	if target != "" {
		s.deliverHTTP(target, ev)
		return
	}
	s.deliverSocket(ev)
}

// Redeliver delivers the event eventID once more, as Slack's next retry of
// it when the app's ack or answer did not reach Slack, over the transport its
// first delivery used. Socket Mode: a new envelope with the next
// retry_attempt and retry_reason "timeout", itself redelivered after an ack
// timeout like any envelope. Events API: a POST with the next
// X-Slack-Retry-Num and X-Slack-Retry-Reason "http_timeout", itself retried
// on a failure. It returns at once; the delivery is recorded in Acks or
// Deliveries as usual. Use it once the event's own deliveries are over, so
// that attempt numbers do not collide. It fails for an unknown event, one not
// delivered yet, and one already retried three times (Slack stops there).
func (s *Server) Redeliver(eventID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := s.events[eventID]
	switch {
	case ev == nil:
		return fmt.Errorf("slacktest: Redeliver: unknown event %q", eventID)
	case !ev.delivered:
		return fmt.Errorf("slacktest: Redeliver: event %s is not delivered yet", eventID)
	case ev.last >= maxRetries:
		return fmt.Errorf("slacktest: Redeliver: event %s was retried %d times already", eventID, ev.last)
	}
	attempt := ev.last + 1
	if ev.target == "" {
		env := s.newEnvelopeLocked(ev, attempt, "timeout")
		s.goLocked(func() { s.followEnvelopes(env) })
		return nil
	}
	ev.last = attempt // reserved now: the POST happens later
	target := ev.target
	s.goLocked(func() {
		good, reason, noRetry := s.postEvent(target, ev, attempt, "http_timeout")
		s.retryHTTP(target, ev, attempt+1, good, reason, noRetry)
	})
	return nil
}

// SetRetryDelay sets the wait before each redelivery: an Events API retry, or a
// Socket Mode redelivery after an ack timeout (or after an ack, for the extra
// deliveries of Post.Deliveries). The default is 1s.
func (s *Server) SetRetryDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retryDelay = d
}

func (s *Server) currentRetryDelay() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retryDelay
}
