package slack

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/richtext"
)

// metadataType marks the messages connectord posts, so that an attempt whose
// outcome is unknown can be found in the thread before anything is posted
// again (Slack has no idempotency key).
const metadataType = "connectord_message"

// Send posts m in the conversation's thread (or DM) and returns its ts.
//
// A notice first moves the root message's reaction (queued, agent joined,
// ended); a notice whose template is empty only does that. Agent lines are
// posted under the agent's name. Attachments are uploaded into the thread
// after the text; one that cannot be fetched is posted as a link.
//
// Each step Slack confirmed (the text posted, a file uploaded) is recorded
// in the core's send progress before the next one, and so is a post whose
// outcome is unknown: a retry, here or after a crash, resumes after the
// last recorded step.
//
// Posts are paced per Slack channel; a 429 holds the channel back for its
// Retry-After and is returned as connector.RetryAfter. A post whose outcome
// is unknown (5xx, timeout) is looked for in the thread (our messages carry
// metadata with the message id) before it is posted again; so is every
// message this process did not create, since an earlier process may have
// posted it just before it died.
func (c *Channel) Send(ctx context.Context, to string, m *connector.Message) (string, error) {
	a, err := parseAddress(to)
	if err != nil {
		return "", connector.Permanent(err)
	}
	if a, err = c.dmOf(ctx, a); err != nil {
		return "", err
	}
	if m.Kind == connector.KindNotice {
		if err := c.markState(ctx, a, m.Notice); err != nil {
			return "", err
		}
	}
	p, err := c.loadProgress(ctx, m)
	if err != nil {
		return "", err
	}
	if m.Kind == connector.KindText {
		c.clearTyping(ctx, a) // the line replaces the indicator
	}
	if err := c.sendText(ctx, a, m, &p); err != nil {
		return "", err
	}
	if err := c.sendFiles(ctx, a, m, &p); err != nil {
		return "", err
	}
	c.doneProgress(ctx, m.ID)
	return p.TS, nil
}

// sendText posts m's text unless p says it is posted, and records the ts
// when attachments follow. With no step after it, the record would only
// repeat what the post's metadata already tells a retry.
func (c *Channel) sendText(ctx context.Context, a address, m *connector.Message, p *progress) error {
	text := render(m)
	if text == "" || p.TS != "" {
		return nil
	}
	if err := c.post(ctx, a, m, text, p); err != nil {
		return err
	}
	if p.Files < len(m.Attachments) {
		if err := c.saveProgress(ctx, m.ID, *p); err != nil {
			return fmt.Errorf("posted as %s, but not recorded (not uploading its files): %w", p.TS, err)
		}
	}
	return nil
}

// sendFiles uploads the attachments p does not count yet, recording each.
func (c *Channel) sendFiles(ctx context.Context, a address, m *connector.Message, p *progress) error {
	for p.Files < len(m.Attachments) {
		if err := c.upload(ctx, a, m.Attachments[p.Files]); err != nil {
			return err
		}
		p.Files++
		if err := c.saveProgress(ctx, m.ID, *p); err != nil {
			return fmt.Errorf("attachment %d uploaded, but not recorded: %w", p.Files, err)
		}
	}
	return nil
}

// render returns m's text as Slack mrkdwn.
func render(m *connector.Message) string {
	switch m.Format {
	case connector.FormatHTML:
		return richtext.Mrkdwn(m.Text)
	case connector.FormatMarkdown:
		return richtext.MarkdownToMrkdwn(m.Text)
	case connector.FormatNative: // rendered by Render before it was stored
		return m.Text
	}
	return richtext.EscapeMrkdwn(m.Text)
}

// post posts text once and sets p.TS: it reconciles first when an earlier
// attempt may have posted it, and records an attempt whose outcome is unknown.
func (c *Channel) post(ctx context.Context, a address, m *connector.Message, text string, p *progress) error {
	if c.mayHavePosted(m, *p) {
		ts, err := c.findPosted(ctx, a, m)
		if err != nil {
			return fmt.Errorf("an earlier attempt may have posted it, and checking failed (not posting again): %w", classify(err))
		}
		if ts != "" {
			c.log.Info("an earlier attempt had posted it", zap.Int64("message", m.ID), zap.String("ts", ts))
			p.TS, p.Unknown = ts, time.Time{}
			return nil
		}
	}
	if err := c.pace.wait(ctx, a.Channel); err != nil {
		return err
	}
	// The attempt is recorded before it is made: a process that dies in the
	// call leaves the record, and whichever process sends the message next
	// (this instance restarted, or another that took the conversation over)
	// looks in the thread before posting. A record that fails posts nothing.
	if p.Unknown.IsZero() {
		p.Unknown = time.Now()
		if err := c.saveProgress(ctx, m.ID, *p); err != nil {
			p.Unknown = time.Time{}
			return fmt.Errorf("not posted: %w", err)
		}
	}
	_, ts, err := c.api.PostMessageContext(ctx, a.Channel, c.postOptions(a, m, text)...)
	c.noteAPI(err)
	if err != nil {
		var rl *slack.RateLimitedError
		if errors.As(err, &rl) {
			c.pace.hold(a.Channel, rl.RetryAfter)
		}
		if !unknownOutcome(err) {
			c.clearUnknown(ctx, m.ID, p) // Slack refused it: nothing to look for
		}
		return classify(err)
	}
	p.TS, p.Unknown = ts, time.Time{}
	return nil
}

// clearUnknown drops the record of an attempt that Slack refused, so the
// next attempt posts without looking first; a record that stays only costs
// that look.
func (c *Channel) clearUnknown(ctx context.Context, id int64, p *progress) {
	p.Unknown = time.Time{}
	if err := c.saveProgress(ctx, id, *p); err != nil {
		c.log.Debug("a refused post's record stays; the next attempt looks first", zap.Int64("message", id), zap.Error(err))
	}
}

func (c *Channel) postOptions(a address, m *connector.Message, text string) []slack.MsgOption {
	opts := []slack.MsgOption{
		slack.MsgOptionText(text, false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: metadataType,
			EventPayload: map[string]any{"channel": c.name, "message_id": m.ID}}),
	}
	if a.Root != "" {
		opts = append(opts, slack.MsgOptionTS(a.Root))
	}
	if m.Kind == connector.KindText && m.Agent != "" {
		opts = append(opts, slack.MsgOptionUsername(m.Agent))
		if c.cfg.AgentIconEmoji != "" {
			opts = append(opts, slack.MsgOptionIconEmoji(c.cfg.AgentIconEmoji))
		}
	}
	return opts
}

// mayHavePosted reports whether m could already be in Slack: an attempt
// was recorded (every post is, before it is made) and not known to have
// failed, or m is older than this process (stored by a connectord that did
// not record attempts).
func (c *Channel) mayHavePosted(m *connector.Message, p progress) bool {
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	return !p.Unknown.IsZero() || m.CreatedAt.Before(started)
}

// findPosted looks for m among our recent messages in the conversation and
// returns its ts, or "" when it is not there.
func (c *Channel) findPosted(ctx context.Context, a address, m *connector.Message) (string, error) {
	// Slack's clock and ours differ a little; a few minutes before the
	// message was created covers any post of it. A message without a
	// creation time is looked for in the whole conversation: a bound before
	// 1970 is a negative ts, which Slack refuses (invalid_ts_oldest).
	oldest := ""
	if since := m.CreatedAt.Add(-5 * time.Minute); since.After(time.Unix(0, 0)) {
		oldest = tsOf(since)
	}
	var found string
	err := c.history(ctx, a, oldest, func(msg slack.Message) bool {
		if isOurs(msg.Metadata, c.name, m.ID) {
			found = msg.Timestamp
			return false
		}
		return true
	})
	return found, err
}

// isOurs reports whether metadata marks the post of message id by channel.
func isOurs(md slack.SlackMetadata, channel string, id int64) bool {
	if md.EventType != metadataType || md.EventPayload["channel"] != channel {
		return false
	}
	switch v := md.EventPayload["message_id"].(type) {
	case float64:
		return int64(v) == id
	case int64:
		return v == id
	case int:
		return int64(v) == id
	}
	return false
}

// dmOf turns a user id address into the app's DM with that user
// (conversations.open, remembered), so that posting and the history check
// before a re-post use one channel id.
func (c *Channel) dmOf(ctx context.Context, a address) (address, error) {
	if !userID(a.Channel) {
		return a, nil
	}
	c.mu.Lock()
	dm, ok := c.dms.get(a.Channel, time.Now())
	c.mu.Unlock()
	if ok {
		return address{Channel: dm}, nil
	}
	ch, _, _, err := c.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{a.Channel}})
	c.noteAPI(err)
	if err != nil {
		return a, fmt.Errorf("open a DM with %s: %w", a.Channel, classify(err))
	}
	c.mu.Lock()
	c.dms.put(a.Channel, ch.ID, time.Now())
	c.mu.Unlock()
	return address{Channel: ch.ID}, nil
}
