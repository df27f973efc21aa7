package cention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// maxLine is the longest customer line sent as one chat message, in
// characters; a longer one is sent in parts, each with its own umid.
const maxLine = 4000

// part is one chat message of a customer message: text, or a file.
type part struct {
	text string
	file *connector.Attachment
}

// messageParts cuts m into chat messages: its text, split at maxLine, then
// one per attachment.
func messageParts(m *connector.Message) []part {
	var out []part
	for _, t := range splitText(m.Text, maxLine) {
		out = append(out, part{text: t})
	}
	for i := range m.Attachments {
		if m.Attachments[i].URL != "" {
			out = append(out, part{file: &m.Attachments[i]})
		}
	}
	return out
}

// lineText is m as one text: its words, then its files' links, one a line.
func lineText(m *connector.Message) string {
	lines := []string{}
	if t := strings.TrimSpace(m.Text); t != "" {
		lines = append(lines, t)
	}
	for _, a := range m.Attachments {
		if a.URL != "" {
			lines = append(lines, a.URL)
		}
	}
	return strings.Join(lines, "\n")
}

// umidFor is the umid of part i of n of the core's message id: the same on
// every attempt, in this process or after a restart, so that the server,
// which drops a umid it has seen, shows the agent the line once.
func umidFor(id int64, i, n int) string {
	if n == 1 {
		return fmt.Sprintf("connectord-%d", id)
	}
	return fmt.Sprintf("connectord-%d-%d", id, i+1)
}

// sendRecord is the send progress of one customer message, kept in the
// core's store (VendorEnv.Progress): which chat it went to, how many parts
// the server confirmed, the mcount given to its first part, and the upload
// of the file part being sent, so that a retry neither repeats a confirmed
// part nor uploads a file twice.
type sendRecord struct {
	Token  string          `json:"token"`
	Parts  int             `json:"parts"`
	Sent   int             `json:"sent"`
	MCount int64           `json:"mcount"`
	Upload json.RawMessage `json:"upload,omitempty"`
}

// maxRecord bounds a stored record read back (an upload answer is small).
const maxRecord = 64 << 10

func decodeRecord(b []byte) (sendRecord, error) {
	var r sendRecord
	if len(b) == 0 {
		return r, nil
	}
	if len(b) > maxRecord {
		return r, fmt.Errorf("send progress of %d bytes, at most %d", len(b), maxRecord)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return sendRecord{}, err
	}
	if r.Sent < 0 || r.Parts < 0 || r.MCount < 0 {
		return sendRecord{}, errors.New("send progress with negative counts")
	}
	return r, nil
}

// send delivers the parts of m the server has not confirmed yet, each
// confirmed (its umid) and recorded before the next. It returns an error
// when a part is not confirmed within send_timeout; the core's retry sends
// it again with the same umid.
func (s *session) send(ctx context.Context, m *connector.Message) error {
	parts := messageParts(m)
	if len(parts) == 0 {
		return nil
	}
	rec, err := s.record(ctx, m.ID, len(parts))
	if err != nil {
		return err
	}
	if rec.MCount == 0 {
		rec.MCount = s.reserveMCount(len(parts))
		if err := s.save(ctx, m.ID, rec); err != nil {
			return err
		}
	}
	for i := rec.Sent; i < len(parts); i++ {
		text, attach, err := s.partText(ctx, m.ID, &rec, parts[i])
		if err != nil {
			return err
		}
		if err := s.deliverLine(ctx, umidFor(m.ID, i, len(parts)), text, rec.MCount+int64(i), attach); err != nil {
			return err
		}
		rec.Sent, rec.Upload = i+1, nil
		if err := s.save(ctx, m.ID, rec); err != nil {
			return err
		}
	}
	return nil
}

// record is the message's send progress in this chat: a record of another
// chat (the first was lost and the conversation opened again) or of
// another split starts over, as does one that cannot be read (logged).
func (s *session) record(ctx context.Context, id int64, parts int) (sendRecord, error) {
	token := s.token()
	fresh := sendRecord{Token: token, Parts: parts}
	b, err := s.v.progress.LoadProgress(ctx, id)
	if err != nil {
		return fresh, fmt.Errorf("load cention send progress: %w", err)
	}
	rec, err := decodeRecord(b)
	if err != nil {
		s.log.Warn("cention send progress unreadable; the message is sent from its start",
			zap.Int64("message", id), zap.Error(err))
		return fresh, nil
	}
	if rec.Token != token || rec.Parts != parts || rec.Sent > parts {
		return fresh, nil
	}
	s.raiseMCount(rec.MCount + int64(parts) - 1)
	return rec, nil
}

func (s *session) save(ctx context.Context, id int64, rec sendRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode cention send progress: %w", err)
	}
	if err := s.v.progress.SaveProgress(ctx, id, b); err != nil {
		return fmt.Errorf("save cention send progress: %w", err)
	}
	return nil
}

// reserveMCount gives n consecutive mcounts and returns the first.
func (s *session) reserveMCount(n int) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.state.MCount + 1
	s.state.MCount += int64(n)
	return first
}

// raiseMCount makes sure later lines count past last (a record written
// before a restart may be ahead of the stored session).
func (s *session) raiseMCount(last int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.MCount = max(s.state.MCount, last)
}

// partText is the chat message text of p, and for a file the add
// attachment frame that goes before it. A file is uploaded once (the
// answer is kept in rec); one that cannot be uploaded (too big, not
// fetchable) is sent as its link.
func (s *session) partText(ctx context.Context, id int64, rec *sendRecord, p part) (string, *attachmentData, error) {
	if p.file == nil {
		return p.text, nil, nil
	}
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	var up uploaded
	var err error
	if len(rec.Upload) > 0 {
		up, err = decodeUpload(rec.Upload)
	} else {
		up, err = s.v.upload(ctx, st, *p.file)
		if err == nil {
			rec.Upload = up.Raw
			err = s.save(ctx, id, *rec)
		}
	}
	if errors.Is(err, errNotUploaded) {
		s.log.Info("customer file sent as its link", zap.String("why", err.Error()))
		return p.file.URL, nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	link := up.Download
	if st.Secret != "" {
		sep := "?"
		if strings.Contains(link, "?") {
			sep = "&"
		}
		link += sep + "t=" + st.Secret
	}
	text := fileMessage(fileNotice{FileDownload: link, FileName: up.Name, SizeHuman: up.SizeHuman})
	return text, &attachmentData{Area: s.v.cfg.Area, File: up.Raw, SessionSecret: st.Secret}, nil
}

// deliverLine writes one chat message with umid and waits for the server to
// confirm the umid, within send_timeout. A socket that drops meanwhile is
// written to again, with the same umid, once it is back.
func (s *session) deliverLine(ctx context.Context, umid, text string, mcount int64, attach *attachmentData) error {
	timeout := s.v.cfg.SendTimeout
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w := s.waiter(umid)
	defer s.dropWaiter(umid)
	for {
		select {
		case <-w:
			return nil
		default:
		}
		c, err := s.waitReady(dctx)
		if err != nil {
			if dctx.Err() != nil && ctx.Err() == nil {
				return fmt.Errorf("cention did not confirm line %s within %s (socket down)", umid, timeout)
			}
			return err
		}
		if attach != nil {
			if err := c.send(dctx, typeAttachment, attach); err != nil {
				c.Close() // the reader sees it; the loop waits for the next socket
			}
			attach = nil // once: the file link in the line carries it anyway
		}
		if err := c.send(dctx, typeMessage, messageData{ID: umid, Message: text, MCount: mcount}); err != nil {
			c.Close()
		}
		select {
		case <-w:
			return nil
		case <-c.ReadEnded():
			// dropped before the confirmation: the line goes again on the next socket
		case <-c.Done():
		case <-s.lost:
			return s.lostError()
		case <-dctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("cention did not confirm line %s within %s", umid, timeout)
		}
	}
}

// splitText cuts text into parts of at most max characters, at the last
// white space in the second half of a part when there is one. White space
// at a cut is dropped; nothing else is lost. Blank text gives no parts.
func splitText(text string, max int) []string {
	text = strings.TrimSpace(text)
	var parts []string
	for text != "" {
		if utf8.RuneCountInString(text) <= max {
			return append(parts, text)
		}
		cut, n := len(text), 0
		for i := range text {
			if n == max {
				cut = i
				break
			}
			n++
		}
		if sp := strings.LastIndexFunc(text[:cut], unicode.IsSpace); sp > 0 && utf8.RuneCountInString(text[:sp]) > max/2 {
			cut = sp
		}
		parts = append(parts, strings.TrimRightFunc(text[:cut], unicode.IsSpace))
		text = strings.TrimLeftFunc(text[cut:], unicode.IsSpace)
	}
	return parts
}
