package slack

import "time"

// progress is what earlier attempts to send one message achieved: the
// router retries a message under the same id, and a retry must neither post
// the text again nor upload a file twice.
type progress struct {
	ts    string // the text's ts once posted
	files int    // attachments uploaded
}

// progressTTL bounds how long progress is kept for a message that is never
// attempted again (the router gave up on it); maxRemembered bounds how many.
const progressTTL = 24 * time.Hour

func (c *Channel) loadProgress(id int64) progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, _ := c.progress.get(id, time.Now())
	return p
}

func (c *Channel) saveProgress(id int64, p progress) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.progress.put(id, p, time.Now())
}

func (c *Channel) forgetProgress(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.progress.remove(id)
}
