package slack

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"
)

// catchUp reads, for every open conversation, what its customer wrote after
// the newest message stored for it, and hands each message to intake as if
// its event had arrived; one that did arrive meanwhile is de-duplicated by
// its ts. It runs after a start (Events API) or each Socket Mode hello, one
// pass at a time, spaced by catch_up_interval to stay within Slack's limits.
func (c *Channel) catchUp(ctx context.Context) {
	if !c.cfg.CatchUp || c.lister == nil || !c.catching.CompareAndSwap(false, true) {
		return
	}
	defer c.catching.Store(false)
	open, err := c.lister.OpenCustomers(ctx, c.name)
	if err != nil {
		c.log.Error("catch-up: list open conversations", zap.Error(err))
		return
	}
	relayed := 0
	for i, cur := range open {
		if i > 0 && !sleep(ctx, c.cfg.CatchUpInterval) {
			return
		}
		a, err := parseAddress(cur.Customer)
		if err != nil {
			continue
		}
		oldest := a.Root
		if _, ts, ok := strings.Cut(cur.LastSourceID, "/"); ok {
			oldest = ts
		}
		n, err := c.catchUpOne(ctx, a, oldest)
		relayed += n
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("catch-up of a conversation failed", zap.String("customer", cur.Customer), zap.Error(err))
			}
			continue
		}
	}
	c.log.Info("catch-up done", zap.Int("conversations", len(open)), zap.Int("messages", relayed))
}

// catchUpOne relays one conversation's missed messages in order and returns
// how many it handed on. A 429 waits as long as Slack asks and tries again.
func (c *Channel) catchUpOne(ctx context.Context, a address, oldest string) (int, error) {
	for {
		var n int
		var stop error
		err := c.history(ctx, a, oldest, func(sm slack.Message) bool {
			if sm.Metadata.EventType == typingType && sm.Metadata.EventPayload["channel"] == c.name {
				c.deleteTyping(ctx, a.Channel, sm.Timestamp) // left by a process that died
				return true
			}
			m := fromHistory(a, sm)
			if err := c.intake(ctx, m); err != nil {
				stop = err
				return false
			}
			if c.ignored(m) == "" {
				n++
			}
			oldest = sm.Timestamp // a retry after a 429 resumes after it
			return true
		})
		if stop != nil {
			return n, stop
		}
		var rl *slack.RateLimitedError
		if errors.As(err, &rl) {
			if !sleep(ctx, max(rl.RetryAfter, time.Second)) {
				return n, ctx.Err()
			}
			continue
		}
		return n, err
	}
}

// fromHistory converts a message read from history to the event form.
func fromHistory(a address, sm slack.Message) *message {
	m := &message{Type: "message", Subtype: sm.SubType, Channel: a.Channel, User: sm.User, BotID: sm.BotID,
		Text: sm.Text, TS: sm.Timestamp, ThreadTS: sm.ThreadTimestamp}
	if a.Root == "" {
		m.ChannelType = "im"
	}
	for _, f := range sm.Files {
		m.Files = append(m.Files, slackFile{ID: f.ID, Name: f.Name, Title: f.Title, Mimetype: f.Mimetype,
			Size: int64(f.Size), URLPrivate: f.URLPrivate, URLPrivateDownload: f.URLPrivateDownload})
	}
	return m
}
