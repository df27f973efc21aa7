package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// progress is what earlier attempts to send one message achieved. The router
// retries a message under the same id, in this process or after a restart,
// and a retry must neither post the text again nor upload a file twice. It is
// kept by the core (connector.SendProgress) as the JSON below.
type progress struct {
	// TS is the text's ts once Slack confirmed the post.
	TS string `json:"ts,omitempty"`
	// Files is how many attachments were uploaded (or posted as links).
	Files int `json:"files,omitempty"`
	// Unknown is when an attempt at posting the text began whose outcome was
	// never learnt (5xx, timeout): the thread is searched before posting.
	Unknown time.Time `json:"unknown,omitzero"`
}

const (
	// maxProgressBytes bounds a record read back; ours are under 100 bytes.
	maxProgressBytes = 1024
	// maxProgressFiles is more attachments than any message carries.
	maxProgressFiles = 10000
	// saveGrace is how long recording a step may take after the attempt's
	// context ended: the step happened, and forgetting it means repeating it.
	saveGrace = 5 * time.Second
)

// decodeProgress reads a stored record; nil or empty is no progress.
func decodeProgress(b []byte) (progress, error) {
	var p progress
	if len(b) == 0 {
		return p, nil
	}
	if len(b) > maxProgressBytes {
		return p, fmt.Errorf("send progress record of %d bytes, more than %d", len(b), maxProgressBytes)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return progress{}, fmt.Errorf("send progress record is not ours: %w", err)
	}
	switch {
	case p.TS != "" && !validTS(p.TS):
		return progress{}, fmt.Errorf("send progress record: ts %q is not a Slack ts", p.TS)
	case p.Files < 0 || p.Files > maxProgressFiles:
		return progress{}, fmt.Errorf("send progress record: %d files uploaded is out of range", p.Files)
	}
	return p, nil
}

// validTS reports whether s has a Slack ts's form: digits, a dot, digits.
func validTS(s string) bool {
	sec, frac, ok := strings.Cut(s, ".")
	return ok && len(sec) >= 1 && len(sec) <= 19 && len(frac) >= 1 && len(frac) <= 9 &&
		allDigits(sec) && allDigits(frac)
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// loadProgress returns the record of message m. A record that cannot be read
// is logged and treated as an attempt with an unknown outcome: the text is
// looked for before it is posted again (uploads may repeat), so the message
// still goes out. A store that cannot answer is an error: sending blind could
// repeat what went out.
func (c *Channel) loadProgress(ctx context.Context, m *connector.Message) (progress, error) {
	b, err := c.progress.LoadProgress(ctx, m.ID)
	if err != nil {
		return progress{}, fmt.Errorf("load send progress of message %d: %w", m.ID, err)
	}
	p, err := decodeProgress(b)
	if err != nil {
		c.log.Error("send progress unreadable; checking the thread before posting again",
			zap.Int64("message", m.ID), zap.Error(err))
		return progress{Unknown: m.CreatedAt}, nil
	}
	return p, nil
}

// saveProgress records p once Slack confirmed a step, before the next one.
// The attempt's context may end just after the step: saving goes on until
// saveGrace after it ends.
func (c *Channel) saveProgress(ctx context.Context, id int64, p progress) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode send progress: %w", err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(saveGrace, cancel) })
	defer stop()
	if err := c.progress.SaveProgress(sctx, id, b); err != nil {
		return fmt.Errorf("record send progress of message %d: %w", id, err)
	}
	return nil
}

// doneProgress drops the record of a message sent. The core does that itself
// when it marks the message sent; only the in-memory stand-in needs it.
func (c *Channel) doneProgress(ctx context.Context, id int64) {
	if c.ownProgress != nil {
		c.ownProgress.Drop(id)
	}
}
