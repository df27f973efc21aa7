package slack

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"
)

// Bounds of one catch-up pass beyond the open conversations (README,
// Delivery): Slack's history methods allow about 50 calls a minute, 1 for
// some installations, and a pass runs after every Socket Mode hello.
const (
	// endedWindow: a thread whose conversation ended is looked at only if
	// its root was posted at most this long before the newest message
	// stored from its channel. A customer who comes back to a thread does
	// so within days; one who comes back later is not heard until their
	// next message reaches us as an event.
	endedWindow = 7 * 24 * time.Hour
	// maxOldRoots bounds the roots read per channel from before its newest
	// stored message (one history page); new ones are all read.
	maxOldRoots = 200
	// maxEndedThreads bounds the threads with new replies read per pass,
	// the most recently active first.
	maxEndedThreads = 50
	// maxIMPages bounds conversations.list pages of the app's DMs (200 each).
	maxIMPages = 10
	// maxDMReads bounds the DMs without an open conversation read per pass,
	// the most recently active first.
	maxDMReads = 100
)

// imPage is how many DMs one conversations.list call asks for.
const imPage = 200

// catchUp reads what customers wrote while no event reached us, and hands
// each message to intake as if its event had arrived; one that did arrive
// meanwhile is de-duplicated by its ts. In order: each watched channel's new
// top-level messages (new threads); every open conversation (those new ones
// included) after the newest message stored for it; threads whose
// conversation had ended with replies newer than their channel's newest
// stored message; the app's DMs without an open conversation after the
// newest message stored from each. It runs after a start (Events API) or
// each Socket Mode hello, one pass at a time, each read spaced by
// catch_up_interval to stay within Slack's limits.
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
	threads, ended, ok := c.catchUpChannels(ctx, pace)
	if !ok {
		return
	}
	open, err := c.lister.OpenCustomers(ctx, c.name)
	if err != nil {
		c.log.Error("catch-up: list open conversations", zap.Error(err))
		return
	}
	isOpen := map[string]bool{}
	relayed := 0
	for _, cur := range open {
		isOpen[cur.Customer] = true
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
		relayed += c.catchUpLogged(ctx, a, oldest)
	}
	endedRead, n, ok := c.catchUpEnded(ctx, pace, ended, isOpen)
	relayed += n
	if !ok {
		return
	}
	dms, n := c.catchUpDMs(ctx, pace, isOpen)
	relayed += n
	c.log.Info("catch-up done", zap.Int("new_threads", threads), zap.Int("conversations", len(open)),
		zap.Int("ended_threads", endedRead), zap.Int("dms", dms), zap.Int("messages", relayed))
}

// later is a conversation to read from a ts on: a thread whose
// conversation ended, or a DM.
type later struct {
	addr  address
	since string    // read after this ts
	key   time.Time // the most recent first
}

// catchUpChannels reads each watched channel's top-level messages from
// endedWindow before the newest message stored from it: the new ones (a
// customer who started a thread while connectord was away for longer than
// Slack keeps retrying an event) are handed on; roots whose latest reply is
// newer than that message are returned, to be read if their conversation
// is not open. A channel nothing was stored from yet is not read: its
// history is from before connectord. It reports how many messages it
// handed on, and false when ctx ended.
func (c *Channel) catchUpChannels(ctx context.Context, pace func() bool) (int, []later, bool) {
	relayed := 0
	var ended []later
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
		roots, err := c.channelRoots(ctx, pace, id, ts)
		if err != nil {
			if ctx.Err() != nil {
				return relayed, nil, false
			}
			c.log.Warn("catch-up of a channel failed", zap.String("slack_channel", id), zap.Error(err))
			continue
		}
		for _, m := range roots {
			if tsAfter(m.Timestamp, ts) {
				if relayed += c.relayRead(ctx, address{Channel: id}, m); ctx.Err() != nil {
					return relayed, nil, false
				}
			}
			if tsAfter(m.LatestReply, ts) && !c.onlyOurReplies(m) {
				ended = append(ended, later{addr: address{Channel: id, Root: m.Timestamp}, since: ts, key: tsTime(m.LatestReply)})
			}
		}
	}
	return relayed, ended, ctx.Err() == nil
}

// onlyOurReplies reports whether the app alone replied in m's thread: no
// customer wrote there.
func (c *Channel) onlyOurReplies(m slack.Message) bool {
	self := c.self.Load()
	return self != nil && len(m.ReplyUsers) > 0 && !slices.ContainsFunc(m.ReplyUsers, func(u string) bool { return u != self.UserID })
}

// channelRoots reads channel's top-level messages from endedWindow before
// newest on, oldest first: every one after newest, and at most maxOldRoots
// of the most recent ones before it. Each page is paced; a 429 waits as
// long as Slack asks and reads the page again.
func (c *Channel) channelRoots(ctx context.Context, pace func() bool, channel, newest string) ([]slack.Message, error) {
	oldest := tsOf(tsTime(newest).Add(-endedWindow))
	var all []slack.Message
	old, cursor := 0, ""
	for old < maxOldRoots {
		if !pace() {
			return nil, ctx.Err()
		}
		r, err := c.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
			ChannelID: channel, Oldest: oldest, Cursor: cursor, Limit: historyPage, IncludeAllMetadata: true,
		})
		c.noteAPI(err)
		if wait, ok := rateLimited(err); ok {
			if !sleep(ctx, wait) {
				return nil, ctx.Err()
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, m := range r.Messages { // newest first
			if !tsAfter(m.Timestamp, newest) {
				if old == maxOldRoots {
					break
				}
				old++
			}
			all = append(all, m)
		}
		if !r.HasMore || r.ResponseMetaData.NextCursor == "" {
			break
		}
		cursor = r.ResponseMetaData.NextCursor
	}
	slices.SortFunc(all, func(x, y slack.Message) int { return tsTime(x.Timestamp).Compare(tsTime(y.Timestamp)) })
	return all, nil
}

// rateLimited reports how long a 429 asks to wait.
func rateLimited(err error) (time.Duration, bool) {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return max(rl.RetryAfter, time.Second), true
	}
	return 0, false
}

// catchUpEnded reads the threads with new replies whose conversation is not
// open, the most recently active first, at most maxEndedThreads: a reply
// there starts a new conversation. It reports how many threads it read,
// how many messages it handed on, and false when ctx ended.
func (c *Channel) catchUpEnded(ctx context.Context, pace func() bool, ended []later, isOpen map[string]bool) (int, int, bool) {
	ended = slices.DeleteFunc(ended, func(l later) bool { return isOpen[l.addr.String()] })
	return c.readLater(ctx, pace, ended, maxEndedThreads)
}

// readLater reads up to limit of ls, the most recent first.
func (c *Channel) readLater(ctx context.Context, pace func() bool, ls []later, limit int) (int, int, bool) {
	slices.SortStableFunc(ls, func(x, y later) int { return y.key.Compare(x.key) })
	ls = ls[:min(len(ls), limit)]
	relayed := 0
	for _, l := range ls {
		if !pace() {
			return 0, relayed, false
		}
		relayed += c.catchUpLogged(ctx, l.addr, l.since)
	}
	return len(ls), relayed, ctx.Err() == nil
}

// catchUpDMs reads the app's DMs that have no open conversation, from the
// newest message stored from each; one nothing was stored from (a user's
// first DM, or an answer in a DM the app opened) from the newest message
// stored from any DM, when there is one. The DMs are listed with
// conversations.list (the im:read scope; without it DMs are not caught up),
// at most maxIMPages pages, and at most maxDMReads are read, the most
// recently active first (a DM never stored from counts from its creation).
// It reports how many DMs it read and how many messages it handed on.
func (c *Channel) catchUpDMs(ctx context.Context, pace func() bool, isOpen map[string]bool) (int, int) {
	ims, err := c.listIMs(ctx, pace)
	if err != nil {
		switch {
		case ctx.Err() != nil:
		case slackCode(err) == "missing_scope":
			c.log.Warn("catch-up: DMs not caught up: conversations.list needs the im:read scope (reinstall the app)")
		default:
			c.log.Warn("catch-up: DMs not listed", zap.Error(err))
		}
		return 0, 0
	}
	var stored, fresh []later
	anyDM := ""
	for _, im := range ims {
		if isOpen[im.ID] || im.IsUserDeleted || !channelID(im.ID) {
			continue
		}
		newest, err := c.lister.NewestSourceID(ctx, c.name, im.ID+"/")
		if err != nil {
			c.log.Error("catch-up: newest message of a DM", zap.String("slack_channel", im.ID), zap.Error(err))
			continue
		}
		_, ts, ok := strings.Cut(newest, "/")
		if !ok {
			fresh = append(fresh, later{addr: address{Channel: im.ID}, key: im.Created.Time()})
			continue
		}
		stored = append(stored, later{addr: address{Channel: im.ID}, since: ts, key: tsTime(ts)})
		if anyDM == "" || tsAfter(ts, anyDM) {
			anyDM = ts
		}
	}
	if anyDM != "" {
		for i := range fresh {
			fresh[i].since = anyDM
		}
		stored = append(stored, fresh...)
	}
	n, relayed, _ := c.readLater(ctx, pace, stored, maxDMReads)
	return n, relayed
}

// listIMs lists the app's DMs, at most maxIMPages pages, each paced; a 429
// waits as long as Slack asks and reads the page again.
func (c *Channel) listIMs(ctx context.Context, pace func() bool) ([]slack.Channel, error) {
	var all []slack.Channel
	cursor := ""
	for pages := 0; pages < maxIMPages; {
		if !pace() {
			return nil, ctx.Err()
		}
		chs, next, err := c.api.GetConversationsContext(ctx, &slack.GetConversationsParameters{
			Types: []string{"im"}, Limit: imPage, Cursor: cursor, ExcludeArchived: true,
		})
		if slackCode(err) != "missing_scope" {
			c.noteAPI(err) // an old installation without im:read is not unhealthy
		}
		if wait, ok := rateLimited(err); ok {
			if !sleep(ctx, wait) {
				return nil, ctx.Err()
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		pages++
		all = append(all, chs...)
		if next == "" {
			break
		}
		cursor = next
	}
	return all, nil
}

// catchUpLogged is catchUpOne with its failure logged.
func (c *Channel) catchUpLogged(ctx context.Context, a address, oldest string) int {
	n, err := c.catchUpOne(ctx, a, oldest)
	if err != nil && ctx.Err() == nil {
		c.log.Warn("catch-up of a conversation failed", zap.String("customer", a.String()), zap.Error(err))
	}
	return n
}

// catchUpOne relays one conversation's missed messages in order and returns
// how many it handed on. A 429 waits as long as Slack asks and tries again.
func (c *Channel) catchUpOne(ctx context.Context, a address, oldest string) (int, error) {
	for {
		var n int
		var stop error
		err := c.history(ctx, a, oldest, func(sm slack.Message) bool {
			k, err := c.relayOne(ctx, a, sm)
			if err != nil {
				stop = err
				return false
			}
			n += k
			oldest = sm.Timestamp // a retry after a 429 resumes after it
			return true
		})
		if stop != nil {
			return n, stop
		}
		if wait, ok := rateLimited(err); ok {
			if !sleep(ctx, wait) {
				return n, ctx.Err()
			}
			continue
		}
		return n, err
	}
}

// relayRead is relayOne with its failure logged.
func (c *Channel) relayRead(ctx context.Context, a address, sm slack.Message) int {
	n, err := c.relayOne(ctx, a, sm)
	if err != nil && ctx.Err() == nil {
		c.log.Warn("catch-up: message not committed", zap.String("slack_channel", a.Channel), zap.String("ts", sm.Timestamp), zap.Error(err))
	}
	return n
}

// relayOne hands one message read from history to intake (1 when it is a
// customer's); a typing indicator a dead process left is deleted instead.
func (c *Channel) relayOne(ctx context.Context, a address, sm slack.Message) (int, error) {
	if sm.Metadata.EventType == typingType && sm.Metadata.EventPayload["channel"] == c.name {
		c.deleteTyping(ctx, a.Channel, sm.Timestamp) // left by a process that died
		return 0, nil
	}
	m := fromHistory(a, c.isDMAddress(a), sm)
	if err := c.intake(ctx, m); err != nil {
		return 0, err
	}
	if c.ignored(m) == "" {
		return 1, nil
	}
	return 0, nil
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
