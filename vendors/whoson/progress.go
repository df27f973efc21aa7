package whoson

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// sendRecord is what earlier attempts at sending one message achieved. It
// is kept as JSON in the core's send-progress store (VendorEnv.Progress),
// so that a retry, in this process or after a restart, writes only the
// parts of a split message not written yet.
type sendRecord struct {
	// Chat is the ChatUid the parts went to. On another chat (the first one
	// was lost and the conversation opened again) the message starts over:
	// its new operator has seen none of it.
	Chat string `json:"chat"`
	// Parts is how many Message commands the text was cut into.
	Parts int `json:"parts"`
	// Sent is how many of them were written, in order.
	Sent int `json:"sent"`
}

// maxSendRecord bounds a stored record: a valid one (a ChatUid of at most
// maxChatUID bytes) is under 200 bytes.
const maxSendRecord = 512

// maxMemProgress bounds the in-memory stand-in for the core's store, used
// by a vendor built without the core.
const maxMemProgress = 1024

// errBadRecord marks a stored record that does not fit the message.
var errBadRecord = errors.New("unusable whoson send progress record")

// decodeSendRecord reads a stored record; nil or empty is a fresh start.
func decodeSendRecord(b []byte) (sendRecord, error) {
	var r sendRecord
	if len(b) == 0 {
		return r, nil
	}
	if len(b) > maxSendRecord {
		return r, fmt.Errorf("%w: %d bytes, at most %d", errBadRecord, len(b), maxSendRecord)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return sendRecord{}, fmt.Errorf("%w: %w", errBadRecord, err)
	}
	return r, nil
}

// partsSent is how many of message id's parts parts are already written to
// chat. No record, or one for another chat, is 0. A record that does not fit
// the message is logged and also 0: writing a line twice is better than
// losing one. A store that does not answer is an error to retry.
func (s *session) partsSent(ctx context.Context, id int64, chat string, parts int) (int, error) {
	if id == 0 {
		return 0, nil
	}
	b, err := s.v.progress.LoadProgress(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("load whoson send progress: %w", err)
	}
	r, err := decodeSendRecord(b)
	if err == nil && r.Chat == chat && (r.Parts != parts || r.Sent < 0 || r.Sent > parts) {
		err = fmt.Errorf("%w: %d of %d parts sent, the message has %d", errBadRecord, r.Sent, r.Parts, parts)
	}
	switch {
	case err != nil:
		s.log.Warn("whoson send progress ignored; the message is written from its start",
			zap.Int64("message", id), zap.Error(err))
		return 0, nil
	case r.Chat != chat:
		return 0, nil
	}
	return r.Sent, nil
}

// saveSent stores that sent of message id's parts parts are written to
// chat. The store retries a refusal itself until ctx is done.
//
// The record is kept without waiting for the disk (connector.NoteProgress):
// it survives a crash of the process, and a power loss in the moment after
// it can forget it, which writes the part again. WhosOn gives lines no id
// that a repeat could be told by, so a crash in the middle of a Message
// command can repeat a line anyway; a record that waited for the disk would
// cost a synced write per line to narrow that window only for a power loss.
func (s *session) saveSent(ctx context.Context, id int64, r sendRecord) error {
	if id == 0 {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode whoson send progress: %w", err)
	}
	if err := connector.NoteProgress(ctx, s.v.progress, id, b); err != nil {
		return fmt.Errorf("save whoson send progress: %w", err)
	}
	return nil
}
