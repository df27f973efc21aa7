package ximatest

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strconv"
	"time"
)

// queue is one SQS standard queue; guarded by Server.mu.
type queue struct {
	name, url, arn string
	created        time.Time
	msgs           []*message // not deleted, in the order they were put
	gone           bool       // deleted: every call naming it answers QueueDoesNotExist
}

// message is one message on a queue. A duplicate is a second message with
// the same id and body: SQS's at-least-once delivery.
type message struct {
	q         *queue
	id        string
	body      string
	md5       string
	sent      time.Time
	first     time.Time // first receive; zero before
	receives  int
	invisible time.Time // in flight until then
	handle    string    // the receipt handle of the latest receive
	deleted   bool
}

// newQueueLocked makes a queue named like Xima's ("mm-queue-" + a UUID).
func (s *Server) newQueueLocked(now time.Time) *queue {
	name := "mm-queue-" + newID()
	q := &queue{name: name, created: now,
		url: s.SQSEndpoint() + "/" + Account + "/" + name,
		arn: "arn:aws:sqs:" + s.cfg.Region + ":" + Account + ":" + name}
	s.queues[name] = q
	return q
}

// putLocked appends a message (twice while Duplicate has some left) and
// wakes the long polls.
func (s *Server) putLocked(q *queue, body string) {
	now := time.Now().Truncate(time.Millisecond)
	if !now.After(s.lastSent) {
		// SentTimestamp has millisecond resolution: keep it strictly
		// increasing so that it orders a batch, as the document's
		// clients rely on.
		now = s.lastSent.Add(time.Millisecond)
	}
	s.lastSent = now
	sum := md5.Sum([]byte(body))
	m := &message{q: q, id: newID(), body: body, md5: hex.EncodeToString(sum[:]), sent: now}
	q.msgs = append(q.msgs, m)
	if s.faults.duplicate > 0 {
		s.faults.duplicate--
		dup := *m
		q.msgs = append(q.msgs, &dup)
	}
	s.notifyLocked()
}

// takeLocked hands out up to max visible messages, making them invisible
// for vis, in put order (reversed when Reorder is on).
func (s *Server) takeLocked(q *queue, max int, vis time.Duration, now time.Time) []*message {
	if s.faults.hold {
		return nil
	}
	var out []*message
	for _, m := range q.msgs {
		if len(out) == max {
			break
		}
		if now.Before(m.invisible) {
			continue
		}
		m.receives++
		if m.first.IsZero() {
			m.first = now
		}
		m.invisible = now.Add(vis)
		m.handle = s.newHandleLocked(m)
		out = append(out, m)
	}
	if s.faults.reorder {
		slices.Reverse(out)
	}
	s.received += len(out)
	return out
}

// nextVisible is when the earliest in-flight message becomes visible again
// (zero: none is in flight).
func (q *queue) nextVisible(now time.Time) time.Time {
	var next time.Time
	for _, m := range q.msgs {
		if now.Before(m.invisible) && (next.IsZero() || m.invisible.Before(next)) {
			next = m.invisible
		}
	}
	return next
}

// counts returns the visible and in-flight message counts.
func (q *queue) counts(now time.Time) (visible, inFlight int) {
	for _, m := range q.msgs {
		if now.Before(m.invisible) {
			inFlight++
		} else {
			visible++
		}
	}
	return visible, inFlight
}

// newHandleLocked issues a receipt handle for m's latest receive. Handles
// are opaque, long, and never reused.
func (s *Server) newHandleLocked(m *message) string {
	var b [96]byte
	rand.Read(b[:])
	h := "AQEB" + base64.StdEncoding.EncodeToString(b[:])
	s.handles[h] = m
	return h
}

// deleteLocked deletes by receipt handle, as SQS does: a handle the queue
// never issued is invalid; a stale one (the message was received again
// since) succeeds without deleting; deleting twice succeeds.
func (s *Server) deleteLocked(q *queue, handle string) *apiError {
	m, ok := s.handles[handle]
	if !ok || m.q != q {
		return errReceiptHandle(handle)
	}
	if m.deleted || m.handle != handle {
		return nil
	}
	m.deleted = true
	q.msgs = slices.DeleteFunc(q.msgs, func(x *message) bool { return x == m })
	s.deleted++
	s.notifyLocked()
	return nil
}

// changeVisibilityLocked sets how long an in-flight message stays
// invisible, counted from now; 0 makes it visible at once.
func (s *Server) changeVisibilityLocked(q *queue, handle string, secs int, now time.Time) *apiError {
	m, ok := s.handles[handle]
	if !ok || m.q != q {
		return errReceiptHandle(handle)
	}
	if m.deleted || m.handle != handle || !now.Before(m.invisible) {
		return errNotInflight()
	}
	m.invisible = now.Add(time.Duration(secs) * time.Second)
	s.notifyLocked()
	return nil
}

// attributes returns the system attributes of m that names asks for.
func (m *message) attributes(names []string) map[string]string {
	all := slices.Contains(names, "All")
	out := make(map[string]string)
	add := func(name, value string) {
		if all || slices.Contains(names, name) {
			out[name] = value
		}
	}
	add("SenderId", Account)
	add("SentTimestamp", millis(m.sent))
	add("ApproximateReceiveCount", strconv.Itoa(m.receives))
	add("ApproximateFirstReceiveTimestamp", millis(m.first))
	if len(out) == 0 {
		return nil
	}
	return out
}

func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// snsEnvelope wraps body as SNS delivers a notification to an SQS queue
// subscribed without raw message delivery.
func (s *Server) snsEnvelope(q *queue, body string) string {
	var sig [128]byte
	rand.Read(sig[:])
	topic := "arn:aws:sns:" + s.cfg.Region + ":" + Account + ":mm-topic"
	env := struct {
		Type             string
		MessageID        string `json:"MessageId"`
		TopicArn         string
		Message          string
		Timestamp        string
		SignatureVersion string
		Signature        string
		SigningCertURL   string
		UnsubscribeURL   string
	}{"Notification", newID(), topic, body, time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), "1",
		base64.StdEncoding.EncodeToString(sig[:]),
		"https://sns." + s.cfg.Region + ".amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
		"https://sns." + s.cfg.Region + ".amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + topic + ":" + q.name}
	return string(marshal(env))
}
