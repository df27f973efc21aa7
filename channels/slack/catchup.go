package slack

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"
)

// catchUp reads what customers wrote while no event reached us, and hands
// each message to intake as if its event had arrived; one that did arrive
// meanwhile is de-duplicated by its ts. First each watched channel's new
// top-level messages (new threads), then, for every open conversation (those
// new ones included), what its customer wrote after the newest message
// stored for it. It runs after a start (Events API) or each Socket Mode
// hello, one pass at a time, its reads spaced by catch_up_interval to stay
// within Slack's limits.
func (c *Channel) catchUp(ctx context.Context) {
	if !c.cfg.CatchUp || c.lister == nil || !c.catching.CompareAndSwap(false, true) {
		return
	}
	defer c.catching.Store(false)
	reads := 0
	pace := func() bool { // spaces Slack reads, not the first
		reads++
		return reads == 1 || sleep(ctx, c.cfg.CatchUpInterval)
	}
	threads, ok := c.catchUpChannels(ctx, pace)
	if !ok {
		return
	}
	open, err := c.lister.OpenCustomers(ctx, c.name)
	if err != nil {
		c.log.Error("catch-up: list open conversations", zap.Error(err))
		return
	}
	relayed := 0
	for _, cur := range open {
		if !pace() {
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
	c.log.Info("catch-up done", zap.Int("new_threads", threads), zap.Int("conversations", len(open)), zap.Int("messages", relayed))
}

// catchUpChannels reads each watched channel's top-level messages newer than
// the newest message stored from it: without it, a customer who started a
// thread while connectord was away for longer than Slack keeps retrying an
// event would never be heard. A channel nothing was stored from yet is not
// read: its history is from before connectord. It reports how many messages
// it handed on, and false when ctx ended.
func (c *Channel) catchUpChannels(ctx context.Context, pace func() bool) (int, bool) {
	relayed := 0
	for _, id := range c.cfg.Channels {
		newest, err := c.lister.NewestSourceID(ctx, c.name, id+"/")
		if err != nil {
			c.log.Error("catch-up: newest message of a channel", zap.String("slack_channel", id), zap.Error(err))
			continue
		}
		_, ts, ok := strings.Cut(newest, "/")
		if !ok {
			continue
		}
		if !pace() {
			return relayed, false
		}
		n, err := c.catchUpOne(ctx, address{Channel: id}, ts)
		relayed += n
		if err != nil && ctx.Err() == nil {
			c.log.Warn("catch-up of a channel failed", zap.String("slack_channel", id), zap.Error(err))
		}
	}
	return relayed, ctx.Err() == nil
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
			m := fromHistory(a, c.isDMAddress(a), sm)
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

// isDMAddress tells a DM conversation's address from a watched channel's
// (both have no thread root).
func (c *Channel) isDMAddress(a address) bool { return a.Root == "" && !c.channels[a.Channel] }

// fromHistory converts a message read from history to the event form.
func fromHistory(a address, dm bool, sm slack.Message) *message {
	m := &message{Type: "message", Subtype: sm.SubType, Channel: a.Channel, User: sm.User, BotID: sm.BotID,
		Text: sm.Text, TS: sm.Timestamp, ThreadTS: sm.ThreadTimestamp}
	if dm {
		m.ChannelType = "im"
	}
	for _, f := range sm.Files {
		m.Files = append(m.Files, slackFile{ID: f.ID, Name: f.Name, Title: f.Title, Mimetype: f.Mimetype,
			Size: int64(f.Size), URLPrivate: f.URLPrivate, URLPrivateDownload: f.URLPrivateDownload,
			IsExternal: f.IsExternal})
	}
	return m
}
