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
	p := c.loadProgress(m.ID)
	if m.Kind == connector.KindText {
		c.clearTyping(ctx, a) // the line replaces the indicator
	}
	if text := render(m); text != "" && p.ts == "" {
		if p.ts, err = c.post(ctx, a, m, text); err != nil {
			return "", err
		}
		c.saveProgress(m.ID, p)
	}
	for ; p.files < len(m.Attachments); p.files++ {
		if err := c.upload(ctx, a, m.Attachments[p.files]); err != nil {
			c.saveProgress(m.ID, p)
			return "", err
		}
	}
	c.forgetProgress(m.ID)
	return p.ts, nil
}

// render returns m's text as Slack mrkdwn.
func render(m *connector.Message) string {
	switch m.Format {
	case connector.FormatHTML:
		return richtext.Mrkdwn(m.Text)
	case connector.FormatMarkdown:
		return richtext.MarkdownToMrkdwn(m.Text)
	}
	return richtext.EscapeMrkdwn(m.Text)
}

// post posts text once: it reconciles first when an earlier attempt may
// have posted it.
func (c *Channel) post(ctx context.Context, a address, m *connector.Message, text string) (string, error) {
	if c.mayHavePosted(m) {
		ts, err := c.findPosted(ctx, a, m)
		if err != nil {
			return "", fmt.Errorf("an earlier attempt may have posted it, and checking failed (not posting again): %w", classify(err))
		}
		if ts != "" {
			c.log.Info("an earlier attempt had posted it", zap.Int64("message", m.ID), zap.String("ts", ts))
			c.clearUnknown(m.ID)
			return ts, nil
		}
	}
	if err := c.pace.wait(ctx, a.Channel); err != nil {
		return "", err
	}
	begin := time.Now()
	_, ts, err := c.api.PostMessageContext(ctx, a.Channel, c.postOptions(a, m, text)...)
	c.noteAPI(err)
	if err != nil {
		var rl *slack.RateLimitedError
		if errors.As(err, &rl) {
			c.pace.hold(a.Channel, rl.RetryAfter)
		}
		if unknownOutcome(err) {
			c.markUnknown(m.ID, begin)
		}
		return "", classify(err)
	}
	c.clearUnknown(m.ID)
	return ts, nil
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

// mayHavePosted reports whether m could already be in Slack: an attempt of
// this process ended without knowing, or m is older than this process.
func (c *Channel) mayHavePosted(m *connector.Message) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, unknown := c.unknown.get(m.ID, time.Now())
	return unknown || m.CreatedAt.Before(c.started)
}

func (c *Channel) markUnknown(id int64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.unknown.get(id, at); !ok {
		c.unknown.put(id, at, at)
	}
}

func (c *Channel) clearUnknown(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unknown.remove(id)
}

// findPosted looks for m among our recent messages in the conversation and
// returns its ts, or "" when it is not there.
func (c *Channel) findPosted(ctx context.Context, a address, m *connector.Message) (string, error) {
	// Slack's clock and ours differ a little; a few minutes before the
	// message was created covers any post of it.
	oldest := tsOf(m.CreatedAt.Add(-5 * time.Minute))
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
