package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/connectord/connectord/connector"
)

// progress is what earlier attempts to send one message achieved. It is kept
// as JSON in the core's SendProgress store (messages.progress), so that a
// retry, in this process or after a restart, resumes where the last attempt
// stopped instead of sending a part twice.
type progress struct {
	// Parts is how many SMS the message was cut into when it was first
	// attempted; a record for another count is not resumed.
	Parts int `json:"parts"`
	// Sent is how many of them Twilio confirmed, in order.
	Sent int `json:"sent"`
	// SID is the last confirmed part's message SID.
	SID string `json:"sid,omitempty"`
	// Pending, when not zero, is when an attempt began whose outcome is not
	// known: it is written before each create call and cleared once Twilio
	// answered, so a timeout or a crash in between leaves it set, and the
	// next attempt lists Twilio's messages before sending.
	Pending time.Time `json:"pending,omitzero"`
}

// maxProgressRecord bounds a stored record: a valid one is under 150 bytes.
const maxProgressRecord = 512

// errBadProgress marks a stored record this channel cannot resume from.
var errBadProgress = errors.New("unusable send progress record")

// decodeProgress reads a stored record for a message of parts parts; nil or
// empty is a fresh start. A record that is too long, not JSON, or does not
// fit the message is errBadProgress: resuming from it could skip or repeat
// parts.
func decodeProgress(b []byte, parts int) (progress, error) {
	if parts < 1 {
		return progress{}, fmt.Errorf("%w: a message of %d parts", errBadProgress, parts)
	}
	if len(b) == 0 {
		return progress{Parts: parts}, nil
	}
	if len(b) > maxProgressRecord {
		return progress{}, fmt.Errorf("%w: %d bytes, at most %d", errBadProgress, len(b), maxProgressRecord)
	}
	var p progress
	if err := json.Unmarshal(b, &p); err != nil {
		return progress{}, fmt.Errorf("%w: %w", errBadProgress, err)
	}
	switch {
	case p.Parts != parts:
		return progress{}, fmt.Errorf("%w: made for %d parts, the message has %d", errBadProgress, p.Parts, parts)
	case p.Sent < 0 || p.Sent > p.Parts:
		return progress{}, fmt.Errorf("%w: %d of %d parts sent", errBadProgress, p.Sent, p.Parts)
	case len(p.SID) > maxSIDLen || p.Sent > 0 && p.SID == "":
		return progress{}, fmt.Errorf("%w: last part's SID missing or too long", errBadProgress)
	}
	return p, nil
}

// loadProgress returns where sending message id, cut into parts parts,
// resumes. A store that fails to answer is a retryable error; a record that
// cannot be resumed from is a Permanent one (sending from the start could
// repeat what the customer already has).
func (c *Channel) loadProgress(ctx context.Context, id int64, parts int) (progress, error) {
	if id == 0 {
		return progress{Parts: parts}, nil
	}
	b, err := c.progress.LoadProgress(ctx, id)
	if err != nil {
		return progress{}, fmt.Errorf("load send progress: %w", err)
	}
	p, err := decodeProgress(b, parts)
	if err != nil {
		return progress{}, connector.Permanent(fmt.Errorf("message %d: %w", id, err))
	}
	return p, nil
}

// saveProgress keeps p for message id, without waiting for the disk where
// the store can (see confirmPart); the store retries a refusal itself until
// ctx is done.
func (c *Channel) saveProgress(ctx context.Context, id int64, p progress) error {
	if id == 0 {
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode send progress: %w", err)
	}
	if err := connector.NoteProgress(ctx, c.progress, id, b); err != nil {
		return fmt.Errorf("save send progress: %w", err)
	}
	return nil
}

// maxMemProgress bounds the in-memory stand-in for the core's store.
const maxMemProgress = 1024

// finished drops the record of a message that was sent or failed for good
// when the record lives in memory; the core clears its own store itself
// once it has recorded the outcome, and clearing it earlier would open a
// window in which a crash repeats the whole message.
func (c *Channel) finished(id int64) {
	c.begun.drop(id)
	if c.ownProgress != nil {
		c.ownProgress.Drop(id)
	}
}
