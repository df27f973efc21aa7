package slack

import "time"

// progress is what earlier attempts to send one message achieved: the
// router retries a message under the same id, and a retry must neither post
// the text again nor upload a file twice.
type progress struct {
	ts    string // the text's ts once posted
	files int    // attachments uploaded
	saved time.Time
}

// progressTTL bounds how long progress is kept for a message that is never
// attempted again (the router gave up on it).
const progressTTL = 24 * time.Hour

func (c *Channel) loadProgress(id int64) progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.progress[id]
}

func (c *Channel) saveProgress(id int64, p progress) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	p.saved = now
	c.progress[id] = p
	for k, v := range c.progress {
		if now.Sub(v.saved) > progressTTL {
			delete(c.progress, k)
		}
	}
}

func (c *Channel) forgetProgress(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.progress, id)
}
