package sms

import "time"

// progress is what earlier attempts to send one message left behind. The
// router retries a message under the same id, so a retry resumes where the
// last attempt stopped instead of starting over.
type progress struct {
	sent int    // parts Twilio confirmed
	sid  string // the SID of the last confirmed part
	// unknown, when not zero, is when an attempt began whose outcome is
	// unknown: the next attempt reconciles before sending.
	unknown time.Time
	saved   time.Time
}

// progressTTL bounds how long progress is kept for a message that is never
// attempted again (the router gave up on it).
const progressTTL = 24 * time.Hour

// loadProgress returns the progress saved for message id.
func (c *Channel) loadProgress(id int64) progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.progress[id]
}

// saveProgress keeps p for message id, or forgets the message when finished
// (sent, or failed for good) or when there is nothing to remember.
func (c *Channel) saveProgress(id int64, p progress, finished bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if finished || id == 0 || p.sent == 0 && p.unknown.IsZero() {
		delete(c.progress, id)
		return
	}
	now := time.Now()
	p.saved = now
	c.progress[id] = p
	for k, v := range c.progress {
		if now.Sub(v.saved) > progressTTL {
			delete(c.progress, k)
		}
	}
}
